"""ftx.jit: torch.compile composed with the transforms, a whole train step, fallbacks, errors.

Compiles are slow on a small CPU: each compiled function here is built once per module
(fixtures with ``scope="module"``) and the compile tests are marked ``slow``.
"""

from __future__ import annotations

import gc
import itertools
import types
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import torch

import ftx
from ftx._internal import torch_compat as _tc

from ._engines import ENGINES, Engine
from .helpers import tree_allclose

# The direct call path exists only on tested torch versions and without FTX_SLOW_ROUTES=1.
NEEDS_DIRECT = pytest.mark.skipif(
    not _tc.JIT_DIRECT, reason="jit's direct call path is off (untested torch or FTX_SLOW_ROUTES=1)"
)

T = torch.Tensor
F64 = torch.float64
SIZES = (8, 16, 16, 4)
# A silent eager fallback would make these tests pass without compiling: make it an error.
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("error:ftx.jit:RuntimeWarning")]
AXES = (None, None, None, None, None, None, 0, 0)
AXES_G = (0, 1, 2, 3, 4, 5)


def _init(dtype: torch.dtype = torch.float32) -> dict[str, dict[str, T]]:
    g = torch.Generator().manual_seed(0)
    params = {}
    for i, (m, n) in enumerate(itertools.pairwise(SIZES)):
        params[str(2 * i)] = {
            "weight": (torch.randn(n, m, generator=g, dtype=F64) / m**0.5).to(dtype),
            "bias": (torch.randn(n, generator=g, dtype=F64) * 0.1).to(dtype),
        }
    return params


def mlp(params: dict[str, dict[str, T]], x: T) -> T:  # x: (batch, 8) -> (batch, 4)
    keys = sorted(params, key=int)
    for k in keys[:-1]:
        x = torch.tanh(torch.nn.functional.linear(x, params[k]["weight"], params[k]["bias"]))
    last = params[keys[-1]]
    return torch.nn.functional.linear(x, last["weight"], last["bias"])


def loss_fn(params: dict[str, dict[str, T]], x: T, y: T) -> T:
    return torch.nn.functional.cross_entropy(mlp(params, x), y)


def _data(batch: int, dtype: torch.dtype = torch.float32) -> tuple[T, T]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, SIZES[0], generator=g, dtype=F64).to(dtype)
    return x, torch.randint(0, SIZES[-1], (batch,), generator=g)


# ----------------------------------------------------------------------------- jit(vmap(grad))
def _flat_mlp_loss(w0: T, b0: T, w1: T, b1: T, w2: T, b2: T, x: T, y: T) -> T:
    p = {"0": {"weight": w0, "bias": b0}, "2": {"weight": w1, "bias": b1}}
    p["4"] = {"weight": w2, "bias": b2}
    return loss_fn(p, x[None], y[None])


@pytest.mark.parametrize("engine", ENGINES)
def test_jit_of_vmap_of_grad_per_sample_gradients(engine: Engine) -> None:
    # Tensor arguments: ftx.vmap takes its fast route (its pytree route does not compile yet).
    per_sample = engine.vmap(engine.grad(_flat_mlp_loss, argnums=AXES_G), AXES)
    jitted = ftx.jit(per_sample)
    x, y = _data(6, F64)
    p = [t for layer in _init(F64).values() for t in layer.values()]
    got = jitted(*p, x, y)
    got_again = jitted(*p, 2 * x, y)  # second call: the compiled code, no recompile needed
    want = [torch.func.grad(_flat_mlp_loss, argnums=AXES_G)(*p, x[i], y[i]) for i in range(6)]
    tree_allclose(got, ftx.tree.map(lambda *r: torch.stack(r), *want), rtol=1e-9, atol=1e-11)
    tree_allclose(got_again, per_sample(*p, 2 * x, y), rtol=1e-9, atol=1e-11)


# ----------------------------------------------------------------------------- jit(train_step)
def _train_step(opt: ftx.optim.GradientTransformation) -> Callable[..., Any]:
    def step(params: Any, state: Any, x: T, y: T) -> tuple[Any, Any, T]:
        loss, grads = ftx.value_and_grad(loss_fn)(params, x, y)
        updates, state = opt.update(grads, state, params)
        return ftx.optim.apply_updates(params, updates), state, loss

    return step


def _torch_twin(params: Any, make_opt: Callable[..., torch.optim.Optimizer]) -> Any:
    model = torch.nn.Sequential(
        torch.nn.Linear(8, 16),
        torch.nn.Tanh(),
        torch.nn.Linear(16, 16),
        torch.nn.Tanh(),
        torch.nn.Linear(16, 4),
    ).to(F64)
    model.load_state_dict({f"{k}.{n}": v for k, d in params.items() for n, v in d.items()})
    return model, make_opt(model.parameters())


OPTIMIZERS = [
    pytest.param(
        lambda: ftx.optim.adam(lr=1e-2), lambda ps: torch.optim.Adam(ps, lr=1e-2), id="adam"
    ),
    pytest.param(
        lambda: ftx.optim.sgd(lr=0.1, momentum=0.9),
        lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9),
        id="sgd_momentum",
    ),
]


@pytest.mark.parametrize(("make_ftx", "make_torch"), OPTIMIZERS)
def test_jit_train_step_matches_eager_and_torch_optim(make_ftx: Any, make_torch: Any) -> None:
    opt = make_ftx()
    step = _train_step(opt)
    jitted = ftx.jit(step)
    params = _init(F64)
    x, y = _data(16, F64)
    p_jit, s_jit = params, opt.init(params)
    p_eager, s_eager = params, opt.init(params)
    model, topt = _torch_twin(params, make_torch)
    for _ in range(4):
        p_jit, s_jit, loss_jit = jitted(p_jit, s_jit, x, y)
        p_eager, s_eager, loss_eager = step(p_eager, s_eager, x, y)
        topt.zero_grad()
        loss_torch = torch.nn.functional.cross_entropy(model(x), y)
        loss_torch.backward()
        topt.step()
        torch.testing.assert_close(loss_jit, loss_eager, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(loss_jit, loss_torch.detach(), rtol=1e-10, atol=1e-12)
    tree_allclose(p_jit, p_eager, rtol=1e-10, atol=1e-12)
    tree_allclose(p_jit, ftx.nn.params_of(model), rtol=1e-9, atol=1e-11)
    assert all(isinstance(v, torch.Tensor) for v in ftx.tree.leaves(s_jit))


# ----------------------------------------------------------------------------- grad(jit(f))
@pytest.fixture(scope="module")
def jitted_loss() -> Callable[..., T]:
    return ftx.jit(loss_fn)


@pytest.mark.parametrize("engine", ENGINES)
def test_grad_of_jit(jitted_loss: Callable[..., T], engine: Engine) -> None:
    params = _init(F64)
    x, y = _data(8, F64)
    want = torch.func.grad(loss_fn)(params, x, y)
    tree_allclose(engine.grad(jitted_loss)(params, x, y), want, rtol=1e-10, atol=1e-12)
    tree_allclose(jitted_loss(params, x, y), loss_fn(params, x, y), rtol=1e-10, atol=1e-12)


def test_jit_keeps_custom_rules() -> None:
    wrong = ftx.custom_vjp(torch.sin)
    wrong.defvjp(lambda x: (torch.sin(x), x), lambda x, g: (3.0 * x * g,))
    x = torch.tensor([0.3, -1.2, 2.0], dtype=F64)
    got = ftx.jit(ftx.grad(lambda x: wrong(x).sum()))(x)
    torch.testing.assert_close(got, 3.0 * x)
    rule = ftx.custom_jvp(torch.sin)
    rule.defjvp(lambda p, t: (torch.sin(p[0]), 3.0 * p[0] * t[0]))
    _, tangent = ftx.jit(lambda x: ftx.jvp(rule, (x,), (torch.ones_like(x),)))(x)
    torch.testing.assert_close(tangent, 3.0 * x)


# ----------------------------------------------------------------------------- what cannot compile
@torch.library.custom_op("ftx_test_jit::no_fake_kernel", mutates_args=())
def _no_fake_kernel(x: T) -> T:
    # An op torch.compile cannot trace: no fake (meta) implementation is registered.
    return x * 2


@pytest.mark.filterwarnings("default:ftx.jit:RuntimeWarning")
def test_untraceable_function_falls_back_to_eager_with_one_warning() -> None:
    calls = []

    def f(x: T) -> T:
        calls.append(1)
        return _no_fake_kernel(x) + 1

    jf = ftx.jit(f)
    x = torch.arange(3.0)
    with pytest.warns(
        RuntimeWarning,
        match=r"ftx\.jit: a function torch\.compile can trace, for "
        r"'.*f', got .*Running it eagerly from now on",
    ):
        torch.testing.assert_close(jf(x), 2 * x + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        torch.testing.assert_close(jf(x + 1), 2 * x + 3)  # eager from now on, no new warning


def _branchy(x: T) -> T:
    if x.sum() > 0:  # data-dependent control flow: a graph break
        return x * 2
    return x * 3


def test_graph_breaks_run_in_python_by_default() -> None:
    jf = ftx.jit(_branchy)
    x = torch.tensor([1.0, 2.0])
    torch.testing.assert_close(jf(x), 2 * x)
    torch.testing.assert_close(jf(-x), -3 * x)


def _branchy_too(x: T) -> T:
    # Its own code object: dynamo caches compiled code per code object, across torch.compile's.
    if x.sum() > 0:
        return x * 2
    return x * 3


def test_fullgraph_failure_is_a_value_error() -> None:
    jf = ftx.jit(_branchy_too, fullgraph=True)
    with pytest.raises(
        ValueError,
        match=r"ftx\.jit: a function torch\.compile can trace as one graph \(fullgraph=True\) "
        r"for '_branchy_too', got Unsupported: .*drop fullgraph=True",
    ):
        jf(torch.ones(2))


@pytest.mark.parametrize(
    ("make", "exc", "pattern"),
    [
        pytest.param(
            lambda: ftx.jit(3),
            TypeError,
            r"ftx\.jit: fun must be callable, got int 3",
            id="not_callable",
        ),
        pytest.param(
            lambda: ftx.jit(torch.sin, fulgraph=True),
            TypeError,  # the keywords are typed parameters: Python names the stray one
            r"jit\(\) got an unexpected keyword argument 'fulgraph'",
            id="unknown_kwarg",
        ),
        pytest.param(lambda: ftx.jit(torch.sin, mode="bogus"), ValueError,
                     r"ftx\.jit: mode must be one of default, .*, got 'bogus'\. Check the "
                     r"spelling", id="mode"),
        pytest.param(lambda: ftx.jit(torch.sin, mode=5), TypeError,
                     r"ftx\.jit: mode must be a str or None, got int 5\.", id="mode_kind"),
        pytest.param(lambda: ftx.jit(torch.sin, dynamic="maybe"), TypeError,
                     r"ftx\.jit: dynamic must be a bool or None, got str 'maybe'\.",
                     id="dynamic"),
        pytest.param(lambda: ftx.jit(torch.sin, backend=5), TypeError,
                     r"ftx\.jit: backend must be a backend name \(str\) or a callable, got "
                     r"int 5\.", id="backend_kind"),
        pytest.param(lambda: ftx.jit(torch.sin, backend="bogus"), ValueError,
                     r"ftx\.jit: backend must be one of .*inductor.* or a callable, got "
                     r"'bogus'\. Check the spelling", id="backend_name"),
        pytest.param(lambda: ftx.jit(torch.sin, fullgraph="yes"), TypeError,
                     r"ftx\.jit: fullgraph must be a bool, got str 'yes'\.", id="fullgraph"),
        pytest.param(lambda: ftx.jit(torch.sin, disable=None), TypeError,
                     r"ftx\.jit: disable must be a bool, got NoneType None\.", id="disable"),
        pytest.param(lambda: ftx.jit(torch.sin, options=[1]), TypeError,
                     r"ftx\.jit: options must be a dict of str keys or None, got list \[1\]",
                     id="options_kind"),
        pytest.param(lambda: ftx.jit(torch.sin, mode="default", options={"max_autotune": True}),
                     ValueError, r"ftx\.jit: mode or options, not both, got mode='default' "
                     r"and options \['max_autotune'\]\.", id="mode_and_options"),
        pytest.param(lambda: ftx.jit(torch.sin, options={"bogus_option": 1}), ValueError,
                     r"ftx\.jit: keyword arguments torch\.compile accepts, got .*"
                     r"RuntimeError: Unexpected optimization option bogus_option",
                     id="unknown_option"),
    ],
)
def test_errors(make: Callable[[], Any], exc: type[Exception], pattern: str) -> None:
    with pytest.raises(exc, match=pattern):
        make()


# ----------------------------------------------------------------------------- the direct path
# After the first call, ftx.jit checks dynamo's guards itself and runs the compiled code
# directly. `_probe` tells compiled code (x * 2 + 1) from eager code (x * 2) apart: under
# torch.compile `is_compiling()` is traced as True.
def _probe(x: T) -> T:
    return x * 2 + (1 if torch.compiler.is_compiling() else 0)


@pytest.fixture
def direct_hits(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Records, for each ftx.jit call that tried the direct path, whether it ran from there."""
    from ftx._transforms import jit as _jit

    hits: list[bool] = []
    call = _jit._Direct.call

    def spy(self: Any, args: tuple[Any, ...]) -> tuple[bool, Any]:
        hit, out = call(self, args)
        hits.append(hit)
        return hit, out

    monkeypatch.setattr(_jit._Direct, "call", spy)
    return hits


@NEEDS_DIRECT
def test_repeat_calls_run_the_compiled_code_directly(direct_hits: list[bool]) -> None:
    jf = ftx.jit(_probe)
    x = torch.arange(3.0)
    for k in range(3):
        torch.testing.assert_close(jf(x + k), 2 * (x + k) + 1)
    assert direct_hits == [False, True, True]  # the first call compiles through torch.compile


@NEEDS_DIRECT
def test_direct_path_retraces_on_new_shape_dtype_grad_mode_and_requires_grad(
    direct_hits: list[bool],
) -> None:
    jf = ftx.jit(lambda x, w: _probe(torch.tanh(x @ w).sum(-1)))
    g = torch.Generator().manual_seed(0)
    calls = [
        (torch.randn(4, 3, generator=g), torch.randn(3, 2, generator=g)),
        (torch.randn(5, 3, generator=g), torch.randn(3, 2, generator=g)),  # new shape
        (torch.randn(4, 3, generator=g, dtype=F64), torch.randn(3, 2, generator=g, dtype=F64)),
    ]
    for x, w in calls * 2:
        torch.testing.assert_close(jf(x, w), 2 * torch.tanh(x @ w).sum(-1) + 1)
    assert direct_hits == [False] * 3 + [True] * 3
    x, w = calls[0]
    with torch.no_grad():  # grad mode is guarded: a new entry, then the direct path
        for _ in range(2):
            torch.testing.assert_close(jf(x, w), 2 * torch.tanh(x @ w).sum(-1) + 1)
    w = w.clone().requires_grad_()
    for _ in range(2):
        out = jf(x, w)
        (gw,) = torch.autograd.grad(out.sum(), w)
        (want,) = torch.autograd.grad(2 * torch.tanh(x @ w).sum(), w)
        torch.testing.assert_close(gw, want)
    assert direct_hits[6:] == [False, True, False, True]


_SCALE = 2.0


def _reads_a_global(x: T) -> T:
    return x * _SCALE


def test_direct_path_sees_new_closure_and_global_values() -> None:
    global _SCALE
    scale = 3.0

    def closes(x: T) -> T:
        return x * scale

    jc, jg = ftx.jit(closes), ftx.jit(_reads_a_global)
    x = torch.arange(3.0)
    for _ in range(2):
        torch.testing.assert_close(jc(x), 3 * x)
        torch.testing.assert_close(jg(x), 2 * x)
    scale, _SCALE = 5.0, 7.0
    try:
        for _ in range(2):
            torch.testing.assert_close(jc(x), 5 * x)
            torch.testing.assert_close(jg(x), 7 * x)
    finally:
        _SCALE = 2.0


@NEEDS_DIRECT
def test_direct_path_replays_python_side_effects(direct_hits: list[bool]) -> None:
    box: dict[str, T | None] = {"last": None}

    def f(x: T) -> T:
        box["last"] = x + 1  # a side effect dynamo replays after the graph
        return x * 2

    jf = ftx.jit(f)
    for k in range(3):
        x = torch.full((2,), float(k))
        torch.testing.assert_close(jf(x), 2 * x)
        torch.testing.assert_close(box["last"], x + 1)
    assert direct_hits == [False, True, True]


def test_direct_path_skips_entries_dynamo_invalidated() -> None:
    # An entry guarding a class by id is invalidated when the class is freed; a new class can
    # reuse the id. Running the stale entry would return the old scale.
    jf = ftx.jit(lambda obj, x: x * obj.k)
    x = torch.arange(3.0)
    for k in (2.0, 3.0, 4.0):
        cls = type("Scale", (), {"k": k})
        for _ in range(2):
            torch.testing.assert_close(jf(cls(), x), k * x)
        del cls
        gc.collect()


@NEEDS_DIRECT
def test_direct_path_handles_varargs_keywords_stance_and_reset(direct_hits: list[bool]) -> None:
    jf = ftx.jit(lambda *xs: _probe(sum(xs)))
    x = torch.arange(3.0)
    for _ in range(2):
        torch.testing.assert_close(jf(x, x, x), 6 * x + 1)
    torch.testing.assert_close(jf(x, x), 4 * x + 1)  # another argument count: another entry
    assert direct_hits == [False, True, False]
    jk = ftx.jit(_probe_kw)
    for _ in range(2):  # keyword arguments go through torch.compile, compiled all the same
        torch.testing.assert_close(jk(x, scale=x), x * x + 1)
    with torch.compiler.set_stance("force_eager"):
        torch.testing.assert_close(jf(x, x, x), 6 * x)
    torch._dynamo.reset()  # drops the compiled entries: the next call compiles again
    for _ in range(2):
        torch.testing.assert_close(jf(x, x, x), 6 * x + 1)


def _probe_kw(x: T, *, scale: T) -> T:
    return x * scale + (1 if torch.compiler.is_compiling() else 0)


def test_graph_break_function_stays_correct_and_compiled() -> None:
    def f(x: T) -> T:
        y = x * 2 + (1 if torch.compiler.is_compiling() else 0)
        if y.sum() > 0:  # data-dependent: not one graph
            return y + 1
        return y - 1

    jf = ftx.jit(f)
    x = torch.tensor([1.0, 2.0])
    for _ in range(2):
        torch.testing.assert_close(jf(x), 2 * x + 2)
        torch.testing.assert_close(jf(-x), -2 * x)


def test_default_options_cpp_wrapper_on_cpu_only_and_never_over_the_users() -> None:
    from ftx._transforms.jit import _compile_kwargs, _guard_filter

    drop = {"guard_filter_fn": _guard_filter}
    cpu = {"cpp_wrapper": True}
    if "cpp_wrapper_build_separate" in _tc.inductor_options():
        cpu["cpp_wrapper_build_separate"] = True
    assert _compile_kwargs({"dynamic": False}, cpu=True) == {
        "dynamic": False,
        "options": {**drop, **cpu},
    }
    assert _compile_kwargs({"dynamic": False}, cpu=False) == {"dynamic": False, "options": drop}
    user = {"options": {"cpp_wrapper": False, "guard_filter_fn": None, "max_autotune": True}}
    assert _compile_kwargs(user, cpu=True) == user
    assert _compile_kwargs(user, cpu=True)["options"] is not user["options"]  # a copy
    assert _compile_kwargs({"mode": "max-autotune"}, cpu=True) == {"mode": "max-autotune"}
    assert _compile_kwargs({"backend": "eager"}, cpu=True) == {"backend": "eager", "options": drop}


def _entry(guard_type: str, name: str, is_global: bool = True) -> Any:
    return types.SimpleNamespace(guard_type=guard_type, name=name, is_global=is_global)


def test_guard_filter_drops_only_the_functorch_stack_and_torch_or_ftx_internals() -> None:
    from ftx._transforms.jit import _guard_filter

    dropped = [
        _entry("FUNCTORCH_STACK_MATCH", "", is_global=False),
        _entry("CLOSURE_MATCH", "G['__import_ftx_dot__fasttree']._flat"),
        _entry("DUPLICATE_INPUT", "G['__import_torch_dot__functorch_dot_vmap'].torch"),
        _entry("CONSTANT_MATCH", "G['__import_torch_dot_utils_dot__pytree']._LEAF_SPEC.num_nodes"),
        _entry("CLOSURE_MATCH", "dict(G['__import_ftx_dot_optim_dot__base'].__dict__)['f']"),
    ]
    kept = [
        _entry("TENSOR_MATCH", "L['x']", is_global=False),
        _entry("CLOSURE_MATCH", "L['vg'].__closure__[3].cell_contents", is_global=False),
        _entry("CLOSURE_MATCH", "G['mlp_apply']"),  # the user's own globals
        _entry("CONSTANT_MATCH", "G['_SCALE']"),
        _entry("CLOSURE_MATCH", "G['__import_benchmarks_dot_cases_dot__common'].cross_entropy"),
        _entry("CLOSURE_MATCH", "G['__import_torchvision_dot_ops'].nms"),  # not torch itself
        _entry("MODULE_MATCH", "G['ftx']"),  # the user's name for the module
        _entry("BUILTIN_MATCH", "G['__builtins_dict___0']['len']"),
        types.SimpleNamespace(guard_type="TENSOR_MATCH"),  # laid out differently: kept
    ]
    assert _guard_filter(dropped + kept) == [False] * len(dropped) + [True] * len(kept)


@NEEDS_DIRECT
@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"backend": "aot_eager"}, id="aot_eager"),
        pytest.param({"dynamic": True}, id="dynamic"),
        pytest.param({"mode": "max-autotune-no-cudagraphs"}, id="mode"),
    ],
)
def test_other_compile_keywords_keep_the_direct_path(
    kwargs: dict[str, Any], direct_hits: list[bool]
) -> None:
    jf = ftx.jit(lambda x, w: _probe(torch.tanh(x @ w)), **kwargs)
    x, w = torch.randn(4, 3, dtype=F64), torch.randn(3, 2, dtype=F64)
    for _ in range(2):
        torch.testing.assert_close(jf(x, w), 2 * torch.tanh(x @ w) + 1)
    assert direct_hits == [False, True]


@NEEDS_DIRECT
def test_a_compile_the_cpu_options_break_is_retried_without_them(
    monkeypatch: pytest.MonkeyPatch, direct_hits: list[bool]
) -> None:
    from torch._inductor.custom_graph_pass import CustomGraphPass

    from ftx._transforms import jit as _jit

    class Boom(CustomGraphPass):  # stands in for an op the C++ wrapper cannot call
        def __call__(self, graph: Any) -> None:
            raise RuntimeError("boom")

        def uuid(self) -> str:
            return "ftx-test-boom"

    broken = {**_jit._CPU_OPTIONS, "post_grad_custom_post_pass": Boom()}
    monkeypatch.setattr(_jit, "_CPU_OPTIONS", broken)
    jf = ftx.jit(_probe)  # no RuntimeWarning (an error here): it compiles, without the options
    x = torch.arange(3.0)
    for _ in range(2):
        torch.testing.assert_close(jf(x), 2 * x + 1)
    assert direct_hits == [False, True]  # the first call compiles twice, the second is direct


def test_jitted_step_with_value_and_grad_compiles_once() -> None:
    """The transform wrappers keep no per-call cache that torch.compile would guard on:
    three calls of a jitted train step trace one graph (a second trace came from
    value_and_grad caching its resolved argnums on the first call)."""
    from torch._dynamo.utils import counters

    p = {"w": torch.randn(4, 3), "b": torch.randn(4)}
    x, y = torch.randn(8, 3), torch.randint(0, 4, (8,))
    opt = ftx.optim.adam(1e-3)
    vg = ftx.value_and_grad(
        lambda p, x, y: torch.nn.functional.cross_entropy(x @ p["w"].T + p["b"], y)
    )

    def step(p: Any, s: Any, x: torch.Tensor, y: torch.Tensor) -> Any:
        loss, g = vg(p, x, y)
        u, s = opt.update(g, s, p)
        return loss, ftx.optim.apply_updates(p, u), s

    jstep = ftx.jit(step)
    s = opt.init(p)
    torch._dynamo.reset()
    counters.clear()
    for _ in range(3):
        _, p, s = jstep(p, s, x, y)
    assert counters["stats"]["unique_graphs"] == 1


def test_jit_of_jit_and_as_a_method_keep_their_own_state() -> None:
    inner = ftx.jit(lambda x: x * 2, backend="eager")
    outer = ftx.jit(inner, backend="eager")
    x = torch.arange(3.0)
    for _ in range(2):
        torch.testing.assert_close(outer(x), 2 * x)
    assert outer.__wrapped__ is inner and outer.__name__ == "<lambda>"

    class M:
        k = 3.0
        f = ftx.jit(lambda self, x: x * self.k, backend="eager")

    torch.testing.assert_close(M().f(x), 3 * x)  # binds like the function it replaces
