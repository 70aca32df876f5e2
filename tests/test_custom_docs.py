"""docs/jit_custom_checkpoint.md: its examples run as written and hold under every transform.

The page's Python blocks run in order in one namespace (a doc change that
breaks one fails here, with the block's line). Then the page's custom rules
(``safe_norm``, ``clip_gradient``, ``log1pexp``, ``scaled``), taken from that
namespace, are run under grad, vmap, vmap(grad), jvp, jacfwd, jacrev, hessian,
jacfwd(jacfwd) and jit in float64 and compared with analytic derivatives,
central differences and JAX's ``custom_vjp``/``custom_jvp`` of the same rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

import ftx

from .helpers import central_difference_grad, central_difference_jacobian, tree_allclose

T = torch.Tensor
F64 = torch.float64
PAGE = Path(__file__).resolve().parent.parent / "docs" / "jit_custom_checkpoint.md"
FENCE = re.compile(
    r"(?P<skip><!--\s*not-run:(?P<why>[^>]*)-->\s*\n)?^```(?:python|py)\s*\n(?P<code>.*?)^```",
    re.S | re.M,
)


def page_blocks() -> list[tuple[int, str]]:
    """``(line, code)`` of each Python block of the page that is meant to run."""
    text = PAGE.read_text()
    return [
        (text.count("\n", 0, m.start("code")) + 1, m.group("code"))
        for m in FENCE.finditer(text)
        if not m.group("skip")
    ]


@pytest.fixture(scope="module")
def doc(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The namespace after running every block of the page, in order."""
    import os
    import sys
    import types

    # a real module, so that torch.compile (ftx.jit in the page) can resolve the globals
    module = types.ModuleType("ftx_doc_jit_custom_checkpoint")
    sys.modules[module.__name__] = module
    namespace: dict[str, Any] = module.__dict__
    torch.manual_seed(0)
    cwd = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("doc"))
    try:
        for line, code in page_blocks():
            try:
                exec(compile(code, f"{PAGE.name}:{line}", "exec"), namespace)
            except Exception as e:
                raise AssertionError(f"{PAGE.name}, block at line {line} failed: {e!r}") from e
    finally:
        os.chdir(cwd)
    return namespace


def test_page_has_the_examples() -> None:
    code = "\n".join(c for _, c in page_blocks())
    for name in ("def safe_norm", "def clip_gradient", "def log1pexp", "def scaled", "checkpoint"):
        assert name in code, name
    assert len(page_blocks()) >= 7


def test_every_block_runs(doc: dict[str, Any]) -> None:
    for name in ("safe_norm", "clip_gradient", "log1pexp", "scaled", "block", "step"):
        assert name in doc, name


# ----------------------------------------------------------------------------- the claims
NX = torch.tensor([3.0, -4.0, 12.0], dtype=F64)


def _unit(x: T) -> T:
    n = torch.linalg.vector_norm(x)
    return x / n if n > 0 else torch.zeros_like(x)


def _norm_hessian(x: T) -> T:
    n = torch.linalg.vector_norm(x)
    u = x / n
    return (torch.eye(x.numel(), dtype=x.dtype) - torch.outer(u, u)) / n


def test_the_commented_results(doc: dict[str, Any]) -> None:
    safe_norm, log1pexp, clip = doc["safe_norm"], doc["log1pexp"], doc["clip_gradient"]
    tree_allclose(ftx.grad(safe_norm)(torch.zeros(3)), torch.zeros(3))
    xs = torch.stack([NX, torch.zeros(3, dtype=F64)])
    tree_allclose(ftx.vmap(safe_norm)(xs), torch.tensor([13.0, 0.0], dtype=F64))
    tree_allclose(ftx.vmap(ftx.grad(safe_norm))(xs), torch.stack([NX / 13, torch.zeros(3)]))
    tree_allclose(ftx.grad(log1pexp)(torch.tensor(800.0)), torch.tensor(1.0))
    tree_allclose(
        ftx.vmap(ftx.grad(log1pexp))(torch.tensor([-800.0, 0.0, 800.0])),
        torch.tensor([0.0, 0.5, 1.0]),
    )
    tree_allclose(ftx.jacfwd(ftx.jacfwd(log1pexp))(torch.tensor(0.0)), torch.tensor(0.25))
    g = ftx.grad(lambda x: (10.0 * clip(-1.0, 1.0, x)).sum())(torch.ones(3))
    tree_allclose(g, torch.ones(3))
    s, x = torch.tensor(2.0), torch.tensor([0.0, 1.0])
    gs, gx = ftx.grad(lambda s, x: doc["scaled"](s, x).sum(), argnums=(0, 1))(s, x)
    tree_allclose((gs, gx), (torch.tensor(0.0), 2 * torch.cos(x)))


SAFE_NORM_TRANSFORMS: dict[str, Callable[[Any, T], tuple[Any, Any]]] = {
    "grad": lambda f, x: (ftx.grad(f)(x), _unit(x)),
    "value_and_grad": lambda f, x: (ftx.value_and_grad(f)(x), (torch.linalg.norm(x), _unit(x))),
    "vjp": lambda f, x: (ftx.vjp(f, x)[1](torch.tensor(2.0, dtype=F64)), (2 * _unit(x),)),
    "vmap": lambda f, x: (ftx.vmap(f)(torch.stack([x, -x])), torch.linalg.norm(x).repeat(2)),
    "vmap_grad": lambda f, x: (
        ftx.vmap(ftx.grad(f))(torch.stack([x, 2 * x])),
        torch.stack([_unit(x), _unit(x)]),
    ),
    "jvp": lambda f, x: (ftx.jvp(f, (x,), (x,))[1], torch.linalg.norm(x)),
    "jacfwd": lambda f, x: (ftx.jacfwd(f)(x), _unit(x)),
    "jacrev": lambda f, x: (ftx.jacrev(f)(x), _unit(x)),
    "hessian": lambda f, x: (ftx.hessian(f)(x), _norm_hessian(x)),
    "hvp": lambda f, x: (ftx.hvp(f, (x,), (x,))[0], _norm_hessian(x) @ x),
    "jacfwd_jacfwd": lambda f, x: (ftx.jacfwd(ftx.jacfwd(f))(x), _norm_hessian(x)),
    "grad_grad": lambda f, x: (
        ftx.grad(lambda x: ftx.grad(f)(x).sum())(x),
        _norm_hessian(x).sum(0),
    ),
}


@pytest.mark.parametrize("tr", list(SAFE_NORM_TRANSFORMS))
def test_safe_norm_under_every_transform(doc: dict[str, Any], tr: str) -> None:
    got, want = SAFE_NORM_TRANSFORMS[tr](doc["safe_norm"], NX)
    tree_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_safe_norm_matches_central_differences(doc: dict[str, Any]) -> None:
    f = doc["safe_norm"]
    tree_allclose(ftx.grad(f)(NX), central_difference_grad(f, NX), rtol=1e-7, atol=1e-9)


def _sig(x: T) -> T:
    return torch.sigmoid(x)


BIG = torch.tensor([-800.0, -3.0, 0.0, 0.7, 40.0, 800.0], dtype=F64)
LOG1PEXP_TRANSFORMS: dict[str, Callable[[Any, T], tuple[Any, Any]]] = {
    "grad": lambda f, x: (ftx.grad(lambda x: f(x).sum())(x), _sig(x)),
    "vmap_grad": lambda f, x: (ftx.vmap(ftx.grad(f))(x), _sig(x)),
    "jvp": lambda f, x: (ftx.jvp(f, (x,), (torch.ones_like(x),))[1], _sig(x)),
    "linearize": lambda f, x: (ftx.linearize(f, x)[1](2 * torch.ones_like(x)), 2 * _sig(x)),
    "jacfwd": lambda f, x: (ftx.jacfwd(f)(x), torch.diag(_sig(x))),
    "jacrev": lambda f, x: (ftx.jacrev(f)(x), torch.diag(_sig(x))),
    "hessian": lambda f, x: (
        ftx.hessian(lambda x: f(x).sum())(x),
        torch.diag(_sig(x) * (1 - _sig(x))),
    ),
    "jacfwd_jacfwd": lambda f, x: (
        ftx.jacfwd(ftx.jacfwd(lambda x: f(x).sum()))(x),
        torch.diag(_sig(x) * (1 - _sig(x))),
    ),
    "vmap_hessian": lambda f, x: (
        ftx.vmap(ftx.hessian(f))(x),
        _sig(x) * (1 - _sig(x)),
    ),
}


@pytest.mark.parametrize("tr", list(LOG1PEXP_TRANSFORMS))
def test_log1pexp_under_every_transform(doc: dict[str, Any], tr: str) -> None:
    got, want = LOG1PEXP_TRANSFORMS[tr](doc["log1pexp"], BIG)
    assert torch.isfinite(torch.as_tensor(got)).all()
    tree_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_log1pexp_matches_central_differences_where_smooth(doc: dict[str, Any]) -> None:
    x = torch.tensor([-3.0, 0.7, 5.0], dtype=F64)
    f = doc["log1pexp"]
    tree_allclose(ftx.jacrev(f)(x), central_difference_jacobian(f, x), rtol=1e-7, atol=1e-9)


def test_clip_gradient_and_scaled_under_transforms(doc: dict[str, Any]) -> None:
    clip, scaled = doc["clip_gradient"], doc["scaled"]
    x = torch.tensor([0.5, -1.0, 2.0], dtype=F64)
    w = torch.tensor([3.0, -0.25, -2.0], dtype=F64)

    def s(x: T) -> T:
        return (w * clip(-1.0, 1.0, x)).sum()

    tree_allclose(ftx.grad(s)(x), w.clamp(-1, 1))
    tree_allclose(ftx.vmap(ftx.grad(s))(torch.stack([x, -x])), w.clamp(-1, 1).repeat(2, 1))
    tree_allclose(ftx.jacrev(lambda x: clip(-1.0, 1.0, x))(x), torch.eye(3, dtype=F64))
    tree_allclose(ftx.hessian(s)(x), torch.zeros(3, 3, dtype=F64))
    # scaled: the nondiff tensor s is a constant on every route, x gets s cos(x)
    sv = torch.tensor(2.0, dtype=F64)
    zero, dx = torch.zeros((), dtype=F64), 2 * torch.cos(x)

    def loss(s: T, x: T) -> T:
        return scaled(s, x).sum()

    for grad in (ftx.grad, torch.func.grad):
        tree_allclose(grad(loss, argnums=(0, 1))(sv, x), (zero, dx))
    for jac in (ftx.jacrev, ftx.jacfwd):
        js, jx = jac(scaled, argnums=(0, 1))(sv, x)
        tree_allclose((js, jx), (torch.zeros(3, dtype=F64), torch.diag(dx)))
    tree_allclose(ftx.jvp(lambda s: scaled(s, x), (sv,), (sv,))[1], torch.zeros(3, dtype=F64))
    tree_allclose(ftx.hessian(loss, argnums=(0, 1))(sv, x)[0][0], zero)
    batched = ftx.vmap(ftx.grad(loss, argnums=1), in_axes=(0, None))
    tree_allclose(
        batched(torch.tensor([1.0, 2.0], dtype=F64), x),
        torch.stack([torch.cos(x), 2 * torch.cos(x)]),
    )


def test_the_rules_hold_under_jit(doc: dict[str, Any]) -> None:
    safe_norm, log1pexp = doc["safe_norm"], doc["log1pexp"]
    z = torch.zeros(3, dtype=F64)
    tree_allclose(ftx.jit(ftx.grad(safe_norm))(z), z)  # plain autograd: nan
    tree_allclose(ftx.jit(ftx.grad(safe_norm))(NX), NX / 13)
    tree_allclose(ftx.grad(ftx.jit(safe_norm))(z), z)
    big = torch.tensor([-800.0, 0.0, 800.0], dtype=F64)
    tree_allclose(ftx.jit(ftx.vmap(ftx.grad(log1pexp)))(big), _sig(big))


# ----------------------------------------------------------------------------- against JAX
def test_doc_rules_match_jax(doc: dict[str, Any]) -> None:
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    from functools import partial

    with jax.enable_x64(True):

        @jax.custom_vjp
        def j_safe_norm(x: Any) -> Any:
            return jnp.sqrt(jnp.sum(x * x))

        def j_fwd(x: Any) -> Any:
            n = j_safe_norm(x)
            return n, (x, n)

        def j_bwd(res: Any, g: Any) -> Any:
            x, n = res
            safe = jnp.where(n > 0, n, jnp.ones_like(n))
            return (g * jnp.where(n > 0, x / safe, jnp.zeros_like(x)),)

        j_safe_norm.defvjp(j_fwd, j_bwd)

        @jax.custom_jvp
        def j_log1pexp(x: Any) -> Any:
            return jnp.where(x > 0, x + jnp.log1p(jnp.exp(-x)), jnp.log1p(jnp.exp(x)))

        @j_log1pexp.defjvp
        def j_log1pexp_jvp(primals: Any, tangents: Any) -> Any:
            (x,), (t,) = primals, tangents
            return j_log1pexp(x), t * jax.nn.sigmoid(x)

        @partial(jax.custom_vjp, nondiff_argnums=(0, 1))
        def j_clip(lo: float, hi: float, x: Any) -> Any:
            return x

        j_clip.defvjp(lambda lo, hi, x: (x, None), lambda lo, hi, r, g: (jnp.clip(g, lo, hi),))

        @partial(jax.custom_jvp, nondiff_argnums=(0,))
        def j_scaled(s: Any, x: Any) -> Any:
            return s * jnp.sin(x)

        j_scaled.defjvp(lambda s, p, t: (j_scaled(s, p[0]), s * jnp.cos(p[0]) * t[0]))

        nx = jnp.asarray(NX.tolist())
        xs = jnp.stack([nx, jnp.zeros(3)])
        big = jnp.asarray(BIG.tolist())
        cx = jnp.asarray([0.5, -1.0, 2.0])
        jit = jax.jit  # one XLA compile per reference (JAX's op-by-op eager mode is slow)
        want = {
            "norm_grad0": jit(jax.grad(j_safe_norm))(jnp.zeros(3)),
            "norm_vmap_grad": jit(jax.vmap(jax.grad(j_safe_norm)))(xs),
            "norm_hessian": jit(jax.jacrev(jax.jacrev(j_safe_norm)))(nx),  # JAX: no jvp of it
            "log_grad": jit(jax.vmap(jax.grad(j_log1pexp)))(big),
            "log_jvp": jit(lambda x: jax.jvp(j_log1pexp, (x,), (jnp.ones_like(x),))[1])(big),
            "log_fwd_fwd": jit(jax.jacfwd(jax.jacfwd(lambda x: jnp.sum(j_log1pexp(x)))))(big),
            "clip_grad": jit(jax.grad(lambda x: jnp.sum(10.0 * j_clip(-1.0, 1.0, x))))(cx),
            "scaled_grad": jit(jax.grad(lambda s, x: jnp.sum(j_scaled(s, x)), argnums=(0, 1)))(
                2.0, cx
            ),
        }
    safe_norm, log1pexp, clip, scaled = (
        doc["safe_norm"],
        doc["log1pexp"],
        doc["clip_gradient"],
        doc["scaled"],
    )
    txs = torch.stack([NX, torch.zeros(3, dtype=F64)])
    tcx = torch.tensor([0.5, -1.0, 2.0], dtype=F64)
    got = {
        "norm_grad0": ftx.grad(safe_norm)(torch.zeros(3, dtype=F64)),
        "norm_vmap_grad": ftx.vmap(ftx.grad(safe_norm))(txs),
        "norm_hessian": ftx.hessian(safe_norm)(NX),
        "log_grad": ftx.vmap(ftx.grad(log1pexp))(BIG),
        "log_jvp": ftx.jvp(log1pexp, (BIG,), (torch.ones_like(BIG),))[1],
        "log_fwd_fwd": ftx.jacfwd(ftx.jacfwd(lambda x: log1pexp(x).sum()))(BIG),
        "clip_grad": ftx.grad(lambda x: (10.0 * clip(-1.0, 1.0, x)).sum())(tcx),
        "scaled_grad": ftx.grad(lambda s, x: scaled(s, x).sum(), argnums=(0, 1))(
            torch.tensor(2.0, dtype=F64), tcx
        ),
    }
    for k, v in want.items():
        w = jax.tree_util.tree_map(lambda a: torch.tensor(a.tolist(), dtype=F64), v)
        tree_allclose(got[k], w if not isinstance(w, list) else tuple(w), rtol=1e-10, atol=1e-12)
