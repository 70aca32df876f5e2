"""Atomic file replacement: temp file in the same folder, fsync, rename, fsync the folder.

A reader of ``path`` sees either the old file or the complete new one, never a
prefix: the bytes go to a fresh temp file next to ``path`` (same file system,
so the rename is atomic), are flushed to disk with ``fsync``, and only then
``os.replace`` swaps the name; the folder is fsynced so the rename itself
survives a power cut. A process killed before the rename leaves ``path``
untouched (and a stray ``.<name>.<pid>.<random>.tmp`` file behind).
"""

from __future__ import annotations

import contextlib
import os
import secrets

CHUNK = 64 * 1024 * 1024


def temp_path_for(path: str) -> str:
    """A fresh, hidden temp file name in ``path``'s folder."""
    folder, base = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{base}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def _write_all(fd: int, data: bytes | memoryview) -> None:
    """Write every byte of ``data`` to ``fd`` (``os.write`` may write less than asked)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view[:CHUNK])
        view = view[n:]


def fsync_dir(folder: str) -> None:
    """fsync a folder so a rename inside it is durable (a no-op where unsupported)."""
    if os.name == "nt":  # pragma: no cover - Windows has no directory fsync
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. a folder we cannot open
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str, data: bytes | memoryview) -> None:
    """Replace ``path`` by ``data`` atomically and durably.

    The temp file is created with mode ``0o666`` minus the umask, like a plain
    ``open(path, "wb")``. On any error (including ``KeyboardInterrupt``) the temp
    file is removed and ``path`` is left as it was.
    """
    tmp = temp_path_for(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(tmp, flags, 0o666)
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(os.path.dirname(os.path.abspath(path)))
