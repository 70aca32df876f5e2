"""Sharded parameters (ZeRO-3 / FSDP semantics) as DTensors with ``Shard(0)`` on a 1-D mesh."""

from __future__ import annotations

import functools
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh
from torch.distributed.tensor import DTensor, Replicate, Shard, distribute_tensor

from .._internal.errors import describe, msg
from ..tree import _flatten_with_path, unflatten
from . import _layout as L
from ._collectives import _get_world_size, _require_group, _run

T = TypeVar("T")

_MESHES: dict[str, tuple[Any, DeviceMesh]] = {}


def default_mesh(device_type: str) -> DeviceMesh:
    """One 1-D mesh over the world per device type (made again for a new process group)."""
    world = dist.group.WORLD
    cached = _MESHES.get(device_type)
    if cached is None or cached[0] is not world:
        cached = _MESHES[device_type] = (world, init_device_mesh(device_type,
                                                                 (_get_world_size(),)))
    return cached[1]


def _check_mesh(api: str, mesh: Any) -> None:
    if mesh is not None and not (isinstance(mesh, DeviceMesh) and mesh.ndim == 1):
        got = f"a {mesh.ndim}-D DeviceMesh" if isinstance(mesh, DeviceMesh) else describe(mesh)
        raise TypeError(msg(f"distributed.{api}", "mesh must be a 1-D DeviceMesh or None", got,
                            "Pass torch.distributed.device_mesh.init_device_mesh('cpu', "
                            "(world_size,)) or leave it out for the world."))


def shard_params(params: T, mesh: DeviceMesh | None = None) -> T:
    """Shard every leaf of ``params`` along dimension 0 across the ranks of ``mesh``.

    Each rank keeps only its rows (DTensor ``Shard(0)``, ``torch.chunk``'s split: the
    last ranks hold fewer rows when the size does not divide); 0-d leaves are
    replicated. The values are rank 0's (scattered from it), so the ranks need not
    have drawn the same initial parameters. Pass the result to
    :func:`value_and_grad` (which gathers it for the forward pass and reduce-scatters
    the gradients) and to an ``ftx.optim`` optimizer, whose state then holds shards
    too: per-rank memory of params, gradients and optimizer state falls as
    ``1 / world_size``.

    Args:
        params: a pytree of tensors, the same structure, shapes and dtypes on every rank.
        mesh: a 1-D ``DeviceMesh``; default: the whole world on the leaves' device type.

    Returns:
        The same structure with DTensor leaves.

    Example (under ``torchrun``)::

        params = ftx.distributed.shard_params(model.init(key))
        state = opt.init(params)                       # sharded Adam moments
        loss, grads = ftx.distributed.value_and_grad(loss_fn)(params, xb, yb)
    """
    api = "distributed.shard_params"
    _check_mesh("shard_params", mesh)
    pairs, treedef = _flatten_with_path(api, "params", params)
    for path, x in pairs:
        if not isinstance(x, torch.Tensor):
            raise TypeError(msg(api, "every leaf of params must be a tensor",
                                f"{describe(x)} at {path or '<root>'!r}",
                                "Keep Python values out of the parameter tree."))
        if isinstance(x, DTensor):
            raise ValueError(msg(api, "params must hold plain tensors",
                                 f"a DTensor at {path or '<root>'!r}",
                                 "The tree is sharded already: pass it on as it is."))
    _require_group("shard_params")
    out = []
    for _, x in pairs:
        m = mesh if mesh is not None else default_mesh(x.device.type)
        placement = [Shard(0)] if x.dim() else [Replicate()]
        out.append(_run("shard_params", functools.partial(
            distribute_tensor, x.detach(), m, placement, src_data_rank=0)))
    result: T = unflatten(treedef, out)
    return result


def gather_params(tree: T) -> T:
    """The full (unsharded) tensors of a tree's DTensor leaves; other leaves as they are.

    Every rank gets the whole tree (an all-gather per bucket of leaves); use it to
    evaluate or export a sharded model. Plain leaves are returned untouched.
    """
    api = "distributed.gather_params"
    pairs, treedef = _flatten_with_path(api, "tree", tree)
    xs = [x for _, x in pairs]
    if not any(isinstance(x, DTensor) for x in xs):
        return tree
    _require_group("gather_params")
    dts = [(p, x) for p, x in pairs if isinstance(x, DTensor)]
    full = iter(gather_full(api, dts))
    result: T = unflatten(treedef, [next(full) if isinstance(x, DTensor) else x for x in xs])
    return result


def describe_leaves(api: str, pairs: list[tuple[str, Any]]) -> tuple[list[L.Leaf], Any]:
    """Each leaf's placement; the mesh of the DTensor leaves (one mesh for the tree)."""
    leaves, mesh = [], None
    for path, x in pairs:
        if not isinstance(x, torch.Tensor):
            raise TypeError(msg(api, "every leaf must be a tensor",
                                f"{describe(x)} at {path or '<root>'!r}",
                                "Keep Python values out of the tree."))
        try:
            kind, m = L.placement_of(x)
        except ValueError as e:
            raise ValueError(msg(api, "DTensor leaves must be Shard(0) or Replicate on a "
                                 "1-D mesh", f"{e} at {path or '<root>'!r}",
                                 "Shard the tree with ftx.distributed.shard_params.")) from None
        if m is not None:
            if mesh is not None and m != mesh:
                raise ValueError(msg(api, "every DTensor leaf must live on one mesh",
                                     f"a second mesh at {path or '<root>'!r}",
                                     "Shard the whole tree with one shard_params call."))
            mesh = m
        w = m.size() if m is not None else 1
        r = m.get_local_rank() if m is not None else 0
        leaves.append(L.Leaf(kind, tuple(x.shape), x.dtype, x.device, m is not None, w, r))
    return leaves, mesh


def gather_full(api: str, pairs: list[tuple[str, Any]], cap_bytes: int = 25 * 2**20
                ) -> list[torch.Tensor]:
    """Full plain tensors for every leaf (sharded ones all-gathered in flat buckets)."""
    leaves, mesh = describe_leaves(api, pairs)
    xs = [x for _, x in pairs]
    return gather_leaves(api, leaves, xs, mesh, cap_bytes)


def gather_leaves(api: str, leaves: list[L.Leaf], xs: list[torch.Tensor], mesh: Any,
                  cap_bytes: int) -> list[torch.Tensor]:
    out = [L.local(x).detach() for x in xs]
    bks = L.buckets(leaves, cap_bytes, kinds=(L.SHARD,))
    if not bks:
        return out
    group = mesh.get_group()
    started = _run(api.split(".")[-1], lambda: [L.gather_start(leaves, xs, b, group)
                                                 for b in bks])
    for b, (work, flat, offs, size) in zip(bks, started):
        _run(api.split(".")[-1], work.wait)
        flat2d = flat.view(leaves[b[0]].world, size)
        for i in b:
            out[i] = L.unpack_gathered(flat2d, offs[i], leaves[i])
    return out
