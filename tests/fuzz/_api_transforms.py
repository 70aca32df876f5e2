"""Bad arguments for the transforms: grad ... hvp, vmap, jacobians, custom rules, checkpoint."""

from __future__ import annotations

from ._contract import Api, S
from ._values import (
    ARGNUMS,
    AXES,
    FLAGS,
    FUNS,
    GEN_TREES,
    INTS,
    KINDS,
    STRS,
    TENSORS,
    TREES,
    with_tuple,
)

X = "torch.ones(3)"


DATA = (S(X, TENSORS, TREES, KINDS, gen=(GEN_TREES,)))
FUN = S("f_sum", FUNS)
FUN_ID = S("f_sin", FUNS)
ARGN = S("0", ARGNUMS, KINDS)
FLAG = S("False", FLAGS, KINDS)
TUPLES = with_tuple(TENSORS) + with_tuple(TREES[:12]) + (
    "(torch.ones(3), torch.ones(3))", "[torch.ones(3)]", "(torch.ones(2),)",
    "(torch.ones(3, dtype=torch.float64),)", "(torch.ones(3, dtype=torch.int64),)",
    "torch.ones(3)", "(None,)", "({'a': torch.ones(3)},)",
)
PRIMALS = S("(torch.ones(3),)", TUPLES, KINDS)
TANGENTS = S("(torch.ones(3),)", TUPLES, KINDS)
O = "ftx/_transforms/api.py"
J = "ftx/_transforms/jacobians.py"

APIS = [
    Api("grad", "ftx.grad(fun, argnums=argnums, has_aux=has_aux, allow_int=allow_int)(x)",
        {"fun": FUN, "argnums": ARGN, "has_aux": FLAG, "allow_int": FLAG, "x": DATA}, O),
    Api("value_and_grad",
        "ftx.value_and_grad(fun, argnums=argnums, has_aux=has_aux, allow_int=allow_int)(x)",
        {"fun": FUN, "argnums": ARGN, "has_aux": FLAG, "allow_int": FLAG, "x": DATA}, O),
    Api("grad.aux", "ftx.grad(fun, has_aux=True)(x)",
        {"fun": S("f_aux", FUNS), "x": DATA}, O),
    Api("grad.argnums2", "ftx.grad(f_sum, argnums=(0, 1))(x, y)",
        {"x": DATA, "y": DATA}, O),
    Api("vjp", "ftx.vjp(fun, x, has_aux=has_aux)[1](ct)",
        {"fun": FUN_ID, "x": DATA, "has_aux": FLAG,
         "ct": S(X, TENSORS, TREES, KINDS, ("torch.ones(2)",))}, O),
    Api("jvp", "ftx.jvp(fun, primals, tangents, has_aux=has_aux)",
        {"fun": FUN_ID, "primals": PRIMALS, "tangents": TANGENTS, "has_aux": FLAG}, O),
    Api("linearize", "ftx.linearize(fun, x, has_aux=has_aux)[1](t)",
        {"fun": FUN_ID, "x": DATA, "has_aux": FLAG,
         "t": S(X, TENSORS, TREES, KINDS, ("torch.ones(2)",))}, O),
    Api("hvp", "ftx.hvp(fun, primals, tangents)",
        {"fun": FUN, "primals": PRIMALS, "tangents": TANGENTS}, O),
    Api("vmap",
        "ftx.vmap(fun, in_axes=in_axes, out_axes=out_axes, axis_size=axis_size, "
        "chunk_size=chunk_size, randomness=randomness)(x)",
        {"fun": FUN_ID, "in_axes": S("0", AXES, KINDS), "out_axes": S("0", AXES, KINDS),
         "axis_size": S("None", INTS, KINDS), "chunk_size": S("None", INTS, KINDS),
         "randomness": S("'error'", STRS, ("'same'", "'different'", "'Different'")),
         "x": S("torch.ones(2, 3)", TENSORS, TREES, KINDS, gen=(GEN_TREES,))},
        "ftx/_transforms/vmap.py"),
    Api("vmap.two", "ftx.vmap(f_id, in_axes=in_axes)(x, y)",
        {"in_axes": S("(0, None)", AXES, KINDS, ("(0, 1)", "(0,)", "(0, 0, 0)", "[0, None]")),
         "x": S("torch.ones(2, 3)", TENSORS, TREES, KINDS), "y": S(X, TENSORS, TREES, KINDS)},
        "ftx/_transforms/vmap.py"),
    Api("jacfwd", "ftx.jacfwd(fun, argnums=argnums, has_aux=has_aux)(x)",
        {"fun": FUN_ID, "argnums": ARGN, "has_aux": FLAG, "x": DATA}, J),
    Api("jacrev", "ftx.jacrev(fun, argnums=argnums, has_aux=has_aux, chunk_size=chunk_size)(x)",
        {"fun": FUN_ID, "argnums": ARGN, "has_aux": FLAG,
         "chunk_size": S("None", INTS, KINDS), "x": DATA}, J),
    Api("jacobian", "ftx.jacobian(fun, argnums=argnums, has_aux=has_aux, mode=mode)(x)",
        {"fun": FUN_ID, "argnums": ARGN, "has_aux": FLAG,
         "mode": S("'auto'", STRS, ("'FWD'", "'reverse'")), "x": DATA}, J),
    Api("hessian", "ftx.hessian(fun, argnums=argnums, has_aux=has_aux)(x)",
        {"fun": FUN, "argnums": ARGN, "has_aux": FLAG, "x": DATA}, J),
    Api("custom_vjp", "ftx.grad(lambda x: f_sum(make_custom_vjp(fun, fwd, bwd, nondiff)(x)))(x)",
        {"fun": FUN_ID,
         "fwd": S("fwd_ok", FUNS, ("fwd_no_pair", "bwd_ok")),
         "bwd": S("bwd_ok", FUNS, ("bwd_not_tuple", "bwd_two", "bwd_shape", "bwd_dtype",
                                   "bwd_int", "fwd_ok")),
         "nondiff": S("()", ARGNUMS, KINDS), "x": DATA}, "ftx/_transforms/custom.py"),
    Api("custom_vjp.call", "make_custom_vjp(f_sin, fwd_ok, bwd_ok)(x)",
        {"x": DATA}, "ftx/_transforms/custom.py"),
    Api("custom_jvp", "ftx.jvp(make_custom_jvp(fun, rule, nondiff), (x,), (x,))",
        {"fun": FUN_ID,
         "rule": S("jvp_ok", FUNS, ("jvp_not_pair", "jvp_shape", "jvp_dtype", "jvp_nonlinear",
                                    "jvp_primal_wrong")),
         "nondiff": S("()", ARGNUMS, KINDS), "x": DATA}, "ftx/_transforms/custom.py"),
    Api("custom_jvp.call", "make_custom_jvp(f_sin, jvp_ok)(x)", {"x": DATA},
        "ftx/_transforms/custom.py"),
    Api("checkpoint", "ftx.grad(lambda x: f_sum(ftx.checkpoint(fun)(x)))(x)",
        {"fun": FUN_ID, "x": DATA}, "ftx/_transforms/checkpoint.py"),
    Api("checkpoint.call", "ftx.checkpoint(fun)(x)",
        {"fun": FUN_ID, "x": DATA}, "ftx/_transforms/checkpoint.py", passthrough=("x",)),
]
