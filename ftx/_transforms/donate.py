"""Buffer donation for ``ftx.jit`` (JAX's ``donate_argnums`` / ``donate_argnames``).

Contract: a donated argument's tensors belong to the call. Inside the compiled graph each
output tensor is written into a donated input tensor of the same shape, dtype and device
(``copy_`` into the graph input: inductor fuses it into the kernel that computes the
output, so the new value is computed straight into the old buffer and no output buffer
is allocated). After the call every donated tensor is *deleted*: its storage is released
and any use of it (an operator, a method, ``.shape``, passing it to a jitted function)
raises ``ValueError`` naming the function it was donated to, as JAX's deleted-buffer
error does. The outputs are fresh tensor objects, whether they reuse a donated buffer or
not, so they stay valid.

What is written in place: an output leaf is paired with the first unused donated leaf
of the same shape, dtype and device, in output order, when neither requires grad, the
donated leaf is a plain tensor that is not a view and not an inference tensor, and no
output is a view of it. Donated leaves that no output fits are deleted all the same.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch

from .._internal import pytree as _ft
from .._internal import torch_compat as _tc
from .._internal.errors import describe, msg

__all__ = ["DonatedTensor", "Donation", "check_live", "donation"]


class DonatedTensor(torch.Tensor):
    """A tensor donated to an ``ftx.jit`` call and deleted by it: every use raises."""

    _ftx_deleted: str  # the error message
    _ftx_what: str  # what it was, for repr

    @classmethod
    def __torch_function__(
        cls,
        func: Any,
        types: Any,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        for x in _tc.tree_leaves((list(args), kwargs or {})):
            if isinstance(x, DonatedTensor):
                raise ValueError(x._ftx_deleted)
        raise ValueError(  # pragma: no cover - torch passes the deleted tensor in args
            msg("jit", "a live tensor", "a donated, deleted tensor",
                "Use the jitted call's outputs instead of its donated inputs.")
        )

    def __repr__(self, *, tensor_contents: Any = None) -> Any:  # type: ignore[override]
        return f"<deleted: {self._ftx_what}>"


def _what(t: torch.Tensor, name: str) -> str:
    shape = ", ".join(str(n) for n in t.shape)
    kind = str(t.dtype).replace("torch.", "")
    return f"a {kind}[{shape}] tensor donated to '{name}'"


def _deleted_message(what: str) -> str:
    return msg(
        "jit",
        "a live tensor",
        f"{what} and deleted by that call",
        "Use the call's outputs instead of its donated inputs (donate_argnums / "
        "donate_argnames hand the input buffers over to the outputs), or do not donate "
        "that argument.",
    )


def _delete(t: torch.Tensor, name: str) -> None:
    """Release ``t``'s storage and turn every later use of ``t`` into an ftx error."""
    if type(t) is not torch.Tensor and type(t) is not torch.nn.Parameter:
        return  # a tensor subclass: left alone (its class may hold state of its own)
    what = _what(t, name)
    try:
        with torch.no_grad():
            t.set_()  # type: ignore[call-overload]  # a new empty storage; aliases made before keep the old one alive
    except RuntimeError:  # an inference tensor outside inference mode: keep its storage
        pass
    t.__class__ = DonatedTensor
    t._ftx_what = what  # type: ignore[attr-defined]
    t._ftx_deleted = _deleted_message(what)  # type: ignore[attr-defined]


def _alias(t: torch.Tensor) -> torch.Tensor:
    """A new tensor object over ``t``'s storage (same offset, shape, strides)."""
    with torch.no_grad():
        out = torch.empty(0, dtype=t.dtype, device=t.device)
        out.set_(t.untyped_storage(), t.storage_offset(), t.shape, t.stride())
    return out


def check_live(leaves: Sequence[Any]) -> None:
    """Raise the deleted-tensor error when a deleted tensor is among ``leaves``."""
    for x in leaves:
        if isinstance(x, DonatedTensor):
            raise ValueError(x._ftx_deleted)


def _write_back(out: Any, donated: list[Any]) -> Any:
    """Inside the traced graph: write each output tensor into a donated buffer that fits."""
    pool = [
        d
        for d in _tc.tree_leaves(donated)
        if type(d) is torch.Tensor
        and not d.requires_grad
        and d._base is None
    ]
    if not pool:
        return out
    leaves, spec = _tc.tree_flatten(out)
    tensors = [o for o in leaves if isinstance(o, torch.Tensor)]
    # An output that is a donated tensor itself keeps it; one that views it pins it.
    pool = [
        d for d in pool if not any(o is d or o._base is d for o in tensors)
    ]
    new = []
    for o in leaves:
        if isinstance(o, torch.Tensor) and not o.requires_grad:
            for k, d in enumerate(pool):
                if d.shape == o.shape and d.dtype == o.dtype and d.device == o.device:
                    d.copy_(o)
                    o = d
                    del pool[k]
                    break
        new.append(o)
    return _tc.tree_unflatten(new, spec)


def _sequence(value: Any, kind: type, what: str, example: str) -> tuple[Any, ...]:
    items = (value,) if isinstance(value, kind) else value
    ok = isinstance(items, tuple | list) and all(
        isinstance(v, kind) and not isinstance(v, bool) for v in items
    )
    if not ok:
        raise TypeError(
            msg("jit", f"{what} must be {'an int' if kind is int else 'a str'} or a tuple of "
                f"them", describe(value), f"Pass e.g. {example}.")
        )
    return tuple(items)


class Donation:
    """Which arguments a jitted function donates (resolved once, when ``jit`` is built)."""

    def __init__(self, fun: Callable[..., Any], argnums: Any, argnames: Any, name: str) -> None:
        nums = _sequence(argnums, int, "donate_argnums", "donate_argnums=(0, 1)")
        names = _sequence(argnames, str, "donate_argnames", "donate_argnames=('params',)")
        for i in nums:
            if i < 0:
                raise ValueError(
                    msg("jit", "donate_argnums must be non-negative positions", repr(argnums),
                        "Count positional arguments from 0.")
                )
        self.name = name
        positions, keywords = set(nums), set(names)
        try:
            params = list(inspect.signature(fun).parameters.values())
        except (TypeError, ValueError):  # no signature (a builtin): take the numbers as given
            params = None
        if params is not None:
            kinds = inspect.Parameter
            positional = [p for p in params if p.kind in (kinds.POSITIONAL_ONLY,
                                                          kinds.POSITIONAL_OR_KEYWORD)]
            varargs = any(p.kind is kinds.VAR_POSITIONAL for p in params)
            varkw = any(p.kind is kinds.VAR_KEYWORD for p in params)
            for i in nums:
                if i >= len(positional) and not varargs:
                    raise ValueError(
                        msg("jit", f"donate_argnums within the {len(positional)} positional "
                            f"parameter(s) of '{name}'", repr(argnums),
                            "Count positional arguments from 0.")
                    )
                if i < len(positional) and positional[i].kind is kinds.POSITIONAL_OR_KEYWORD:
                    keywords.add(positional[i].name)
            by_name = {p.name: p for p in params}
            for n in names:
                p = by_name.get(n)
                if (p is None and not varkw) or (p is not None and p.kind in (
                    kinds.POSITIONAL_ONLY, kinds.VAR_POSITIONAL, kinds.VAR_KEYWORD
                )):
                    raise ValueError(
                        msg("jit", f"donate_argnames naming parameters of '{name}' that can "
                            "be passed by keyword", repr(n),
                            f"Pick from {[q.name for q in params]}.")
                    )
                if p is not None and p in positional:
                    positions.add(positional.index(p))
        self.positions = tuple(sorted(positions))
        self.keywords = tuple(sorted(keywords))

    def __bool__(self) -> bool:
        return bool(self.positions or self.keywords)

    def pick(self, args: tuple[Any, ...], kw: dict[str, Any]) -> list[Any]:
        """The donated arguments of one call."""
        out = [args[i] for i in self.positions if i < len(args)]
        if kw:
            out.extend(kw[n] for n in self.keywords if n in kw)
        return out

    def check(self, donated: list[Any]) -> list[Any]:
        """Refuse, before the call, donated inference tensors outside inference mode: the
        compiled write-back could not write into them (checked here, outside the graph, so
        that dynamo traces the write-back without a graph break)."""
        if torch.is_inference_mode_enabled():
            return donated
        for t in _ft.flatten(donated)[0]:
            if isinstance(t, torch.Tensor) and t.is_inference():
                raise ValueError(
                    msg("jit", f"donated tensors of '{self.name}' that can be written in "
                        "place", f"an inference tensor {describe(t)} (made under "
                        "torch.inference_mode) outside inference mode",
                        "Clone it outside inference mode (x.clone()), call the function "
                        "inside torch.inference_mode(), or do not donate that argument.")
                )
        return donated

    def target(self, fun: Callable[..., Any]) -> Callable[..., Any]:
        """``fun`` followed by the in-graph write-back: the function ``jit`` compiles."""
        pick = self.pick

        def donating(*args: Any, **kw: Any) -> Any:
            return _write_back(fun(*args, **kw), pick(args, kw))

        donating.__name__ = getattr(fun, "__name__", "donating")
        donating.__qualname__ = getattr(fun, "__qualname__", "donating")
        return donating

    def retire(self, donated: list[Any], out: Any) -> Any:
        """After a call: fresh output objects for outputs that are donated tensors, then
        every donated tensor deleted."""
        gone = [t for t in _ft.flatten(donated)[0] if isinstance(t, torch.Tensor)]
        if not gone:
            return out
        ids = {id(t) for t in gone}
        leaves, spec = _ft.flatten(out)
        if any(id(o) in ids for o in leaves):
            out = _ft.unflatten(spec, [_alias(o) if id(o) in ids else o for o in leaves])
        for t in gone:
            if not isinstance(t, DonatedTensor):
                _delete(t, self.name)
        return out


def donation(
    fun: Callable[..., Any], argnums: Any, argnames: Any, name: str
) -> Donation | None:
    """The resolved donation of ``jit(fun, donate_argnums=..., donate_argnames=...)``."""
    d = Donation(fun, argnums, argnames, name)
    return d if d else None
