"""Every private torch symbol ftx uses, imported here and nowhere else.

Contract: each symbol comes with a version gate and a fallback that the test suite
runs (``FTX_SLOW_ROUTES=1`` forces every fallback; CI runs the suite that way too).
Which fast routes this torch supports is decided once, at import:

* ``ENGINE_DIRECT``: ``grad``/``vjp`` call the autograd engine the way
  ``torch.autograd.grad`` does (``torch.autograd.graph._engine_run_backward``);
  fallback: ``torch.autograd.grad`` itself.
* ``GRAD_FAST_PATH``: top-level ``grad``/``value_and_grad``/``vjp`` run on the
  autograd engine instead of ``torch.func``; fallback: ``torch.func`` everywhere.
* ``JIT_DIRECT``: ``ftx.jit`` checks dynamo's guards and runs its compiled code
  itself; only on the torch versions the suite ran on (``JIT_TESTED``), since a
  change in dynamo's cache layout or guard semantics would run stale code;
  fallback: the ``torch.compile`` wrapper.
* ``FOREACH``: optimizers use the ``torch._foreach_*`` kernels; fallback: one
  tensor at a time.
* ``FAST_FLATTEN``: ftx's own flattener for dict/list/tuple trees; fallback: the
  registry's ``tree_flatten`` for the whole tree.
* ``RANDOM_COMPILED``: large eager ``ftx.random.normal`` draws run one compiled
  kernel per dtype/device (same bits); fallback: the eager tensor-op route.

The pytree registry itself (``torch.utils._pytree``) is the one ``torch.func``,
``torch.compile`` and ``torch.export`` use (DESIGN.md 1.2); it has no public
module, so its functions are re-exported here under the same names.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import torch
import torch.utils._pytree as _pt
from torch._C import _functorch as _fc


def _version(text: str) -> tuple[int, int]:
    major, minor = text.split("+")[0].split(".")[:2]
    return int(major), int("".join(c for c in minor if c.isdigit()) or 0)


TORCH_VERSION: tuple[int, int] = _version(torch.__version__)
# The minor versions the whole suite passed on (README: "Tested with").
TESTED: tuple[tuple[int, int], ...] = ((2, 13), (2, 15))
SLOW_ROUTES: bool = os.environ.get("FTX_SLOW_ROUTES", "") not in ("", "0")

# ------------------------------------------------------------------ pytree registry
tree_flatten = _pt.tree_flatten
tree_unflatten = _pt.tree_unflatten
tree_leaves = _pt.tree_leaves
tree_map = _pt.tree_map
tree_flatten_with_path = _pt.tree_flatten_with_path
tree_leaves_with_path = _pt.tree_leaves_with_path
# public name since torch 2.5; ``_is_leaf`` before
tree_is_leaf: Callable[..., bool] = getattr(_pt, "tree_is_leaf", None) or _pt._is_leaf
register_node = _pt.register_pytree_node
treespec_pprint = _pt.treespec_pprint
TreeSpec = _pt.TreeSpec
KeyEntry = Any
SequenceKey = _pt.SequenceKey
MappingKey = _pt.MappingKey
GetAttrKey = _pt.GetAttrKey
SUPPORTED_NODES: dict[type[Any], Any] = _pt.SUPPORTED_NODES


def _node_type_fallback(x: Any) -> type[Any]:
    """The registry key of ``x``: namedtuples share one entry (torch >= 2.2 layout)."""
    t = type(x)
    if t not in SUPPORTED_NODES and isinstance(x, tuple) and hasattr(t, "_fields"):
        return getattr(_pt, "namedtuple", t)
    return t


node_type: Callable[[Any], Any] = getattr(_pt, "_get_node_type", _node_type_fallback)


def children(x: Any) -> list[Any] | None:
    """The children of a registered node (in the registry's order), ``None`` for a leaf."""
    entry = SUPPORTED_NODES.get(node_type(x))
    if entry is None:
        return None
    kids, _ = entry.flatten_fn(x)
    return list(kids)


def broadcast_prefix(prefix: Any, spec: Any) -> list[Any] | None:
    """``prefix`` (a pytree prefix of the tree ``spec`` describes) broadcast to one entry
    per leaf, or ``None`` when it is not a prefix (torch's ``_broadcast_to_and_flatten``)."""
    fn = getattr(_pt, "_broadcast_to_and_flatten", None)
    if fn is not None:
        return fn(prefix, spec)  # type: ignore[no-any-return]
    return _broadcast_fallback(prefix, spec)


def _broadcast_fallback(prefix: Any, spec: Any) -> list[Any] | None:
    if spec.is_leaf():
        return [prefix]
    if node_type(prefix) is not spec.type or tree_is_leaf(prefix):
        if tree_is_leaf(prefix):
            return [prefix] * spec.num_leaves
        return None
    kids = children(prefix)
    if kids is None or len(kids) != len(spec.children_specs):
        return None
    out: list[Any] = []
    for kid, child_spec in zip(kids, spec.children_specs):
        sub = _broadcast_fallback(kid, child_spec)
        if sub is None:
            return None
        out.extend(sub)
    return out


# ------------------------------------------------------------------ functorch
peek_interpreter_stack: Callable[[], Any] = _fc.peek_interpreter_stack
is_functorch_wrapped_tensor: Callable[[torch.Tensor], bool] = _fc.is_functorch_wrapped_tensor
is_batchedtensor: Callable[[torch.Tensor], bool] = _fc.is_batchedtensor
get_unwrapped: Callable[[torch.Tensor], torch.Tensor] = _fc.get_unwrapped
maybe_get_bdim: Callable[[torch.Tensor], int] = _fc.maybe_get_bdim

get_interpreter_stack: Callable[[], Any] = _fc.get_interpreter_stack
maybe_get_level: Callable[[torch.Tensor], int] = _fc.maybe_get_level
add_batch_dim: Callable[[torch.Tensor, int, int], torch.Tensor] = _fc._add_batch_dim

# Contexts that step outside every functorch transform (clear_stack) or outside the
# innermost one (pop_stack), and the transform kinds; None where this torch lacks them
# (callers then skip what needs them).
clear_stack: Any
pop_stack: Any
VMAP_TRANSFORM: Any
JVP_TRANSFORM: Any
try:
    from torch._functorch.pyfunctorch import temporarily_clear_interpreter_stack as clear_stack
    from torch._functorch.pyfunctorch import temporarily_pop_interpreter_stack as pop_stack

    VMAP_TRANSFORM = _fc.TransformType.Vmap
    JVP_TRANSFORM = _fc.TransformType.Jvp
except (ImportError, AttributeError):  # pragma: no cover - a torch that moved them
    clear_stack = pop_stack = VMAP_TRANSFORM = JVP_TRANSFORM = None


def fwd_grad_enabled(mode: bool) -> contextlib.AbstractContextManager[Any]:
    """Forward AD on or off (torch runs a Function's ``jvp`` with it off)."""
    from torch.autograd import forward_ad

    return forward_ad._set_fwd_grad_enabled(mode)  # type: ignore[no-any-return,unused-ignore]


is_compiling: Callable[[], bool] = torch.compiler.is_compiling
is_wrapped = is_functorch_wrapped_tensor


def transform_active() -> bool:
    """True inside a ``torch.func`` transform or while ``torch.compile`` traces."""
    return peek_interpreter_stack() is not None or is_compiling()


def any_wrapped(leaves: Iterable[Any]) -> bool:
    """True when any leaf is a functorch-wrapped tensor (it came from an outer transform)."""
    return any(isinstance(x, torch.Tensor) and is_wrapped(x) for x in leaves)


def top_level(leaves: Iterable[Any]) -> bool:
    """True when no transform is active and no leaf is functorch-wrapped: the eager routes."""
    return not transform_active() and not any_wrapped(leaves)


# ------------------------------------------------------------------ autograd engine
_run_backward: Any
try:  # the engine entry point torch.autograd.grad calls (torch >= 2.3)
    from torch.autograd.graph import _engine_run_backward as _run_backward

    ENGINE_DIRECT = not SLOW_ROUTES
except ImportError:  # pragma: no cover - torch < 2.3
    _run_backward = None
    ENGINE_DIRECT = False

GRAD_FAST_PATH = not SLOW_ROUTES


def engine_grad(
    outs: Sequence[torch.Tensor],
    ins: Sequence[torch.Tensor],
    cts: Sequence[torch.Tensor],
    retain_graph: bool,
    create_graph: bool,
    plain: bool,
) -> Sequence[torch.Tensor | None]:
    """``torch.autograd.grad(outs, ins, cts, allow_unused=True, ...)``.

    With ``ENGINE_DIRECT`` and plain tensors (``plain``: no subclass with
    ``__torch_function__``) it calls the engine the way ``torch.autograd.grad`` does,
    skipping the several microseconds ``torch.autograd.grad`` spends normalising its
    arguments; otherwise it calls ``torch.autograd.grad``.
    """
    if plain and ENGINE_DIRECT and _run_backward is not None:
        result: Sequence[torch.Tensor | None] = _run_backward(
            tuple(outs), tuple(cts), retain_graph, create_graph, tuple(ins), True, False
        )
        return result
    return torch.autograd.grad(
        outs, ins, cts, retain_graph=retain_graph, create_graph=create_graph,
        allow_unused=True,
    )


# ------------------------------------------------------------------ dynamo (ftx.jit)
import torch._dynamo.eval_frame as _eval_frame  # noqa: E402
import torch._dynamo.exc as _dynamo_exc  # noqa: E402
import torch._dynamo.guards as _dynamo_guards  # noqa: E402

TorchDynamoException: type[Exception] = _dynamo_exc.TorchDynamoException
BackendCompilerFailed: type[Exception] = _dynamo_exc.BackendCompilerFailed
# Dynamo's per-code cache of compiled entries (guards + transformed bytecode).
_cache_entries: Any = getattr(_eval_frame, "_debug_get_cache_entry_list", None)
# An entry dynamo invalidated (an object it guarded by id was freed) holds this manager.
DeletedGuardManager: Any = getattr(_dynamo_guards, "DeletedGuardManagerWrapper", None)
JIT_TESTED = TORCH_VERSION in TESTED
JIT_DIRECT = (
    JIT_TESTED
    and not SLOW_ROUTES
    and _cache_entries is not None
    and DeletedGuardManager is not None
    and hasattr(_eval_frame, "_stance")
)


def inductor_modes() -> list[str]:
    """The ``torch.compile(mode=...)`` names inductor knows."""
    from torch._inductor import list_mode_options

    return list(list_mode_options())


def inductor_options() -> frozenset[str]:
    """The option names inductor takes in ``torch.compile(options=...)`` (empty if this torch
    cannot list them)."""
    try:
        from torch._inductor import list_options

        return frozenset(list_options())
    except Exception:  # a torch without the listing: callers add no optional keys
        return frozenset()


def cache_entries(code: Any) -> Iterator[Any]:
    """Dynamo's compiled entries for a code object, newest first."""
    return iter(_cache_entries(code)) if _cache_entries is not None else iter(())


def dynamo_counters() -> Any:
    """Dynamo's event counters (``counters["stats"]["unique_graphs"]``, graph breaks under
    ``counters["graph_break"]``, recompiles under ``counters["recompiles"]``); an empty
    mapping of counters where this torch keeps none."""
    try:
        from torch._dynamo.utils import counters
    except ImportError:  # pragma: no cover - a torch that moved them
        import collections

        return collections.defaultdict(collections.Counter)
    return counters


def compile_stance() -> str:
    """``torch.compiler.set_stance``'s current stance ("default" when unknown)."""
    stance = getattr(_eval_frame, "_stance", None)
    return str(getattr(stance, "stance", "default"))


# ------------------------------------------------------------------ foreach kernels
FOREACH = not SLOW_ROUTES and hasattr(torch, "_foreach_lerp")
foreach_add = torch._foreach_add
foreach_add_ = torch._foreach_add_
foreach_addcdiv = torch._foreach_addcdiv
foreach_addcdiv_ = torch._foreach_addcdiv_
foreach_addcmul = torch._foreach_addcmul
foreach_addcmul_ = torch._foreach_addcmul_
foreach_div = torch._foreach_div
foreach_div_ = torch._foreach_div_
foreach_lerp = torch._foreach_lerp
foreach_lerp_ = torch._foreach_lerp_
foreach_maximum = torch._foreach_maximum
foreach_maximum_ = torch._foreach_maximum_
foreach_mul = torch._foreach_mul
foreach_mul_ = torch._foreach_mul_
foreach_neg = torch._foreach_neg
foreach_neg_ = torch._foreach_neg_
foreach_norm = torch._foreach_norm
foreach_sqrt = torch._foreach_sqrt
foreach_sqrt_ = torch._foreach_sqrt_


def prims_fma() -> Any:
    """Inductor's fused multiply-add prim, which it lowers to a hardware fma; ``None``
    where absent. Inductor registers it when ``torch.compile`` is first called (after
    ftx's import), so it is looked up on each use (dynamo traces the lookup)."""
    return getattr(torch.ops.prims, "fma", None)


# ``ftx.random.normal`` runs large eager float32/float64 draws through one compiled,
# shape-dynamic kernel (ftx/random/_compiled.py), called directly through dynamo's
# cache entries as ``ftx.jit`` does; fallback: the eager tensor-op route (also forced
# by FTX_RANDOM_COMPILE=0, which spares a process that compile and nothing else).
RANDOM_COMPILED = JIT_DIRECT and os.environ.get("FTX_RANDOM_COMPILE", "") != "0"

FAST_FLATTEN = not SLOW_ROUTES


def routes() -> dict[str, bool]:
    """Which fast routes are on (for reports and the tests)."""
    return {
        "ENGINE_DIRECT": ENGINE_DIRECT,
        "GRAD_FAST_PATH": GRAD_FAST_PATH,
        "JIT_DIRECT": JIT_DIRECT,
        "FOREACH": FOREACH,
        "FAST_FLATTEN": FAST_FLATTEN,
        "RANDOM_COMPILED": RANDOM_COMPILED,
    }
