"""``jit``: ``torch.compile`` with defaults for functional code, a clear fallback and clear errors.

Contract: ``jit(fun, **torch_compile_kwargs)`` returns a function with
``fun``'s signature and values, compiled by ``torch.compile`` on first call
(and again for each new input shape, dtype or device, as ``jax.jit`` retraces).
It composes with every ftx / ``torch.func`` transform:

* ``jit(vmap(grad(f)))``, ``jit(train_step)``: the transforms are traced into
  one graph and compiled as a whole (no autograd graph at run time).
* ``grad(jit(f))`` with ``ftx.grad`` at top level (the ``torch.autograd``
  route): AOTAutograd compiles ``f``'s forward and backward. Under a
  ``torch.func`` transform ``fun`` runs eagerly (``torch.compile`` does not
  trace through an outer functorch level), giving the same numbers.

What ``torch.compile`` cannot trace (Python side effects such as ``print`` or
appending to a list, ``.item()``, data-dependent shapes) is handled as
follows: by default (``fullgraph=False``) torch breaks the graph and runs the
untraceable part in Python; when tracing fails altogether, ``jit`` runs
``fun`` eagerly from then on and warns once. With ``fullgraph=True`` a
tracing failure is a ``ValueError`` naming the reason.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import torch
import torch._dynamo.exc as _dynamo_exc

from ._errors import describe, msg
from ._functorch import _peek

P = ParamSpec("P")
R = TypeVar("R")

__all__ = ["jit"]

# Shapes are static by default: like jax.jit, a new shape is a new compile (fast code for the
# fixed shapes of a training loop, no symbolic-shape guards on every call).
_DEFAULTS: dict[str, Any] = {"dynamic": False}
_ALLOWED = {"fullgraph", "dynamic", "backend", "mode", "options", "disable"}


def jit(fun: Callable[P, R], **torch_compile_kwargs: Any) -> Callable[P, R]:
    """Compile ``fun`` with ``torch.compile``; composes with ``grad``, ``vmap`` and the rest.

    Args:
        fun: a function of tensors / pytrees of tensors (a transformed function, a whole
            train step, a layer's apply).
        **torch_compile_kwargs: passed to ``torch.compile``: ``fullgraph``, ``dynamic``
            (default ``False``: one compile per input shape, as ``jax.jit``), ``backend``
            (default ``"inductor"``), ``mode``, ``options``, ``disable``.

    Returns:
        A function with ``fun``'s signature and values. If ``torch.compile`` cannot trace
        ``fun`` at all it runs eagerly (one ``RuntimeWarning``); with ``fullgraph=True`` such
        a failure raises ``ValueError``.

    Example:
        >>> import torch, ftx
        >>> def loss(w, x):                      # (3,), (3,) -> ()
        ...     return (w * x).sum() ** 2
        >>> per_sample = ftx.jit(torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0)))
        >>> per_sample(torch.ones(3), torch.eye(3))   # (3,), (b, 3) -> (b, 3)
        tensor([[2., 0., 0.],
                [0., 2., 0.],
                [0., 0., 2.]])
    """
    if not callable(fun):
        raise TypeError(msg("jit", "fun must be callable", describe(fun), "Pass a function."))
    unknown = sorted(set(torch_compile_kwargs) - _ALLOWED)
    if unknown:
        raise TypeError(
            msg(
                "jit",
                f"keyword arguments of torch.compile ({', '.join(sorted(_ALLOWED))})",
                f"{', '.join(unknown)}",
                "Check the spelling; see help(torch.compile).",
            )
        )
    kwargs = {**_DEFAULTS, **torch_compile_kwargs}
    fullgraph = bool(kwargs.get("fullgraph", False))
    compiled = torch.compile(fun, **kwargs)
    name = getattr(fun, "__qualname__", type(fun).__name__)
    eager = False

    @functools.wraps(fun)
    def jitted(*args: P.args, **kw: P.kwargs) -> R:
        nonlocal eager
        if eager or _peek() is not None:
            return fun(*args, **kw)
        try:
            return compiled(*args, **kw)
        except _dynamo_exc.TorchDynamoException as err:
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            if fullgraph:
                raise ValueError(
                    msg(
                        "jit",
                        f"a function torch.compile can trace as one graph (fullgraph=True) for "
                        f"'{name}'",
                        f"{type(err).__name__}: {reason}",
                        "Remove the data-dependent shape / Python side effect / .item() call, "
                        "or drop fullgraph=True to let ftx.jit fall back to Python there.",
                    )
                ) from err
            out = fun(*args, **kw)  # an error of fun itself surfaces here, from eager code
            eager = True
            warnings.warn(
                msg(
                    "jit",
                    f"a function torch.compile can trace, for '{name}'",
                    f"{type(err).__name__}: {reason}",
                    "Running it eagerly from now on (same results, no speed-up).",
                ),
                RuntimeWarning,
                stacklevel=2,
            )
            return out

    return jitted
