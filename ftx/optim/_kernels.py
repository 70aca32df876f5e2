"""The kernel routes: how an optimizer's formula runs, chosen once per update.

Each optimizer writes its update once, as a formula over *vectors* with the
operations of a :class:`Route` (``lerp``, ``mul``, ``addcmul``, ...). The route
decides what a vector is and how each operation runs:

* :class:`Foreach` (eager, no leaf needs gradients, a small tree or a GPU): a
  vector is the list of all leaves; each operation is one of torch's ``_foreach_*``
  kernels. Small trees are launch-bound, so one kernel per operation wins.
* :class:`PerLeaf` (eager, no leaf needs gradients, a CPU tree of at least
  ``2**20`` elements, or any eager tree when the foreach kernels are off): the
  formula runs leaf by leaf, each operation one torch call, so a leaf's
  buffers stay in the processor's caches from one operation to the next
  (whole-tree foreach kernels stream the model through memory once per kernel).
* :class:`Plain` (a leaf requires grad, as in MAML, or a transform such as
  ``vmap``/``grad``/``torch.compile`` is active): leaf by leaf, out of place,
  so autograd and functorch see ordinary ops; under a transform the
  hyper-parameters derived from the step count are float64 tensors.

Every operation takes ``own``: the first operand belongs to the formula (it is a
fresh buffer, or a donated state buffer) and may be overwritten. The fast routes
then run in place; :class:`Plain` never does. State buffers are owned only when
the caller donated the old state (``update(..., donate=True)``, ``donate`` here).
The routes give the same numbers up to the last bit of a few operations (the
per-leaf route fuses ``x / s + e`` into one pass); each is tested against
``torch.optim``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .._internal import torch_compat as _tc

__all__ = ["BIG", "Foreach", "Formula", "PerLeaf", "Plain", "Route", "pick"]

BIG = 1 << 20
"""CPU trees with at least this many elements run leaf by leaf (cache locality)."""

Formula = Callable[[Any, tuple[Any, ...], Any, bool], tuple[Any, tuple[Any, ...], bool]]
"""``(g, bufs, p, own) -> (u, new_bufs, u_owned)`` over vectors of one route."""


class Route:
    """The operations a formula may use (this base class is :class:`Plain`'s).

    Attributes:
        scalars: hyper-parameters are Python floats (eager); else float64 tensors.
        fast: the eager kernels (foreach or per-leaf) run; no autograd graph is built.
        batched: a vector is the list of all leaves (one call of the formula).
        donate: the old state's buffers may be overwritten (``update(donate=True)``).
        api: the public name for errors raised while updating.
    """

    fast = False
    batched = False

    def __init__(self, scalars: bool, api: str, donate: bool = False) -> None:
        self.scalars = scalars
        self.api = api
        self.donate = donate

    # -- driving a formula
    def run(self, f: Formula, g: list[torch.Tensor], bufs: tuple[Any, ...],
            p: list[torch.Tensor] | None, own: bool
            ) -> tuple[list[torch.Tensor], tuple[Any, ...], bool]:
        """Apply ``f`` to every leaf (one call per leaf, or one call on the lists)."""
        if self.batched or not g:
            u, new, owned = f(g, bufs, p, own)
            return u, new, owned
        us: list[torch.Tensor] = []
        cols: list[list[torch.Tensor] | None] = [None if b is None else [] for b in bufs]
        owned = own
        for k, gk in enumerate(g):
            bk = tuple(None if b is None else b[k] for b in bufs)
            uk, nk, owned = f(gk, bk, None if p is None else p[k], own)
            us.append(uk)
            for col, x in zip(cols, nk):
                if col is not None:
                    col.append(x)
        return us, tuple(cols), owned

    def count(self, step: torch.Tensor) -> Any:
        """The step count as a Python int (eager) or a float64 tensor (under transforms)."""
        if self.scalars:
            return int(step.item())
        dtype = torch.float32 if step.device.type == "mps" else torch.float64
        return step.to(dtype)

    def next_count(self, step: torch.Tensor) -> torch.Tensor:
        """``step + 1`` (in place when the state is donated)."""
        return step.add_(1) if self.donate else step + 1

    # -- elementwise operations (Plain: out of place, autograd- and functorch-safe)
    def lerp(self, x: Any, y: Any, w: Any, own: bool = False) -> Any:
        """``x + w * (y - x)``."""
        return torch.lerp(x, y, w)

    def mul(self, x: Any, s: Any, own: bool = False) -> Any:
        """``x * s`` for a number or a 0-d tensor ``s``."""
        return x * s

    def add(self, x: Any, y: Any, alpha: Any, own: bool = False) -> Any:
        """``x + alpha * y`` (torch's fused op in eager, plain ops under transforms).

        Under ``torch.compile`` (inductor, torch 2.13) ``torch.add(..., alpha=)`` applied
        to a ``torch.func.grad`` output loses ``alpha``; the plain form compiles correctly.
        """
        return torch.add(x, y, alpha=alpha) if self.scalars else x + y * alpha

    def adds(self, x: Any, e: Any, own: bool = False) -> Any:
        """``x + e`` for a number ``e``."""
        return x + e

    def addcmul(self, x: Any, a: Any, b: Any, value: Any, own: bool = False) -> Any:
        """``x + value * a * b``."""
        return torch.addcmul(x, a, b, value=value) if self.scalars else x + a * b * value

    def addcdiv(self, x: Any, a: Any, b: Any, own: bool = False) -> Any:
        """``x + a / b``."""
        return torch.addcdiv(x, a, b) if self.scalars else x + a / b

    def maximum(self, x: Any, y: Any, own: bool = False) -> Any:
        """Elementwise ``max(x, y)``."""
        return torch.maximum(x, y)

    def sqrt(self, x: Any, own: bool = False) -> Any:
        """``sqrt(x)``."""
        return torch.sqrt(x)

    def shift(self, x: Any, s: Any, e: Any, own: bool = False) -> Any:
        """``x / s + e`` for numbers ``s``, ``e``."""
        return x / s + e

    def div_into(self, x: Any, y: Any) -> Any:
        """``x / y``, where ``y`` is owned (the fast routes may write the result into it)."""
        return x / y

    def neg(self, x: Any, own: bool = False) -> Any:
        """``-x``."""
        return torch.neg(x)

    def copy(self, dst: Any, src: Any, own: bool = False) -> Any:
        """A copy of ``src`` (written into ``dst`` when ``dst`` is owned)."""
        return src.clone()

    def where(self, cond: Any, a: Any, b: Any) -> Any:
        """``a`` where ``cond`` else ``b`` (a 0-d ``cond``; out of place on every route)."""
        return torch.where(cond, a, b)


class Plain(Route):
    """Leaf by leaf, out of place: autograd (MAML) and transforms see ordinary ops."""


class PerLeaf(Route):
    """Leaf by leaf with torch's in-place ops on owned buffers (eager, no autograd graph)."""

    fast = True

    def __init__(self, scalars: bool, api: str, donate: bool = False) -> None:
        super().__init__(scalars, api, donate)
        self._shift: dict[tuple[torch.dtype, torch.device, float], torch.Tensor] = {}

    def lerp(self, x: Any, y: Any, w: Any, own: bool = False) -> Any:
        return x.lerp_(y, w) if own else torch.lerp(x, y, w)

    def mul(self, x: Any, s: Any, own: bool = False) -> Any:
        return x.mul_(s) if own else torch.mul(x, s)

    def add(self, x: Any, y: Any, alpha: Any, own: bool = False) -> Any:
        return x.add_(y, alpha=alpha) if own else torch.add(x, y, alpha=alpha)

    def adds(self, x: Any, e: Any, own: bool = False) -> Any:
        return x.add_(e) if own else torch.add(x, e)

    def addcmul(self, x: Any, a: Any, b: Any, value: Any, own: bool = False) -> Any:
        return x.addcmul_(a, b, value=value) if own else torch.addcmul(x, a, b, value=value)

    def addcdiv(self, x: Any, a: Any, b: Any, own: bool = False) -> Any:
        return x.addcdiv_(a, b) if own else torch.addcdiv(x, a, b)

    def maximum(self, x: Any, y: Any, own: bool = False) -> Any:
        return torch.maximum(x, y, out=x) if own else torch.maximum(x, y)

    def sqrt(self, x: Any, own: bool = False) -> Any:
        return x.sqrt_() if own else torch.sqrt(x)

    def shift(self, x: Any, s: Any, e: Any, own: bool = False) -> Any:
        # one pass: e + x * (1 / s), with e a cached 0-d tensor of x's dtype and device
        key = (x.dtype, x.device, e)
        t = self._shift.get(key)
        if t is None:
            t = self._shift[key] = torch.full((), e, dtype=x.dtype, device=x.device)
        if own:
            return torch.add(t, x, alpha=1 / s, out=x)
        return torch.add(t, x, alpha=1 / s)

    def div_into(self, x: Any, y: Any) -> Any:
        return torch.div(x, y, out=y)

    def neg(self, x: Any, own: bool = False) -> Any:
        return x.neg_() if own else torch.neg(x)

    def copy(self, dst: Any, src: Any, own: bool = False) -> Any:
        return dst.copy_(src) if own else src.clone()


def _each(own: bool, inplace: Callable[..., Any], fresh: Callable[..., Any], x: Any, *args: Any,
          **kwargs: Any) -> Any:
    """One foreach kernel: in place on the owned list ``x``, else a fresh list."""
    if own:
        inplace(x, *args, **kwargs)
        return x
    return list(fresh(x, *args, **kwargs))


class Foreach(Route):
    """The whole tree at once: one of torch's ``_foreach_*`` kernels per operation."""

    fast = True
    batched = True

    def lerp(self, x: Any, y: Any, w: Any, own: bool = False) -> Any:
        return _each(own, _tc.foreach_lerp_, _tc.foreach_lerp, x, y, w)

    def mul(self, x: Any, s: Any, own: bool = False) -> Any:
        if isinstance(s, torch.Tensor):  # a scheduled 0-d tensor may sit on another device
            return [a.mul_(s) for a in x] if own else [a * s for a in x]
        return _each(own, _tc.foreach_mul_, _tc.foreach_mul, x, s)

    def add(self, x: Any, y: Any, alpha: Any, own: bool = False) -> Any:
        return _each(own, _tc.foreach_add_, _tc.foreach_add, x, y, alpha=alpha)

    def adds(self, x: Any, e: Any, own: bool = False) -> Any:
        return _each(own, _tc.foreach_add_, _tc.foreach_add, x, e)

    def addcmul(self, x: Any, a: Any, b: Any, value: Any, own: bool = False) -> Any:
        return _each(own, _tc.foreach_addcmul_, _tc.foreach_addcmul, x, a, b, value)

    def addcdiv(self, x: Any, a: Any, b: Any, own: bool = False) -> Any:
        return _each(own, _tc.foreach_addcdiv_, _tc.foreach_addcdiv, x, a, b)

    def maximum(self, x: Any, y: Any, own: bool = False) -> Any:
        return _each(own, _tc.foreach_maximum_, _tc.foreach_maximum, x, y)

    def sqrt(self, x: Any, own: bool = False) -> Any:
        return _each(own, _tc.foreach_sqrt_, _tc.foreach_sqrt, x)

    def shift(self, x: Any, s: Any, e: Any, own: bool = False) -> Any:
        x = _each(own, _tc.foreach_div_, _tc.foreach_div, x, s)
        _tc.foreach_add_(x, e)
        return x

    def div_into(self, x: Any, y: Any) -> Any:
        return list(_tc.foreach_div(x, y))

    def neg(self, x: Any, own: bool = False) -> Any:
        return _each(own, _tc.foreach_neg_, _tc.foreach_neg, x)

    def copy(self, dst: Any, src: Any, own: bool = False) -> Any:
        return [d.copy_(s) for d, s in zip(dst, src)] if own else [s.clone() for s in src]


def pick(scalars: bool, fast: bool, api: str, grads: list[torch.Tensor], donate: bool) -> Route:
    """The route for one update (see the module docstring).

    ``fast`` means eager with no leaf that needs gradients; the foreach kernels are
    used when this torch has them (``torch_compat.FOREACH``) and the tree is small
    or off the CPU. ``donate`` is honoured on the fast routes only.
    """
    if not fast:
        return Plain(scalars, api)
    if _tc.FOREACH and not (
        grads and grads[0].device.type == "cpu" and sum(map(torch.Tensor.numel, grads)) >= BIG
    ):
        return Foreach(scalars, api, donate)
    return PerLeaf(scalars, api, donate)
