"""Files for ftx.io: atomic replacement, stale temp files, checks on what a path names.

A reader of ``path`` sees either the old file or the complete new one, never a
prefix: the bytes go to a fresh temp file next to ``path`` (same file system,
so the rename is atomic), are flushed to disk with ``fsync``, and only then
``os.replace`` swaps the name; the folder is fsynced so the rename itself
survives a power cut. A process killed before the rename leaves ``path``
untouched and a stray ``.<name>.<pid>.<random>.tmp`` file behind, which the
next save of ``path`` removes once process ``pid`` is gone.

Only regular files are ever replaced or read: a device, a FIFO, a socket or a
folder at ``path`` (or a symbolic link to one) is refused before anything is
written or opened for reading.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterable

CHUNK = 64 * 1024 * 1024
_TEMP_TAIL = re.compile(r"(\d+)\.[0-9a-f]{8}\.tmp")


def kind_of(mode: int) -> str:
    """What a ``st_mode`` names, for messages: ``"a FIFO"``, ``"a folder"``..."""
    for test, name in (
        (stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
        (stat.S_ISLNK, "a symbolic link"),
    ):
        if test(mode):
            return name
    return "a special file"  # pragma: no cover - door files and the like


def target_problem(path: str) -> str | None:
    """Why ``save`` must not replace ``path`` (``None``: absent, a regular file or a link to one).

    A symbolic link to a regular file is allowed: the rename replaces the link,
    never its target. A link to anything else, or to nothing, is refused.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISREG(st.st_mode):
        return None
    if not stat.S_ISLNK(st.st_mode):
        return kind_of(st.st_mode)
    try:
        target = os.stat(path)
    except OSError:
        return f"a symbolic link to nothing ({os.readlink(path)!r:.80})"
    if stat.S_ISREG(target.st_mode):
        return None
    return f"a symbolic link to {kind_of(target.st_mode)}"


def _stem(path: str) -> tuple[str, str]:
    """``(folder, temp-file stem)`` for ``path``: long names are hashed to fit NAME_MAX."""
    folder, base = os.path.split(os.path.abspath(path))
    if len(os.fsencode(base)) > 200:
        base = hashlib.sha256(os.fsencode(base)).hexdigest()[:32]
    return folder, f".{base}."


def temp_path_for(path: str) -> str:
    """A fresh, hidden temp file name in ``path``'s folder."""
    folder, stem = _stem(path)
    return os.path.join(folder, f"{stem}{os.getpid()}.{secrets.token_hex(4)}.tmp")


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True  # maybe another thread of this process, saving now
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    except OverflowError:
        return False  # no such pid can exist
    return True


def remove_stale_temps(path: str) -> list[str]:
    """Remove the temp files a killed save of ``path`` left: ``.<name>.<pid>.<hex>.tmp``
    regular files whose ``pid`` is not a running process. Returns the names removed."""
    folder, stem = _stem(path)
    removed: list[str] = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        if not name.startswith(stem):
            continue
        m = _TEMP_TAIL.fullmatch(name[len(stem) :])
        if m is None or _running(int(m.group(1))):
            continue
        full = os.path.join(folder, name)
        with contextlib.suppress(OSError):
            if stat.S_ISREG(os.lstat(full).st_mode):
                os.unlink(full)
                removed.append(name)
    return removed


def _write_all(fd: int, data: bytes | memoryview) -> None:
    """Write every byte of ``data`` to ``fd`` (``os.write`` may write less than asked)."""
    view = memoryview(data).cast("B")
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


def atomic_write(
    path: str, chunks: Iterable[bytes | memoryview], check: Callable[[], None] | None = None
) -> None:
    """Replace ``path`` by the concatenated ``chunks`` atomically and durably.

    The temp file is created with mode ``0o666`` minus the umask, like a plain
    ``open(path, "wb")``. ``check`` runs just before the rename (it raises to
    call the save off). On any error (including ``KeyboardInterrupt``) the temp
    file is removed and ``path`` is left as it was.
    """
    tmp = temp_path_for(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(tmp, flags, 0o666)
    try:
        try:
            for chunk in chunks:
                _write_all(fd, chunk)
            os.fsync(fd)
        finally:
            os.close(fd)
        if check is not None:
            check()
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(os.path.dirname(os.path.abspath(path)))


def open_regular(path: str) -> tuple[io.FileIO, int] | str:
    """Open ``path`` for reading if it is a regular file: ``(file, size)``, else what it is.

    Checked before opening (so a device is never opened) and again on the open
    descriptor, opened non-blocking (so a FIFO swapped in between cannot hang).
    Raises ``FileNotFoundError`` for a missing file.
    """
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        return kind_of(st.st_mode)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            return kind_of(st.st_mode)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return io.FileIO(fd, "rb", closefd=True), st.st_size
    except BaseException:
        with contextlib.suppress(OSError):
            os.close(fd)
        raise


def read_exactly(f: io.FileIO, view: memoryview) -> int:
    """Fill ``view`` from ``f``; the number of bytes read (short only at end of file)."""
    got = 0
    while got < len(view):
        n = f.readinto(view[got : got + CHUNK])
        if not n:
            break
        got += n
    return got
