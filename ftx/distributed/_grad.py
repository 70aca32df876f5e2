"""Data-parallel and sharded gradients whose reduction overlaps the backward pass.

One engine serves both modes. Each leaf of the differentiated tree is either
replicated (a plain tensor: data parallel, gradients all-reduced) or sharded
(a DTensor from ``shard_params``: gathered for the forward pass, gradients
reduce-scattered). The leaves' gradients are packed into flat buckets with
the same layout as ``all_reduce``'s; a hook on the autograd graph
(``register_post_accumulate_grad_hook``) copies each gradient into its bucket
as soon as the backward pass produces it, and the bucket's collective starts
(``async_op=True``) the moment it is complete, while the backward pass goes on
with the earlier layers. Buckets are launched in one fixed order on every rank
(the last bucket first: its layers come first in the backward pass), as
``DistributedDataParallel`` does, so the collectives always pair up.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist

from .._internal.errors import check_bool, check_real, describe, msg
from ..tree import _flatten_with_path, unflatten
from . import _layout as L
from ._collectives import (
    DEFAULT_BUCKET_MB,
    _agree,
    _check_group,
    _digest,
    _require_group,
    _run,
    collective_error,
    divide_,
)
from ._sharded import describe_leaves, gather_leaves


class _Plan:
    """The buckets of one tree signature: agreed across ranks once, reused every step."""

    def __init__(self, leaves: list[L.Leaf], mesh: Any, group: Any, cap_bytes: int) -> None:
        self.leaves, self.mesh, self.cap = leaves, mesh, cap_bytes
        self.group = mesh.get_group() if mesh is not None else group
        self.buckets = L.buckets(leaves, cap_bytes, kinds=(L.REPLICATE, L.SHARD))
        self.bucket_of: dict[int, int] = {}
        self.offsets: list[dict[int, int]] = []
        self.sizes: list[int] = []
        for k, b in enumerate(self.buckets):
            offs, size = L.offsets(leaves, b)
            self.offsets.append(offs)
            self.sizes.append(size)
            for i in b:
                self.bucket_of[i] = k
        # the launch order: last bucket first, as the backward pass reaches the last layers first
        self.order = list(range(len(self.buckets)))[::-1]
        self.position = {k: n for n, k in enumerate(self.order)}


class _Reducer:
    """Packs gradients into their buckets as the backward pass makes them; launches in order."""

    def __init__(self, api: str, plan: _Plan, full: list[torch.Tensor]) -> None:
        self.api, self.plan = api, plan
        self.missing = [len(b) for b in plan.buckets]
        self.written = [False] * len(plan.leaves)
        self.inputs: list[torch.Tensor | None] = [None] * len(plan.buckets)
        self.outputs: list[torch.Tensor | None] = [None] * len(plan.buckets)
        self.works: list[Any] = [None] * len(plan.buckets)
        self.next = 0  # position in plan.order of the next bucket to launch
        self.handles = [f.register_post_accumulate_grad_hook(  # type: ignore[no-untyped-call]
                            functools.partial(self._hook, i))
                        for i, f in enumerate(full)]

    def _input(self, k: int) -> torch.Tensor:
        buf = self.inputs[k]
        if buf is None:
            b = self.plan.buckets[k]
            leaf = self.plan.leaves[b[0]]
            n = self.plan.sizes[k] * (leaf.world if leaf.kind == L.SHARD else 1)
            buf = self.inputs[k] = torch.empty(n, dtype=leaf.dtype, device=leaf.device)
        return buf

    def _write(self, i: int, g: torch.Tensor | None) -> None:
        k = self.plan.bucket_of[i]
        leaf, off, buf = self.plan.leaves[i], self.plan.offsets[k][i], self._input(k)
        if leaf.kind == L.SHARD:
            seg = buf.view(leaf.world, self.plan.sizes[k])[:, off : off + leaf.slot]
            if g is None:
                seg.zero_()
            else:
                L.pack_shard(seg, g, leaf)
        else:
            dst = buf[off : off + leaf.numel]
            dst.zero_() if g is None else dst.copy_(g.reshape(-1))
        self.written[i] = True
        self.missing[k] -= 1

    def _hook(self, i: int, t: torch.Tensor) -> None:
        g, t.grad = t.grad, None
        self._write(i, g)
        self._launch_ready()

    def _launch_ready(self) -> None:
        order = self.plan.order
        while self.next < len(order) and self.missing[order[self.next]] == 0:
            self._launch(order[self.next])
            self.next += 1

    def _launch(self, k: int) -> None:
        buf = self._input(k)
        group = self.plan.group
        leaf = self.plan.leaves[self.plan.buckets[k][0]]
        try:
            if leaf.kind == L.SHARD:
                out = torch.empty(self.plan.sizes[k], dtype=buf.dtype, device=buf.device)
                self.works[k] = L._reduce_scatter_flat(out, buf, op=dist.ReduceOp.SUM,
                                                       group=group, async_op=True)
                self.outputs[k] = out
            else:
                self.works[k] = dist.all_reduce(buf, op=dist.ReduceOp.SUM, group=group,
                                                async_op=True)
                self.outputs[k] = buf
        except (RuntimeError, TimeoutError) as e:
            raise collective_error(self.api, e) from e

    def finish(self) -> list[torch.Tensor]:
        """Launch what the backward pass left (unused leaves count as zero); wait; unpack."""
        for h in self.handles:
            h.remove()
        for i, done in enumerate(self.written):
            if not done:
                self._write(i, None)
        self._launch_ready()
        plan, out = self.plan, [torch.empty(0)] * len(self.plan.leaves)
        for k in plan.order:
            _run(self.api, self.works[k].wait)
            flat = self.outputs[k]
            assert flat is not None
            leaf0 = plan.leaves[plan.buckets[k][0]]
            divide_(flat, leaf0.world if plan.mesh is not None else _world(plan.group))
            for i in plan.buckets[k]:
                leaf, off = plan.leaves[i], plan.offsets[k][i]
                shape = leaf.local_shape if leaf.kind == L.SHARD else leaf.shape
                n = 1
                for s in shape:
                    n *= s
                out[i] = L.wrap(flat[off : off + n].view(shape), leaf, plan.mesh)
        return out


def _world(group: Any) -> int:
    return dist.get_world_size(group)


def _check_argnums(api: str, argnums: Any) -> tuple[int, ...] | int:
    ok = isinstance(argnums, int) and not isinstance(argnums, bool) and argnums >= 0
    if isinstance(argnums, tuple) and argnums:
        ok = all(isinstance(a, int) and not isinstance(a, bool) and a >= 0 for a in argnums) \
            and len(set(argnums)) == len(argnums)
    if not ok:
        raise (TypeError if not isinstance(argnums, int | tuple) else ValueError)(msg(
            api, "argnums must be a non-negative int or a non-empty tuple of unique ones",
            describe(argnums), "Pass e.g. argnums=0."))
    return argnums  # type: ignore[no-any-return]


def value_and_grad(
    fun: Callable[..., Any],
    argnums: int | tuple[int, ...] = 0,
    has_aux: bool = False,
    *,
    group: dist.ProcessGroup | None = None,
    bucket_mb: float = DEFAULT_BUCKET_MB,
    check: bool = True,
) -> Callable[..., Any]:
    """``ftx.value_and_grad`` across ranks: the gradient reduced while the backward pass runs.

    For every leaf of the differentiated argument:

    - a plain tensor (the same on every rank: data parallel) gets the gradient
      averaged over the ranks, equal to ``ftx.distributed.all_reduce(ftx.grad(fun)(...))``;
    - a DTensor from :func:`shard_params` is all-gathered before ``fun`` is called
      (``fun`` sees plain full tensors: the single-process loss, unchanged) and gets
      its shard of the averaged gradient (a reduce-scatter), a DTensor like itself.

    Gradients are packed into flat buckets of at most ``bucket_mb`` MiB; each
    bucket's collective starts as soon as the backward pass has produced all of
    its gradients, so the communication overlaps the rest of the backward pass
    (as in ``DistributedDataParallel`` and FSDP).

    Args:
        fun: a function returning a real floating scalar (and an aux value if ``has_aux``).
        argnums: which positional argument(s) to differentiate (a tuple: a tuple of grads).
        has_aux: ``fun`` returns ``(loss, aux)``.
        group: the process group of plain (data-parallel) leaves; sharded leaves use their
            mesh's group.
        bucket_mb: the largest bucket in MiB (DDP's default is 25).
        check: on the first call with a new tree signature, agree on it across the ranks
            (one tiny collective) so a mismatch is a ``ValueError`` naming the path.

    Returns:
        A function returning ``(value, grads)`` (``((value, aux), grads)`` with aux); the
        value is this rank's loss.

    Example (under ``torchrun``)::

        loss, grads = ftx.distributed.value_and_grad(loss_fn)(params, *ftx.distributed.shard(batch))
    """
    api = "distributed.value_and_grad"
    if not callable(fun):
        raise TypeError(msg(api, "fun must be callable", describe(fun), "Pass a function."))
    argnums = _check_argnums(api, argnums)
    check_bool(api, "has_aux", has_aux)
    _check_group("value_and_grad", group)
    mb = check_real(api, "bucket_mb", bucket_mb, low=0.0, low_open=True)
    check_bool(api, "check", check)
    cap = max(1, int(min(mb, 2.0**40) * 2**20))
    plans: dict[int, _Plan] = {}

    @functools.wraps(fun)
    def run(*args: Any, **kwargs: Any) -> Any:
        nums = argnums if isinstance(argnums, tuple) else (argnums,)
        if max(nums) >= len(args):
            raise ValueError(msg(api, f"argnums {argnums} must index the positional arguments",
                                 f"{len(args)} positional arguments",
                                 "Pass the differentiated arguments positionally."))
        diff = tuple(args[i] for i in nums)
        pairs, treedef = _flatten_with_path(api, "args", diff)
        leaves, mesh = describe_leaves(api, pairs)
        _require_group("value_and_grad")
        for (path, x), leaf in zip(pairs, leaves):
            if not leaf.dtype.is_floating_point:
                raise TypeError(msg(api, "differentiated leaves must be floating-point tensors",
                                    f"{x.dtype} at {path or '<root>'!r}",
                                    "Keep integer tensors out of the differentiated argument."))
        sig = [f"{p}:{lf.shape}:{lf.dtype}:{lf.kind}" for (p, _), lf in zip(pairs, leaves)]
        sig.append(f"treedef:{treedef.spec}")
        key = _digest(sig)
        plan = plans.get(key)
        if plan is None:
            if check and leaves:
                _agree("value_and_grad", sig, leaves[0].device,
                       mesh.get_group() if mesh is not None else group)
            plan = plans[key] = _Plan(leaves, mesh, group, cap)
        xs = [x for _, x in pairs]
        full = [f.requires_grad_(True) for f in
                gather_leaves(api, leaves, xs, mesh, cap)]
        full_tree = unflatten(treedef, full)
        new_args = list(args)
        for i, sub in zip(nums, full_tree):
            new_args[i] = sub
        reducer = _Reducer("value_and_grad", plan, full)
        try:
            with torch.enable_grad():
                out = fun(*new_args, **kwargs)
                value, aux = _split(api, out, has_aux)
                if full:
                    torch.autograd.backward(value, inputs=full)
        except BaseException:
            for h in reducer.handles:
                h.remove()
            raise
        grads = unflatten(treedef, reducer.finish() if full else [])
        g = grads if isinstance(argnums, tuple) else grads[0]
        v = value.detach()
        return ((v, _detach(aux)), g) if has_aux else (v, g)

    return run


def grad(
    fun: Callable[..., Any],
    argnums: int | tuple[int, ...] = 0,
    has_aux: bool = False,
    *,
    group: dist.ProcessGroup | None = None,
    bucket_mb: float = DEFAULT_BUCKET_MB,
    check: bool = True,
) -> Callable[..., Any]:
    """:func:`value_and_grad` without the value: ``grads`` (``(grads, aux)`` with aux)."""
    vg = value_and_grad(fun, argnums, has_aux, group=group, bucket_mb=bucket_mb, check=check)

    @functools.wraps(fun)
    def run(*args: Any, **kwargs: Any) -> Any:
        out, g = vg(*args, **kwargs)
        return (g, out[1]) if has_aux else g

    return run


def _split(api: str, out: Any, has_aux: bool) -> tuple[torch.Tensor, Any]:
    if has_aux:
        if not (isinstance(out, tuple) and len(out) == 2):
            raise TypeError(msg(api, "fun must return a (loss, aux) pair with has_aux=True",
                                describe(out), "Return (loss, aux) or drop has_aux."))
        value, aux = out
    else:
        value, aux = out, None
    if not (isinstance(value, torch.Tensor) and value.dim() == 0
            and value.dtype.is_floating_point):
        raise TypeError(msg(api, "fun must return a real floating-point scalar tensor (shape ())",
                            describe(value), "Reduce the loss to a scalar, e.g. with .mean()."))
    return value, aux


def _detach(aux: Any) -> Any:
    from ..tree import map as tree_map

    return tree_map(lambda x: x.detach() if isinstance(x, torch.Tensor) else x, aux)
