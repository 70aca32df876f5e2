"""Bad input to custom_vjp / custom_jvp: TypeError or ValueError in ftx's form, on every route.

Every message reads ``ftx.<api>: <what is required>, got <what came>. <how to fix>``.
Rule errors (a ``bwd`` or jvp rule returning the wrong thing) surface the same
whether the rule runs under ftx.grad (the torch.autograd route), torch.func.grad,
vmap(grad), jacrev, hessian, or (for custom_jvp) jvp and jacfwd.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

import ftx

T = torch.Tensor
F64 = torch.float64
X = torch.tensor([0.3, -1.2, 2.0], dtype=F64)
FORM = r"ftx\.custom_(vjp|jvp): [^\n]+, got [^\n]+\."


def _vjp(fwd: Callable[..., Any] | None = None, bwd: Callable[..., Any] | None = None) -> Any:
    f = ftx.custom_vjp(torch.sin)
    f.defvjp(fwd or (lambda x: (torch.sin(x), x)), bwd or (lambda x, g: (torch.cos(x) * g,)))
    return f


def _jvp(rule: Callable[..., Any]) -> Any:
    f = ftx.custom_jvp(torch.sin)
    f.defjvp(rule)
    return f


# ----------------------------------------------------------------------------- definition time
DEFINITION: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    (
        "vjp_fun_not_callable",
        lambda: ftx.custom_vjp(3),
        TypeError,
        r"fun must be callable, got int 3",
    ),
    (
        "jvp_fun_not_callable",
        lambda: ftx.custom_jvp("f"),
        TypeError,
        r"fun must be callable, got str",
    ),
    (
        "nondiff_str",
        lambda: ftx.custom_vjp(torch.sin, nondiff_argnums="0"),
        TypeError,
        r"nondiff_argnums must be an int or a tuple of ints, got str '0'",
    ),
    (
        "nondiff_bool",
        lambda: ftx.custom_jvp(torch.sin, nondiff_argnums=(True,)),
        TypeError,
        r"nondiff_argnums must be an int or a tuple of ints, got tuple \(True,\)",
    ),
    (
        "nondiff_negative",
        lambda: ftx.custom_vjp(torch.sin, nondiff_argnums=-1),
        ValueError,
        r"nondiff_argnums must hold unique non-negative positions, got \(-1,\)",
    ),
    (
        "nondiff_repeated",
        lambda: ftx.custom_jvp(torch.sin, nondiff_argnums=(0, 0)),
        ValueError,
        r"nondiff_argnums must hold unique non-negative positions, got \(0, 0\)",
    ),
    (
        "fwd_not_callable",
        lambda: ftx.custom_vjp(torch.sin).defvjp(None, lambda r, g: (g,)),
        TypeError,
        r"ftx\.custom_vjp: fwd must be callable, got NoneType None\. Pass a function as fwd",
    ),
    (
        "bwd_not_callable",
        lambda: ftx.custom_vjp(torch.sin).defvjp(torch.sin, (1, 2)),
        TypeError,
        r"ftx\.custom_vjp: bwd must be callable, got tuple \(1, 2\)",
    ),
    (
        "bwd_missing",
        lambda: ftx.custom_vjp(torch.sin).defvjp(torch.sin),
        TypeError,
        r"ftx\.custom_vjp: bwd must be callable, got NoneType None",
    ),
    (
        "rule_not_callable",
        lambda: ftx.custom_jvp(torch.sin).defjvp((torch.sin, torch.cos)),
        TypeError,
        r"ftx\.custom_jvp: rule must be callable, got tuple",
    ),
    (
        "fwd_wrong_arity",
        lambda: ftx.custom_vjp(lambda x, y: x * y).defvjp(lambda x: (x, None), lambda r, g: g),
        TypeError,
        r"ftx\.custom_vjp: fwd to take 2 positional argument\(s\) \(fun's arguments\), "
        r"got fwd\(x\)\. Give fwd the signature",
    ),
    (
        "bwd_wrong_arity",
        lambda: ftx.custom_vjp(lambda x: x).defvjp(lambda x: (x, None), lambda g: (g,)),
        TypeError,
        r"ftx\.custom_vjp: bwd to take 2 positional argument\(s\) \(the 0 nondiff argument\(s\), "
        r"residuals, cotangent\), got bwd\(g\)",
    ),
    (
        "bwd_forgets_nondiff",
        lambda: ftx.custom_vjp(lambda lo, x: x, nondiff_argnums=0).defvjp(
            lambda lo, x: (x, None), lambda r, g: (g,)
        ),
        TypeError,
        r"bwd to take 3 positional argument\(s\) \(the 1 nondiff argument\(s\), residuals",
    ),
    (
        "rule_wrong_arity",
        lambda: ftx.custom_jvp(torch.sin).defjvp(lambda primals: primals),
        TypeError,
        r"ftx\.custom_jvp: rule to take 2 positional argument\(s\) \(the 0 nondiff argument\(s\), "
        r"primals, tangents\), got rule\(primals\)",
    ),
    (
        "nondiff_beyond_signature",
        lambda: ftx.custom_vjp(lambda x: x, nondiff_argnums=1).defvjp(
            lambda x: (x, None), lambda a, r, g: (g,)
        ),
        ValueError,
        r"nondiff_argnums to name positions below fun's 1 argument\(s\), got \(1,\)",
    ),
]


@pytest.mark.parametrize(
    ("make", "exc", "pattern"), [pytest.param(*c[1:], id=c[0]) for c in DEFINITION]
)
def test_definition_errors(make: Callable[[], Any], exc: type[Exception], pattern: str) -> None:
    with pytest.raises(exc, match=pattern) as info:
        make()
    assert __import__("re").match(FORM, str(info.value)), str(info.value)


def test_definition_accepts_variadic_and_unknown_signatures() -> None:
    f = ftx.custom_vjp(lambda *xs: xs[0] * xs[1])
    f.defvjp(lambda *xs: (xs[0] * xs[1], xs), lambda xs, g: (g * xs[1], g * xs[0]))
    assert ftx.grad(lambda a: f(a, X).sum())(X).shape == X.shape
    g = ftx.custom_jvp(torch.sin)  # a builtin: no Python signature
    g.defjvp(lambda p, t: (torch.sin(p[0]), torch.cos(p[0]) * t[0]))


# ----------------------------------------------------------------------------- call time
CALL: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    (
        "vjp_before_defvjp",
        lambda: ftx.custom_vjp(torch.sin)(X),
        TypeError,
        r"ftx\.custom_vjp: a rule defined with sin\.defvjp\(fwd, bwd\) before the call, "
        r"got no rule for 'sin'\. Call sin\.defvjp\(fwd, bwd\) first\.",
    ),
    (
        "jvp_before_defjvp",
        lambda: ftx.custom_jvp(torch.sin)(X),
        TypeError,
        r"ftx\.custom_jvp: a rule defined with sin\.defjvp\(rule\) before the call, "
        r"got no rule for 'sin'",
    ),
    (
        "diff_arg_not_tensor",
        lambda: torch.func.grad(lambda x: _pairfun()(x, 2.0).sum())(X),
        TypeError,
        r"ftx\.custom_vjp: differentiable arguments must be tensors or pytrees of tensors, "
        r"got float 2\.0 in argument 1\. Wrap it in torch\.tensor\(\.\.\.\) or list its position",
    ),
    (
        "diff_leaf_not_tensor",
        lambda: _pairfun()(X, {"a": X, "b": "s"}),
        TypeError,
        r"got str 's' in argument 1 at path 'b'",
    ),
    (
        "unknown_keyword",
        lambda: _pairfun()(X, X, z=X),
        TypeError,
        r"ftx\.custom_vjp: arguments that bind to the signature <lambda>\(x, y\), "
        r"got an unexpected keyword argument 'z'\. Call the function with the arguments",
    ),
    (
        "keyword_only_parameter",
        lambda: _kwonly()(X, scale=2.0),
        TypeError,
        r"ftx\.custom_jvp: keyword arguments that resolve to positions \(as in JAX\), "
        r"got keyword-only argument\(s\) \['scale'\]",
    ),
    (
        "keyword_without_signature",
        lambda: _vjp()(input=X),
        TypeError,
        r"ftx\.custom_vjp: keyword arguments only for a function whose signature is known, "
        r"got keyword argument\(s\) \['input'\] for 'sin'\. Pass the arguments positionally",
    ),
]


def _pairfun() -> Any:
    f = ftx.custom_vjp(lambda x, y: x * y)
    f.defvjp(lambda x, y: (x * y, (x, y)), lambda r, g: (g * r[1], g * r[0]))
    return f


def _kwonly() -> Any:
    def fun(x: T, *, scale: float = 1.0) -> T:
        return x * scale

    f = ftx.custom_jvp(fun)
    f.defjvp(lambda p, t: (p[0], t[0]))
    return f


@pytest.mark.parametrize(("make", "exc", "pattern"), [pytest.param(*c[1:], id=c[0]) for c in CALL])
def test_call_errors(make: Callable[[], Any], exc: type[Exception], pattern: str) -> None:
    with pytest.raises(exc, match=pattern):
        make()


# ----------------------------------------------------------------------------- rule errors
# (name, function with a bad rule, exception, pattern); each checked on every route below.
def _fwd_pair_list(x: T) -> Any:
    return [torch.sin(x), x]


RULES: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    (
        "fwd_not_a_pair",
        lambda: _vjp(fwd=torch.sin),
        TypeError,
        r"ftx\.custom_vjp: fwd must return a pair \(out, residuals\), got Tensor\(shape=\(3,\), "
        r"dtype=torch\.float64\)\. Return `out, residuals` from fwd\.",
    ),
    (
        "fwd_returns_a_list",
        lambda: _vjp(fwd=_fwd_pair_list),
        TypeError,
        r"fwd must return a pair \(out, residuals\), got list of length 2 \(Tensor\(shape",
    ),
    (
        "fwd_output_not_tensor",
        lambda: _vjp(fwd=lambda x: ((torch.sin(x), "y"), x)),
        TypeError,
        r"ftx\.custom_vjp: fwd's output must be a tensor or a pytree of tensors, "
        r"got str 'y' at path '1'",
    ),
    (
        "bwd_not_a_tuple",
        lambda: _vjp(bwd=lambda x, g: torch.cos(x) * g),
        TypeError,
        r"ftx\.custom_vjp: bwd must return a tuple with one cotangent per differentiable "
        r"argument \(1\), got Tensor.*trailing comma",
    ),
    (
        "bwd_too_many",
        lambda: _vjp(bwd=lambda x, g: (g, g)),
        ValueError,
        r"ftx\.custom_vjp: bwd must return 1 cotangent\(s\), one per differentiable argument, "
        r"got 2\. Return one entry per argument not listed in nondiff_argnums",
    ),
    (
        "bwd_too_few",
        lambda: _vjp(bwd=lambda x, g: ()),
        ValueError,
        r"bwd must return 1 cotangent\(s\), one per differentiable argument, got 0",
    ),
    (
        "bwd_wrong_shape",
        lambda: _vjp(bwd=lambda x, g: (g.sum(),)),
        ValueError,
        r"ftx\.custom_vjp: the cotangent for argument 0 must have the primal's shape \(3,\), "
        r"got shape \(\)\. Reduce or reshape",
    ),
    (
        "bwd_wrong_structure",
        lambda: _vjp(bwd=lambda x, g: ([g],)),
        ValueError,
        r"ftx\.custom_vjp: the cotangent for argument 0 must have the argument's structure",
    ),
    (
        "bwd_not_tensor",
        lambda: _vjp(bwd=lambda x, g: ("g",)),
        TypeError,
        r"ftx\.custom_vjp: the cotangent for argument 0 must be a tensor, got str 'g'",
    ),
    (
        "bwd_complex_for_real",
        lambda: _vjp(bwd=lambda x, g: (g.to(torch.complex128),)),
        TypeError,
        r"ftx\.custom_vjp: a real cotangent for the real argument 0, got dtype torch\.complex128",
    ),
    (
        "rule_not_a_pair",
        lambda: _jvp(lambda p, t: t[0]),
        TypeError,
        r"ftx\.custom_jvp: the jvp rule must return a pair \(primal_out, tangent_out\), "
        r"got Tensor",
    ),
    (
        "rule_triple",
        lambda: _jvp(lambda p, t: (p[0], t[0], t[0])),
        TypeError,
        r"the jvp rule must return a pair \(primal_out, tangent_out\), got tuple of length 3 "
        r"\(Tensor\(shape=\(3,\), dtype=torch\.float64\), Tensor",
    ),
    (
        "rule_tangent_shape",
        lambda: _jvp(lambda p, t: (torch.sin(p[0]), t[0].sum())),
        ValueError,
        r"ftx\.custom_jvp: the rule's tangent output leaf 0 must have the output's shape "
        r"\(3,\), got shape \(\)",
    ),
    (
        "rule_tangent_dtype",
        lambda: _jvp(lambda p, t: (torch.sin(p[0]), t[0].float())),
        TypeError,
        r"ftx\.custom_jvp: the rule's tangent output leaf 0 must have the output's dtype "
        r"torch\.float64, got dtype torch\.float32\. Compute the tangent",
    ),
    (
        "rule_tangent_structure",
        lambda: _jvp(lambda p, t: (torch.sin(p[0]), (t[0], t[0]))),
        ValueError,
        r"ftx\.custom_jvp: the rule's tangent output must have the output's structure "
        r"\(a single tensor\), got structure TreeSpec\(tuple, None, \[\*, \*\]\)\.",
    ),
    (
        "rule_tangent_not_tensor",
        lambda: _jvp(lambda p, t: (torch.sin(p[0]), 1.0)),
        TypeError,
        r"ftx\.custom_jvp: the rule's tangent output must be a tensor or a pytree of tensors, "
        r"got float 1\.0",
    ),
    (
        "rule_primal_structure",
        lambda: _jvp(lambda p, t: ((p[0], p[0]), t[0])),
        ValueError,
        r"ftx\.custom_jvp: the rule's primal output must have the function's output structure",
    ),
    (
        "rule_not_linear",
        lambda: _jvp(lambda p, t: (torch.sin(p[0]), torch.cos(p[0]) * t[0] ** 2)),
        ValueError,
        r"ftx\.custom_jvp: a jvp rule whose tangent output is linear in the tangents",
    ),
    (
        "jvp_fun_output_not_tensor",
        lambda: _jvp_fun(lambda x: {"y": x, "n": 3}),
        TypeError,
        r"ftx\.custom_jvp: the output must be a tensor or a pytree of tensors, got int 3 "
        r"at path 'n'",
    ),
]


def _jvp_fun(fun: Callable[..., Any]) -> Any:
    f = ftx.custom_jvp(fun)
    f.defjvp(lambda p, t: (fun(p[0]), fun(t[0])))
    return f


def _scalar(f: Any) -> Callable[[T], T]:
    def s(x: T) -> T:
        out = f(x)
        leaves = ftx.tree.leaves(out)
        return torch.stack([leaf.sum() for leaf in leaves]).sum()

    return s


def _autograd(f: Any) -> Any:
    x = X.clone().requires_grad_()
    return torch.autograd.grad(_scalar(f)(x), x)


ROUTES_REV: dict[str, Callable[[Any], Any]] = {
    "ftx.grad": lambda f: ftx.grad(_scalar(f))(X),
    "torch.func.grad": lambda f: torch.func.grad(_scalar(f))(X),
    "torch.autograd": _autograd,
    "vmap_grad": lambda f: ftx.vmap(ftx.grad(_scalar(f)))(torch.stack([X, X])),
    "jacrev": lambda f: ftx.jacrev(f)(X),
    "hessian": lambda f: ftx.hessian(_scalar(f))(X),
}
ROUTES_FWD: dict[str, Callable[[Any], Any]] = {
    "jvp": lambda f: ftx.jvp(f, (X,), (X,)),
    "jacfwd": lambda f: ftx.jacfwd(f)(X),
    "vmap_jvp": lambda f: ftx.vmap(lambda x: ftx.jvp(f, (x,), (x,))[1])(torch.stack([X, X])),
}
# which rule errors show in forward mode: custom_vjp runs fwd there (not bwd); the linearity
# check is a reverse-mode check (JAX does not check forward mode either)
_NOT_IN_FORWARD = {"bwd_", "rule_not_linear"}


def _cases() -> list[Any]:
    out = []
    for name, make, exc, pattern in RULES:
        for route in ROUTES_REV:
            out.append(pytest.param(make, exc, pattern, ROUTES_REV[route], id=f"{name}-{route}"))
        if not any(name.startswith(p) for p in _NOT_IN_FORWARD):
            for route in ROUTES_FWD:
                out.append(
                    pytest.param(make, exc, pattern, ROUTES_FWD[route], id=f"{name}-{route}")
                )
    return out


@pytest.mark.parametrize(("make", "exc", "pattern", "route"), _cases())
def test_rule_errors_on_every_route(
    make: Callable[[], Any], exc: type[Exception], pattern: str, route: Callable[[Any], Any]
) -> None:
    with pytest.raises(exc, match=pattern) as info:
        route(make())
    assert __import__("re").match(FORM, str(info.value)), str(info.value)
