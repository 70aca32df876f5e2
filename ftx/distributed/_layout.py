"""Where each leaf lives: row-sharded on a 1-D mesh (DTensor ``Shard(0)``) or replicated.

A sharded leaf of global shape ``(n0, *rest)`` on ``w`` ranks follows DTensor's
``Shard(0)`` (``torch.chunk``): every rank holds ``pr = ceil(n0 / w)`` rows but the
last ones, rank ``j`` rows ``[min(j*pr, n0), min((j+1)*pr, n0))``. In a flat
collective buffer every rank's part of a leaf takes ``pr`` rows (``P`` elements),
the missing rows zero, so that one ``all_gather_single`` / ``reduce_scatter_single``
moves a whole bucket of leaves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.tensor import DTensor, Replicate, Shard

# torch >= 2.9 names the flat collectives *_single; *_tensor before (deprecated since).
_reduce_scatter_flat = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor
_all_gather_flat = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor

SHARD, REPLICATE = "shard", "replicate"


@dataclass(frozen=True)
class Leaf:
    """One leaf's placement and its slot in a flat bucket."""

    kind: str  # SHARD or REPLICATE
    shape: tuple[int, ...]  # global shape
    dtype: torch.dtype
    device: torch.device
    dtensor: bool  # a DTensor (shard or replicate) rather than a plain tensor
    world: int
    rank: int

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def row_numel(self) -> int:
        return math.prod(self.shape[1:])

    @property
    def pad_rows(self) -> int:
        return -(-self.shape[0] // self.world) if self.shape else 0

    @property
    def slot(self) -> int:
        """Elements this leaf takes in one rank's part of a flat buffer."""
        return self.pad_rows * self.row_numel if self.kind == SHARD else self.numel

    def rows(self, j: int) -> tuple[int, int]:
        n0, pr = self.shape[0], self.pad_rows
        return min(j * pr, n0), min((j + 1) * pr, n0)

    @property
    def local_shape(self) -> tuple[int, ...]:
        a, b = self.rows(self.rank)
        return (b - a, *self.shape[1:])


def placement_of(x: torch.Tensor) -> tuple[str, DeviceMesh | None]:
    """``(SHARD | REPLICATE, mesh)``; ``ValueError`` text for placements ftx does not handle."""
    if not isinstance(x, DTensor):
        return REPLICATE, None
    mesh = x.device_mesh
    pl = tuple(x.placements)
    if mesh.ndim != 1 or len(pl) != 1:
        raise ValueError(f"a DTensor on a {mesh.ndim}-D mesh with placements {pl}")
    p = pl[0]
    if isinstance(p, Shard) and p.dim == 0 and x.dim() > 0:
        return SHARD, mesh
    if isinstance(p, Replicate):
        return REPLICATE, mesh
    raise ValueError(f"a DTensor with placement {p}")


def local(x: torch.Tensor) -> torch.Tensor:
    return x.to_local() if isinstance(x, DTensor) else x


def contiguous_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    out, acc = [], 1
    for s in reversed(shape):
        out.append(acc)
        acc *= max(s, 1)
    return tuple(reversed(out))


def wrap(t: torch.Tensor, leaf: Leaf, mesh: DeviceMesh | None) -> torch.Tensor:
    """The local tensor ``t`` as the leaf's kind: a DTensor shard/replica or plain."""
    if not leaf.dtensor:
        return t
    placements = [Shard(0)] if leaf.kind == SHARD else [Replicate()]
    return DTensor.from_local(t, mesh, placements, run_check=False, shape=torch.Size(leaf.shape),
                              stride=contiguous_strides(leaf.shape))


def pack_shard(seg: torch.Tensor, g: torch.Tensor, leaf: Leaf) -> None:
    """Write a full (global) tensor ``g`` into ``seg`` (``(w, P)``), each rank's rows padded."""
    n0, pr, q = leaf.shape[0], leaf.pad_rows, leaf.row_numel
    p = pr * q
    flat = g.reshape(-1)
    if p == 0:
        return
    k = n0 // pr  # ranks with a full share of rows
    if k:
        seg[:k].copy_(flat[: k * p].view(k, p))
    if k < leaf.world:
        rest = flat[k * p :]
        seg[k, : rest.numel()].copy_(rest)
        seg[k, rest.numel() :].zero_()
        seg[k + 1 :].zero_()


def unpack_gathered(out2d: torch.Tensor, off: int, leaf: Leaf) -> torch.Tensor:
    """The full tensor of a sharded leaf from a gathered ``(w, S)`` buffer (a new tensor)."""
    pr, w = leaf.pad_rows, leaf.world
    seg = out2d[:, off : off + leaf.slot]
    return seg.reshape(w * pr, *leaf.shape[1:])[: leaf.shape[0]]


def buckets(leaves: list[Leaf], cap_bytes: int, *, kinds: tuple[str, ...]) -> list[list[int]]:
    """Leaf indices grouped by (kind, dtype, device) in order, each bucket at most ``cap_bytes``."""
    groups: dict[tuple[str, torch.dtype, torch.device], list[list[int]]] = {}
    sizes: dict[tuple[str, torch.dtype, torch.device], int] = {}
    for i, x in enumerate(leaves):
        if x.kind not in kinds:
            continue
        k = (x.kind, x.dtype, x.device)
        nbytes = x.slot * x.dtype.itemsize
        if k not in groups or (sizes[k] + nbytes > cap_bytes and groups[k][-1]):
            groups.setdefault(k, []).append([])
            sizes[k] = 0
        groups[k][-1].append(i)
        sizes[k] += nbytes
    return [b for bs in groups.values() for b in bs if b]


def offsets(leaves: list[Leaf], bucket: list[int]) -> tuple[dict[int, int], int]:
    out, off = {}, 0
    for i in bucket:
        out[i] = off
        off += leaves[i].slot
    return out, off


def gather_start(
    leaves: list[Leaf], xs: list[torch.Tensor], bucket: list[int], group: Any
) -> tuple[Any, torch.Tensor, dict[int, int], int]:
    """Launch the all-gather of one bucket of sharded leaves (async)."""
    offs, size = offsets(leaves, bucket)
    w = leaves[bucket[0]].world
    inp = torch.empty(size, dtype=leaves[bucket[0]].dtype, device=leaves[bucket[0]].device)
    for i in bucket:
        part = local(xs[i]).detach().reshape(-1)
        inp[offs[i] : offs[i] + part.numel()].copy_(part)
        inp[offs[i] + part.numel() : offs[i] + leaves[i].slot].zero_()
    out = torch.empty(w * size, dtype=inp.dtype, device=inp.device)
    work = _all_gather_flat(out, inp, group=group, async_op=True)
    return work, out, offs, size
