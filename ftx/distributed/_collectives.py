"""The pytree collectives: bucketed all_reduce / broadcast / all_gather, batch sharding, joining."""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import torch
import torch.distributed as dist

from .._internal.errors import check_bool, check_int, check_real, describe, msg
from ..tree import _flatten_with_path, unflatten

__all__ = [
    "CollectiveError",
    "all_gather",
    "all_reduce",
    "broadcast",
    "initialize",
    "rank",
    "shard",
    "world_size",
]

T = TypeVar("T")
PyTree = Any
DEFAULT_BUCKET_MB = 25.0


class CollectiveError(RuntimeError):
    """A collective could not complete: a rank died, never joined or timed out."""


def initialize(
    backend: str | None = None,
    *,
    timeout: datetime.timedelta | float = 60.0,
    init_method: str | None = None,
) -> None:
    """Initialise the default process group from ``torchrun``'s environment variables.

    Args:
        backend: ``"gloo"``, ``"nccl"`` or ``None`` (NCCL when CUDA is available, else gloo).
        timeout: seconds (or a ``timedelta``) after which a collective that cannot
            complete raises instead of hanging.
        init_method: as ``torch.distributed.init_process_group``; default ``env://``.
    """
    api = "distributed.initialize"
    if backend is not None:
        _check_backend(backend)
    if isinstance(timeout, datetime.timedelta):
        if not timeout.total_seconds() > 0:
            raise ValueError(msg(api, "timeout must be positive", repr(timeout),
                                 "Pass e.g. timeout=60.0 (seconds)."))
    else:
        seconds = check_real(api, "timeout", timeout, low=0.0, low_open=True)
        if seconds > _MAX_TIMEOUT:
            raise ValueError(msg(api, f"timeout must be at most {_MAX_TIMEOUT:.0f} seconds",
                                 repr(timeout), "Pass e.g. timeout=60.0 (seconds)."))
        timeout = datetime.timedelta(seconds=seconds)
    if init_method is not None and not isinstance(init_method, str):
        raise TypeError(msg(api, "init_method must be a str or None", describe(init_method),
                            "Pass e.g. 'env://' or leave it out."))
    if dist.is_initialized():
        return
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    try:
        dist.init_process_group(backend=backend, init_method=init_method, timeout=timeout)
    except Exception as e:  # torch raises DistNetworkError / DistStoreError / RuntimeError
        raise CollectiveError(msg(
            api, f"all ranks must join within {timeout}", f"{type(e).__name__}: {e}",
            "Check that every rank was launched (torchrun) and that MASTER_ADDR/MASTER_PORT "
            "are reachable.",
        )) from e


# The largest timeout a timedelta holds comfortably (and torch's C++ side accepts): 1 year.
_MAX_TIMEOUT = 365 * 24 * 3600.0


def _check_backend(backend: Any) -> None:
    """A backend name torch.distributed knows, or ``"device:name,..."`` pairs of them."""
    api = "distributed.initialize"
    if not isinstance(backend, str):
        raise TypeError(msg(api, "backend must be a str or None", describe(backend),
                            "Pass 'gloo', 'nccl' or leave it out."))
    known = [str(b) for b in getattr(dist.Backend, "backend_list", ["gloo", "nccl", "mpi"])]
    parts = [p.split(":", 1)[-1].strip().lower() for p in backend.split(",")]
    if not backend or any(p not in known for p in parts):
        raise ValueError(msg(api, f"backend must be one of {', '.join(known)} (or "
                             "'device:backend' pairs)", repr(backend),
                             "Pass 'gloo' on CPU, 'nccl' on GPU, or leave it out."))


def _check_group(api: str, group: Any) -> None:
    if group is not None and not (dist.is_available() and isinstance(group, dist.ProcessGroup)):
        raise TypeError(msg(f"distributed.{api}", "group must be a ProcessGroup or None",
                            describe(group), "Pass a group from torch.distributed.new_group, "
                            "or leave it out for the world."))


def _require_group(api: str) -> None:
    if not (dist.is_available() and dist.is_initialized()):
        raise ValueError(msg(
            f"distributed.{api}", "needs an initialised process group", "none",
            "Call ftx.distributed.initialize() (or torch.distributed.init_process_group) "
            "first, under torchrun.",
        ))


def _get_rank(group: dist.ProcessGroup | None = None) -> int:
    return dist.get_rank(group) if dist.is_available() and dist.is_initialized() else 0


def _get_world_size(group: dist.ProcessGroup | None = None) -> int:
    return dist.get_world_size(group) if dist.is_available() and dist.is_initialized() else 1


def rank(group: dist.ProcessGroup | None = None) -> int:
    """This process's rank in ``group`` (0 when no process group is initialised)."""
    _check_group("rank", group)
    return _get_rank(group)


def world_size(group: dist.ProcessGroup | None = None) -> int:
    """The number of processes in ``group`` (1 when no process group is initialised)."""
    _check_group("world_size", group)
    return _get_world_size(group)


def shard(batch: T, rank: int | None = None, world_size: int | None = None) -> T:
    """This rank's contiguous slice of every leaf along dimension 0.

    Args:
        batch: a pytree of tensors with one leading batch size ``B``.
        rank, world_size: default to the process group's.

    Returns:
        The same structure with leaves of ``B // world_size`` rows. ``B`` must divide
        evenly, so that the mean of the per-rank mean losses equals the full-batch mean.

    Example:
        >>> shard({"x": torch.arange(6)}, rank=1, world_size=3)
        {'x': tensor([2, 3])}
    """
    api = "distributed.shard"
    w = _get_world_size() if world_size is None else check_int(api, "world_size", world_size,
                                                                low=1)
    r = _get_rank() if rank is None else check_int(api, "rank", rank)
    if not 0 <= r < w:
        raise ValueError(msg(api, f"rank must lie in [0, world_size={w})", str(r),
                             "Pass the rank and world size of this process."))
    leaves, treedef = _flatten_with_path(api, "batch", batch)
    sizes = {x.shape[0] if isinstance(x, torch.Tensor) and x.dim() else -1 for _, x in leaves}
    if len(sizes) > 1 or -1 in sizes:
        found = ", ".join(
            f"{p or '<root>'}: {tuple(x.shape) if isinstance(x, torch.Tensor) else describe(x)}"
            for p, x in leaves
        )
        raise ValueError(msg(
            api, "every leaf must be a tensor with one batch size along dimension 0", found,
            "Pass a batch whose leaves share their first dimension.",
        ))
    (size,) = sizes if sizes else {0}
    if size % w:
        raise ValueError(msg(api, f"the batch size must divide by world_size={w}", str(size),
                             "Drop the remainder or pad the batch."))
    n = size // w
    out: T = unflatten(treedef, [x[r * n : (r + 1) * n] for _, x in leaves])
    return out


# ---------------------------------------------------------------------------
# Structure agreement across ranks.


def _signature(api: str, tree: PyTree) -> tuple[list[tuple[str, torch.Tensor]], Any, list[str]]:
    leaves, treedef = _flatten_with_path(f"distributed.{api}", "tree", tree)
    sig = []
    for path, x in leaves:
        if not isinstance(x, torch.Tensor):
            raise TypeError(msg(
                f"distributed.{api}", "every leaf must be a tensor",
                f"{describe(x)} at {path or '<root>'!r}",
                "Convert it with torch.as_tensor or keep it out of the tree.",
            ))
        sig.append(f"{path}:{tuple(x.shape)}:{x.dtype}")
    sig.append(f"treedef:{treedef.spec}")
    return leaves, treedef, sig


def _digest(sig: list[str]) -> int:
    h = hashlib.blake2b("\n".join(sig).encode(), digest_size=7).digest()
    return int.from_bytes(h, "little")  # < 2**56: exact in int64 and float64


def _run(api: str, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except (RuntimeError, TimeoutError) as e:
        if isinstance(e, CollectiveError):
            raise
        raise collective_error(api, e) from e


def collective_error(api: str, e: BaseException) -> CollectiveError:
    """The error for a collective that failed on this rank (``e``: what torch raised)."""
    return CollectiveError(msg(
        f"distributed.{api}", "every rank must take part in the collective",
        f"{type(e).__name__}: {e}", "A rank may have died, not joined, or timed out.",
    ))


def _agree(api: str, sig: list[str], device: torch.device, group: Any) -> None:
    """Check that all ranks hold one signature; on mismatch, name the path on every rank."""
    h = _digest(sig)
    probe = torch.tensor([h, -h], dtype=torch.int64, device=device)
    _run(api, lambda: dist.all_reduce(probe, op=dist.ReduceOp.MAX, group=group))
    if int(probe[0]) == h and int(probe[1]) == -h:
        return
    sigs: list[Any] = [None] * world_size(group)
    _run(api, lambda: dist.all_gather_object(sigs, sig, group=group))
    me = rank(group)
    for other, theirs in enumerate(sigs):
        if theirs == sig:
            continue
        for mine, their in zip(sig, theirs):
            if mine != their:
                raise ValueError(msg(
                    f"distributed.{api}",
                    "every rank must pass a tree of one structure, shapes and dtypes",
                    f"{mine!r} on rank {me} and {their!r} on rank {other}",
                    "Make the trees match on all ranks.",
                ))
        raise ValueError(msg(
            f"distributed.{api}", "every rank must pass a tree of one structure",
            f"{len(sig) - 1} leaves on rank {me} and {len(theirs) - 1} on rank {other}",
            "Make the trees match on all ranks.",
        ))


def _buckets(leaves: list[torch.Tensor], cap_bytes: int) -> list[list[int]]:
    """Group leaf indices into buckets of one dtype and device, each at most ``cap_bytes``."""
    groups: dict[tuple[torch.dtype, torch.device], list[list[int]]] = {}
    sizes: dict[tuple[torch.dtype, torch.device], int] = {}
    for i, x in enumerate(leaves):
        k = (x.dtype, x.device)
        nbytes = x.numel() * x.element_size()
        if k not in groups or (sizes[k] + nbytes > cap_bytes and groups[k][-1]):
            groups.setdefault(k, []).append([])
            sizes[k] = 0
        groups[k][-1].append(i)
        sizes[k] += nbytes
    return [b for bs in groups.values() for b in bs if b]


def _pack(leaves: list[torch.Tensor], buckets: list[list[int]]) -> list[torch.Tensor]:
    """One new flat tensor per bucket (copies: the inputs are never written)."""
    return [torch.cat([leaves[i].detach().reshape(-1) for i in b]) for b in buckets]


def _unpack(
    leaves: list[torch.Tensor], buckets: list[list[int]], flats: list[torch.Tensor]
) -> list[torch.Tensor]:
    """Views into the flat buckets, shaped like ``leaves``."""
    out: list[torch.Tensor] = list(leaves)
    for b, flat in zip(buckets, flats):
        offset = 0
        for i in b:
            out[i] = flat[offset : offset + leaves[i].numel()].view_as(leaves[i])
            offset += leaves[i].numel()
    return out


def _wait_all(api: str, start: Callable[[], list[Any]]) -> None:
    def run() -> None:
        for w in start():
            if w is not None:
                w.wait()

    _run(api, run)


_OPS = {"sum": "SUM", "mean": "SUM", "max": "MAX", "min": "MIN"}


class _Prepared:
    """What every collective sets up: the checked leaves, their buckets and flat copies."""

    __slots__ = ("buckets", "flats", "leaves", "treedef")

    def __init__(self, leaves: list[torch.Tensor], treedef: Any, buckets: list[list[int]],
                 flats: list[torch.Tensor]) -> None:
        self.leaves, self.treedef, self.buckets, self.flats = leaves, treedef, buckets, flats

    def unflatten(self, leaves: list[torch.Tensor]) -> Any:
        return unflatten(self.treedef, leaves)


def _prepare(api: str, tree: Any, group: Any, check: bool, *, bucket_mb: float | None = None,
             src: int | None = None) -> _Prepared | None:
    """Check the arguments, agree on the tree's signature, pack the leaves into buckets.

    ``None`` when the tree has no leaves (the collective returns it as it is).
    """
    _check_group(api, group)
    mb = DEFAULT_BUCKET_MB if bucket_mb is None else check_real(
        f"distributed.{api}", "bucket_mb", bucket_mb, low=0.0, low_open=True)
    check_bool(f"distributed.{api}", "check", check)
    pairs, treedef, sig = _signature(api, tree)
    _require_group(api)
    if src is not None and not 0 <= src < world_size(group):
        raise ValueError(msg(f"distributed.{api}", f"src must be a rank in [0, "
                             f"{world_size(group)})", str(src),
                             "Pass the rank that holds the values."))
    leaves = [x for _, x in pairs]
    if not leaves:
        return None
    if check:
        _agree(api, sig, leaves[0].device, group)
    buckets = _buckets(leaves, max(1, int(min(mb, 2.0**40) * 2**20)))
    return _Prepared(leaves, treedef, buckets, _pack(leaves, buckets))


def all_reduce(
    tree: T,
    op: Literal["mean", "sum", "max", "min"] = "mean",
    *,
    group: dist.ProcessGroup | None = None,
    bucket_mb: float = DEFAULT_BUCKET_MB,
    check: bool = True,
) -> T:
    """Reduce every leaf across ranks, packed into flat buckets; returns a new tree.

    Args:
        tree: a pytree of tensors of the same structure, shapes and dtypes on every rank.
        op: ``"mean"`` (the data-parallel gradient average), ``"sum"``, ``"max"``, ``"min"``.
        group: the process group (default: the world).
        bucket_mb: the largest bucket in MiB (DDP's default is 25).
        check: agree on the tree's signature first (one tiny collective) so that a
            mismatch is a ``ValueError`` naming the path rather than garbage or a hang.

    Returns:
        A tree like ``tree`` holding the reduced values (``tree`` itself is untouched).
    """
    if not isinstance(op, str) or op not in _OPS:
        raise (ValueError if isinstance(op, str) else TypeError)(msg(
            "distributed.all_reduce", f"op must be one of {sorted(_OPS)}", f"{op!r:.60}",
            'Use op="mean" for gradients.',
        ))
    prep = _prepare("all_reduce", tree, group, check, bucket_mb=bucket_mb)
    if prep is None:
        return tree
    red = getattr(dist.ReduceOp, _OPS[op])
    _wait_all(
        "all_reduce",
        lambda: [dist.all_reduce(f, op=red, group=group, async_op=True) for f in prep.flats],
    )
    if op == "mean":
        n = world_size(group)
        for f in prep.flats:
            divide_(f, n)
    result: T = prep.unflatten(_unpack(prep.leaves, prep.buckets, prep.flats))
    return result


def divide_(f: torch.Tensor, n: int) -> None:
    """The mean's division in place (floor division for integers, whose mean floors)."""
    f.div_(n) if f.is_floating_point() or f.is_complex() else f.floor_divide_(n)


def broadcast(
    tree: T, src: int = 0, *, group: dist.ProcessGroup | None = None, check: bool = True
) -> T:
    """Every rank gets rank ``src``'s values (e.g. the initial parameters); returns a new tree."""
    src = check_int("distributed.broadcast", "src", src, low=0)
    prep = _prepare("broadcast", tree, group, check, src=src)
    if prep is None:
        return tree
    _wait_all(
        "broadcast",
        lambda: [dist.broadcast(f, src=src, group=group, async_op=True) for f in prep.flats],
    )
    result: T = prep.unflatten(_unpack(prep.leaves, prep.buckets, prep.flats))
    return result


def all_gather(tree: T, *, group: dist.ProcessGroup | None = None, check: bool = True) -> T:
    """Stack every rank's leaves along a new leading axis of size ``world_size`` (as JAX)."""
    prep = _prepare("all_gather", tree, group, check)
    if prep is None:
        return tree
    n = world_size(group)
    parts = [[torch.empty_like(f) for _ in range(n)] for f in prep.flats]
    _wait_all(
        "all_gather",
        lambda: [dist.all_gather(p, f, group=group, async_op=True)
                 for p, f in zip(parts, prep.flats)],
    )
    stacked = [torch.stack(p) for p in parts]  # (n, bucket_numel)
    out: list[torch.Tensor] = list(prep.leaves)
    for b, st in zip(prep.buckets, stacked):
        offset = 0
        for i in b:
            x = prep.leaves[i]
            out[i] = st[:, offset : offset + x.numel()].reshape(n, *x.shape)
            offset += x.numel()
    result: T = prep.unflatten(out)
    return result
