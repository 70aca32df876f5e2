"""Shared plumbing for the example training scripts: flags, progress, checkpoints.

Each example is a pure-functional training loop: the whole training state
(parameters, optimizer state, step) is one pytree, saved with ``ftx.io`` and
restored with ``--resume``. Randomness is derived from ``ftx.random`` keys by
``fold_in(key, step)``, never from a global generator, so a resumed run draws
the same numbers as an uninterrupted one and ends bit for bit equal.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any

import torch

import ftx

CKPT_NAME = "state.safetensors"


def parser(description: str, *, steps: int | None = None, epochs: int | None = None,
           seed: int = 0) -> argparse.ArgumentParser:
    """An ``argparse`` parser with the flags every example takes."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    if steps is not None:
        p.add_argument("--steps", type=int, default=steps, help=f"training steps ({steps})")
    if epochs is not None:
        p.add_argument("--epochs", type=int, default=epochs, help=f"training epochs ({epochs})")
    p.add_argument("--seed", type=int, default=seed, help=f"random seed ({seed})")
    p.add_argument("--checkpoint", metavar="DIR", default=None,
                   help="save the training state to DIR (atomic safetensors)")
    p.add_argument("--save-every", type=int, default=0,
                   help="also checkpoint every N steps (0: only at the end)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the state in --checkpoint DIR")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def device_of(args: argparse.Namespace) -> torch.device:
    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda was asked for, but this machine has no CUDA device")
    return dev


def progress(it: Iterable[int], total: int, *, quiet: bool, desc: str) -> Any:
    """A tqdm progress bar (plain iteration when tqdm is missing or --quiet)."""
    if quiet:
        return it
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is in the examples extra
        return it
    return tqdm(it, total=total, desc=desc, dynamic_ncols=True, file=sys.stderr)


def set_postfix(bar: Any, **values: float) -> None:
    if hasattr(bar, "set_postfix"):
        bar.set_postfix({k: f"{v:.4f}" for k, v in values.items()}, refresh=False)


def save(args: argparse.Namespace, state: Any) -> None:
    """Write the training state atomically to ``--checkpoint DIR`` (if given)."""
    if args.checkpoint:
        os.makedirs(args.checkpoint, exist_ok=True)
        ftx.io.save(os.path.join(args.checkpoint, CKPT_NAME), state)


def restore(args: argparse.Namespace, state: Any, device: torch.device) -> Any:
    """The saved state when ``--resume`` is given, else ``state`` unchanged."""
    if not args.resume:
        return state
    if not args.checkpoint:
        sys.exit("--resume needs --checkpoint DIR")
    path = os.path.join(args.checkpoint, CKPT_NAME)
    if not os.path.exists(path):
        sys.exit(f"--resume: no checkpoint at {path}")
    return ftx.io.load(path, like=state, device=device)


def steps_from(state: Any, total: int) -> Iterator[int]:
    """The steps still to run: from the state's step counter up to ``total``."""
    return iter(range(int(state["step"]), total))


def maybe_save(args: argparse.Namespace, state: Any, step: int, total: int) -> None:
    if args.save_every and (step + 1) % args.save_every == 0 and step + 1 < total:
        save(args, state)


def digits(device: torch.device, dtype: torch.dtype, seed: int, test_fraction: float = 0.2
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """scikit-learn's bundled 8x8 digits (no download): ``x`` in [0, 1], a seeded split."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.data, dtype=dtype) / 16.0
    y = torch.tensor(data.target, dtype=torch.int64)
    perm = ftx.random.permutation(ftx.random.key(seed + 10_000), x.shape[0])
    n_test = round(test_fraction * x.shape[0])
    test, train = perm[:n_test], perm[n_test:]
    return x[train].to(device), y[train].to(device), x[test].to(device), y[test].to(device)


def batch_indices(key: torch.Tensor, step: int, n: int, batch_size: int) -> torch.Tensor:
    """The minibatch for ``step``: epochs are seeded permutations, one per epoch."""
    per_epoch = max(1, n // batch_size)
    epoch, i = divmod(step, per_epoch)
    perm = ftx.random.permutation(ftx.random.fold_in(key, epoch), n)
    return perm[i * batch_size : (i + 1) * batch_size]
