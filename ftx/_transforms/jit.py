"""``jit``: ``torch.compile`` with defaults for functional code, a fast call path, a clear
fallback and clear errors.

Contract: ``jit(fun, *, fullgraph, dynamic, backend, mode, options, disable,
donate_argnums, donate_argnames)`` returns a function with ``fun``'s signature
and values, compiled by ``torch.compile`` on first call (and again for each new
input shape, dtype or device, as ``jax.jit`` retraces). The first six keywords
are ``torch.compile``'s; the donation keywords are JAX's (``donate.py``: the
donated arguments' buffers receive the outputs and the donated tensors are
deleted). It composes with every ftx / ``torch.func`` transform:

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

Per-call cost. A call through ``torch.compile`` pays for its Python wrapper,
the frame-evaluation hook and the cache lookup before any kernel runs: tens of
microseconds, as much as all the kernels of a small train step. So ``jit``
first compiles ``fun`` as one whole graph (``fullgraph=True``); once dynamo
holds a compiled entry for it, a call evaluates that entry's guards itself
(the guard set dynamo built: shapes, dtypes, devices, strides, grad mode, the
values the function closed over and the globals it read, less those on torch's
and ftx's own internals, see ``_guard_filter``) and, when they pass, runs
dynamo's compiled code directly. When no entry's guards pass, the call
goes through ``torch.compile``, which recompiles. A function that cannot be one
graph is compiled with graph breaks (``fullgraph=False``) and always called
through ``torch.compile``. ``fun`` is compiled through a private copy of its
code object, so that its compiled entries (and dynamo's recompile limit) are
this ``jit``'s own, not shared with other ``torch.compile`` calls of ``fun``.
"""

from __future__ import annotations

import enum
import functools
import inspect
import re
import types
import warnings
from collections.abc import Callable, Sequence
from typing import Any, ParamSpec, TypeVar, cast

import torch

from .._internal import torch_compat as _tc
from .._internal.errors import describe, msg
from .._internal.torch_compat import peek_interpreter_stack as _peek
from ..tree import leaves as _leaves
from .donate import Donation, check_live, donation

P = ParamSpec("P")
R = TypeVar("R")

__all__ = ["jit"]

# A torch.compile backend: a registered name or a callable taking (GraphModule, example inputs).
Backend = str | Callable[..., Any]
# Inductor options added when the first call's tensors are all on the CPU (unless ``mode`` or
# these keys are given). ``cpp_wrapper``: the generated code that allocates buffers and
# launches the kernels is C++ instead of Python (10 to 30 us less per call for a small MLP
# train step), and all kernels are built as one C++ file: without it each kernel is its own
# C++ build, and the C++ compiler took 2.2x the CPU time on a jitted MLP + Adam step.
# ``cpp_wrapper_build_separate`` (where this torch has it): that file is built as two, the
# wrapper at -O1 and the kernels at -O3 as before: a quarter less C++ compiler time on that
# step, a tenth on per-sample gradients, no measurable per-call cost.
# (docs/jit_custom_checkpoint.md, "The compile cache", has the measurements.)
_CPU_OPTIONS: dict[str, Any] = {"cpp_wrapper": True}
if "cpp_wrapper_build_separate" in _tc.inductor_options():
    _CPU_OPTIONS["cpp_wrapper_build_separate"] = True

_is_compiling = torch.compiler.is_compiling
# The direct call path reads dynamo's per-code cache of compiled entries (guards +
# transformed bytecode) and skips entries dynamo invalidated (an object it guarded by id was
# freed: their guard manager's check passes vacuously). torch_compat enables it only on the
# torch versions the suite ran on; elsewhere every call goes through torch.compile.
_FAST = _tc.JIT_DIRECT
_Deleted: Any = _tc.DeletedGuardManager
_MAX_ENTRIES = 8

# The global a guard starts from: ``G['name']``, maybe inside ``dict(``, ``type(``, ``len(``.
_GLOBAL_ROOT = re.compile(r"(?:\w+\()*G\['([^']+)'\]")
_LIBRARIES = frozenset({"torch", "ftx"})


def _library_global(name: str) -> bool:
    """Whether a guard's source is a global of torch's or ftx's own modules.

    Dynamo names a module that traced library code imports ``__import_<dotted name>`` (dots
    spelled ``_dot_``), as in ``G['__import_torch_dot_utils_dot_...']._LEAF_SPEC.num_nodes``.
    """
    m = _GLOBAL_ROOT.match(name)
    if m is None or not m.group(1).startswith("__import_"):
        return False
    module = m.group(1)[len("__import_") :].replace("_dot_", ".")
    return module.split(".")[0] in _LIBRARIES


def _keep_guard(entry: Any) -> bool:
    try:
        if entry.guard_type == "FUNCTORCH_STACK_MATCH":
            return False
        return not (entry.is_global and _library_global(entry.name))
    except Exception:  # an entry laid out differently: keep the guard
        return True


def _guard_filter(entries: Any) -> list[bool]:
    """Dynamo's guard filter for ``jit``: every guard but two kinds, checked on every call.

    * The functorch transform stack: ``jit`` runs compiled code only when no ``torch.func``
      transform is active (else ``fun`` runs eagerly), so this guard always passes.
    * Globals of torch's and ftx's own modules (their functions' code, module aliases such as
      ``ftx._transforms.reverse.torch is torch``, module constants): 101 of the 285 guard
      checks of an MLP + Adam step, 6 to 10 us a call. They change only if torch or ftx
      internals are monkeypatched after the first call. The arguments, the closure and the
      globals of every other module (the user's functions and constants) stay guarded.
    """
    return [_keep_guard(e) for e in entries]


def _modes() -> tuple[str, ...]:
    """The ``mode`` names this torch knows (inductor's list; the classic four as fallback)."""
    try:
        return tuple(_tc.inductor_modes())
    except Exception:  # a torch that lists them differently
        return _MODES


_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def _check_compile_kwargs(kwargs: dict[str, Any]) -> None:
    """Validate ``torch.compile``'s keywords when ``jit`` is built (torch checks some only at
    the first call, some with an ``AssertionError``)."""

    def bad(cls: type[Exception], required: str, got: str, fix: str) -> Exception:
        return cls(msg("jit", required, got, fix))

    for name in ("fullgraph", "disable"):
        if name in kwargs and not isinstance(kwargs[name], bool):
            raise bad(TypeError, f"{name} must be a bool", describe(kwargs[name]),
                      f"Pass {name}=True or {name}=False.")
    dynamic = kwargs.get("dynamic")
    if dynamic is not None and not isinstance(dynamic, bool):
        raise bad(TypeError, "dynamic must be a bool or None", describe(dynamic),
                  "Pass dynamic=False (one compile per shape), True or None.")
    backend = kwargs.get("backend", "inductor")
    if isinstance(backend, str):
        known = torch.compiler.list_backends(exclude_tags=())
        if backend not in known:
            raise bad(ValueError, f"backend must be one of {', '.join(known)} or a callable",
                      repr(backend), "Check the spelling; see torch.compiler.list_backends().")
    elif not callable(backend):
        raise bad(TypeError, "backend must be a backend name (str) or a callable",
                  describe(backend),
                  "Pass e.g. backend='inductor' or backend='eager'.")
    mode = kwargs.get("mode")
    if mode is not None:
        modes = _modes()
        if not isinstance(mode, str):
            raise bad(TypeError, "mode must be a str or None", describe(mode),
                      f"Pass one of {', '.join(modes)}.")
        if mode not in modes:
            raise bad(ValueError, f"mode must be one of {', '.join(modes)}", repr(mode),
                      "Check the spelling, or leave mode out.")
    options = kwargs.get("options")
    if options is not None:
        if not isinstance(options, dict) or not all(isinstance(k, str) for k in options):
            raise bad(TypeError, "options must be a dict of str keys or None", describe(options),
                      "Pass e.g. options={'max_autotune': True}.")
        if mode is not None and options:
            raise bad(ValueError, "mode or options, not both", f"mode={mode!r} and options "
                      f"{sorted(options)}", "Drop one of them (torch.compile takes either).")


def _build(target: Callable[..., Any], kwargs: dict[str, Any]) -> Callable[..., Any]:
    """``torch.compile`` with a torch-side refusal of the keywords as a ``ValueError``."""
    try:
        return torch.compile(target, **kwargs)
    except (RuntimeError, AssertionError, AttributeError, TypeError, ValueError) as e:
        user = {k: v for k, v in kwargs.items() if k != "options"}
        raise ValueError(msg(
            "jit", "keyword arguments torch.compile accepts",
            f"{user} with options {sorted(kwargs.get('options') or {})} "
            f"({type(e).__name__}: {str(e).strip()[:160]})",
            "See help(torch.compile) and inductor's list_options().",
        )) from None


def _compile_kwargs(kwargs: dict[str, Any], cpu: bool) -> dict[str, Any]:
    """``torch.compile`` keywords with ftx's default options (the user's own keys win)."""
    out = dict(kwargs)
    options = dict(out.get("options") or {})  # a copy: torch.compile pops keys from it
    if out.get("mode") is None:  # torch takes mode or options, not both
        defaults: dict[str, Any] = {"guard_filter_fn": _guard_filter}
        if cpu and out.get("backend", "inductor") == "inductor":
            defaults.update(_CPU_OPTIONS)
            if options.get("cpp_wrapper", True) is not True:  # the user turned it off
                defaults.pop("cpp_wrapper_build_separate", None)
        options = {**defaults, **options}
    if options:
        out["options"] = options
    return out


class _Direct:
    """Binds a call's arguments to ``fun``'s frame locals and runs dynamo's compiled code."""

    def __init__(self, fun: types.FunctionType) -> None:
        code = fun.__code__
        self.code = code.replace()  # a new code object: its own dynamo cache
        self.copy = types.FunctionType(
            self.code, fun.__globals__, fun.__name__, fun.__defaults__, fun.__closure__
        )
        self.copy.__kwdefaults__ = fun.__kwdefaults__
        self.copy.__qualname__ = fun.__qualname__
        self.copy.__dict__.update(fun.__dict__)
        self.name = fun.__name__
        self.globals = fun.__globals__
        self.closure = fun.__closure__
        nargs, nkw, flags = code.co_argcount, code.co_kwonlyargcount, code.co_flags
        self.nargs = nargs
        self.names = code.co_varnames[:nargs]
        rest = list(code.co_varnames[nargs + nkw :])
        self.varargs = rest.pop(0) if flags & inspect.CO_VARARGS else None
        self.varkw = rest.pop(0) if flags & inspect.CO_VARKEYWORDS else None
        self.cells = tuple(zip(code.co_freevars, self.closure or ()))
        self.ok = nkw == 0  # keyword-only parameters: always through torch.compile
        self.runners: dict[types.CodeType, Any] = {}

    def bind(self, args: tuple[Any, ...]) -> dict[str, Any] | None:
        """The frame locals dynamo's guards read, or None where only torch.compile can bind."""
        n, nargs = len(args), self.nargs
        if n != nargs and (n < nargs or self.varargs is None):
            return None
        loc = dict(zip(self.names, args))
        if self.varargs is not None:
            loc[self.varargs] = args[nargs:]
        if self.varkw is not None:
            loc[self.varkw] = {}
        try:
            for name, cell in self.cells:
                loc[name] = cell.cell_contents
        except ValueError:  # an empty cell
            return None
        return loc

    def runner(self, ecode: types.CodeType) -> Any:
        run = self.runners.get(ecode)
        if run is None:
            whole = ecode.co_freevars == self.code.co_freevars and not any(
                n.startswith("__resume") for n in ecode.co_names
            )
            run = (
                types.FunctionType(ecode, self.globals, self.name, None, self.closure)
                if whole
                else False
            )
            if len(self.runners) < 4 * _MAX_ENTRIES:
                self.runners[ecode] = run
        return run

    def call(self, args: tuple[Any, ...]) -> tuple[bool, Any]:
        """``(True, out)`` when a compiled entry's guards pass; ``(False, None)`` otherwise."""
        loc = self.bind(args)
        if loc is None:
            return False, None
        for n, entry in enumerate(_tc.cache_entries(self.code)):
            if n == _MAX_ENTRIES:
                break
            ecode, guards = entry.code, entry.guard_manager
            if ecode is not None and not isinstance(guards, _Deleted) and guards.check(loc):
                run = self.runner(ecode)
                if run is False:
                    return False, None
                return True, run(*args)
        return False, None


def _all_cpu(args: Any, kw: Any) -> bool:
    if torch.get_default_device().type != "cpu":
        return False
    return all(t.device.type == "cpu" for t in _leaves((args, kw)) if isinstance(t, torch.Tensor))


class _State(enum.Enum):
    """Where a jitted function stands; each call acts on it and may move it on."""

    FRESH = "fresh"  # never called at top level: the first call picks the CPU options
    WHOLE = "whole"  # compiled (or to be compiled) as one graph: the direct call path is open
    SPLIT = "split"  # compiled with graph breaks: every call goes through torch.compile
    EAGER = "eager"  # torch.compile could not trace it: runs eagerly (warned once)


class _Jitted:
    """The function ``jit`` returns: the call state of one compiled function.

    ``compiled`` is ``torch.compile`` with graph breaks allowed; ``whole`` the same with
    ``fullgraph=True`` (absent when the user asked for ``fullgraph`` or the direct path is
    off). ``cpp`` records whether the CPU options are in (a compile they break is retried
    without them).
    """

    def __init__(self, fun: Callable[..., Any], kwargs: dict[str, Any],
                 donate: Donation | None) -> None:
        self.fun = fun
        self.kwargs = kwargs
        self.donate = donate
        self.fullgraph = bool(kwargs.get("fullgraph", False))
        self.name = getattr(fun, "__qualname__", type(fun).__name__)
        target: Callable[..., Any] = donate.target(fun) if donate is not None else fun
        self.direct = (
            _Direct(target)
            if _FAST and isinstance(target, types.FunctionType) and not kwargs.get("disable")
            else None
        )
        self.target = self.direct.copy if self.direct is not None else target
        self.compiled, self.whole = self.make(True)  # bad keywords fail here, not at a call
        # Whether make(True) added the CPU options.
        self.cpp = _compile_kwargs(kwargs, True) != _compile_kwargs(kwargs, False)
        self.state = _State.FRESH
        self.fast = self.direct is not None and self.direct.ok

    def make(self, cpu: bool) -> tuple[Callable[..., Any], Callable[..., Any] | None]:
        split = _build(self.target, _compile_kwargs(self.kwargs, cpu))
        if self.fullgraph or self.direct is None:
            return split, None
        return split, _build(self.target,
                             _compile_kwargs({**self.kwargs, "fullgraph": True}, cpu))

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        """Bind as a method, as the plain function it replaces would."""
        return self if obj is None else types.MethodType(self, obj)

    def __call__(self, *args: Any, **kw: Any) -> Any:
        if _peek() is not None:  # inside a torch.func transform: fun runs eagerly
            return self.fun(*args, **kw)
        if _is_compiling():  # inside an outer torch.compile: traced into its graph
            return self.compiled(*args, **kw)
        if self.fast and not kw and _tc.compile_stance() == "default":
            assert self.direct is not None
            if self.donate is not None:
                self.donate.check(self.donate.pick(args, kw))
            hit, out = self.direct.call(args)
            if hit:
                if self.donate is not None:
                    return self.donate.retire(self.donate.pick(args, kw), out)
                return out
        if self.donate is None:
            return self.call(args, kw)
        donated = self.donate.check(self.donate.pick(args, kw))
        return self.donate.retire(donated, self.call(args, kw))

    def call(self, args: tuple[Any, ...], kw: dict[str, Any]) -> Any:
        """A top-level call the direct path did not serve."""
        check_live(_leaves((args, kw)))
        if self.state is _State.EAGER:
            return self.fun(*args, **kw)
        if self.state is _State.FRESH:
            self.state = _State.WHOLE if self.whole is not None else _State.SPLIT
            if self.cpp and not _all_cpu(args, kw):
                self.compiled, self.whole = self.make(False)
                self.cpp = False
        if self.state is _State.WHOLE and self.whole is not None:
            try:
                return self.whole(*args, **kw)
            except _tc.TorchDynamoException as err:
                if self.cpp and isinstance(err, _tc.BackendCompilerFailed):
                    return self.without_cpu_options(args, kw)
                # Not one graph (a graph break) or not traceable at all: if torch.compile
                # with graph breaks runs it (below), every later call goes that way.
                try:
                    out = self.compiled(*args, **kw)
                except _tc.TorchDynamoException as err2:
                    return self.failed(err2, args, kw)
                self.state, self.whole, self.fast = _State.SPLIT, None, False
                return out
        try:
            return self.compiled(*args, **kw)
        except _tc.TorchDynamoException as err:
            return self.failed(err, args, kw)

    def without_cpu_options(self, args: tuple[Any, ...], kw: dict[str, Any]) -> Any:
        self.compiled, self.whole = self.make(False)
        self.fast = self.direct is not None and self.direct.ok
        self.cpp = False
        return self.call(args, kw)

    def failed(self, err: Exception, args: tuple[Any, ...], kw: dict[str, Any]) -> Any:
        """torch.compile raised: retry without the CPU options, raise, or run eagerly."""
        if self.cpp and isinstance(err, _tc.BackendCompilerFailed):
            return self.without_cpu_options(args, kw)
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if self.fullgraph:
            raise ValueError(
                msg(
                    "jit",
                    f"a function torch.compile can trace as one graph (fullgraph=True) for "
                    f"'{self.name}'",
                    f"{type(err).__name__}: {reason}",
                    "Remove the data-dependent shape / Python side effect / .item() call, "
                    "or drop fullgraph=True to let ftx.jit fall back to Python there.",
                )
            ) from err
        out = self.fun(*args, **kw)  # an error of fun itself surfaces here, from eager code
        self.state, self.whole, self.fast = _State.EAGER, None, False
        warnings.warn(
            msg(
                "jit",
                f"a function torch.compile can trace, for '{self.name}'",
                f"{type(err).__name__}: {reason}",
                "Running it eagerly from now on (same results, no speed-up).",
            ),
            RuntimeWarning,
            stacklevel=3,
        )
        return out


def jit(
    fun: Callable[P, R],
    *,
    fullgraph: bool = False,
    dynamic: bool | None = False,
    backend: Backend = "inductor",
    mode: str | None = None,
    options: dict[str, Any] | None = None,
    disable: bool = False,
    donate_argnums: int | Sequence[int] = (),
    donate_argnames: str | Sequence[str] = (),
) -> Callable[P, R]:
    """Compile ``fun`` with ``torch.compile``; composes with ``grad``, ``vmap`` and the rest.

    Args:
        fun: a function of tensors / pytrees of tensors (a transformed function, a whole
            train step, a layer's apply).
        fullgraph: ``torch.compile``'s: a graph break is an error (``ValueError``) instead
            of a fall-back to Python for that part.
        dynamic: ``torch.compile``'s; default ``False``: one compile per input shape, as
            ``jax.jit``.
        backend: ``torch.compile``'s backend (a name or a callable), default
            ``"inductor"``.
        mode: ``torch.compile``'s mode, or ``None``.
        options: inductor options; default (without ``mode``) ``{"cpp_wrapper": True,
            "cpp_wrapper_build_separate": True}`` when the first call's tensors are on the
            CPU (C++ wrapper code: less Python per call; the wrapper built apart from the
            kernels at a lower optimisation level: a shorter C++ build). The user's keys win.
        disable: ``torch.compile``'s: run ``fun`` as is.
        donate_argnums: positions of the arguments whose tensors the call may overwrite
            (JAX's buffer donation): outputs are computed into donated buffers of the
            same shape, dtype and device, and every donated tensor is deleted by the call
            (using it afterwards raises ``ValueError``).
        donate_argnames: the same by parameter name.

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
        >>> step = ftx.jit(lambda w, g: w - 0.1 * g, donate_argnums=0)
        >>> w = torch.ones(3)
        >>> w2 = step(w, torch.ones(3))          # computed into w's buffer; w is gone
        >>> w2
        tensor([0.9000, 0.9000, 0.9000])
    """
    if not callable(fun):
        raise TypeError(msg("jit", "fun must be callable", describe(fun), "Pass a function."))
    kwargs: dict[str, Any] = {"dynamic": dynamic}
    for key, value, default in (
        ("fullgraph", fullgraph, False), ("backend", backend, "inductor"),
        ("mode", mode, None), ("options", options, None), ("disable", disable, False),
    ):
        if value is not default:
            kwargs[key] = value
    _check_compile_kwargs(kwargs)
    name = getattr(fun, "__name__", type(fun).__name__)
    jitted = _Jitted(fun, kwargs, donation(fun, donate_argnums, donate_argnames, name))
    # name, doc and __wrapped__; not fun's __dict__ (a jitted fun's would overwrite the state)
    functools.update_wrapper(jitted, fun, updated=())
    return cast(Callable[P, R], jitted)
