"""Bad arguments for ftx.picograd."""

from __future__ import annotations

from ._contract import Api, S
from ._values import ARGNUMS, DTYPES, FLAGS, FUNS, INTS, KINDS, NUMS, TENSORS, TREES

O = "ftx/picograd/_var.py"
P = "ftx/picograd/__init__.py"
D = "ftx/picograd/_dual.py"
L = "ftx/picograd/_linear.py"
NUM = S("1.5", NUMS, KINDS, ("ftx.picograd.Dual(1.0)", "ftx.picograd.Var(1.0)"))
OPS = S("operator.add", (
    "operator.sub", "operator.mul", "operator.truediv", "operator.pow"))
PFUN = S("pg_sq", FUNS, ("pg_aux",))
PARGS = S("3.0", NUMS, KINDS, TREES, ("[1.0, 10**400]", "{'a': float('nan')}"))
TUP = S("(1.0,)", KINDS, tuple(f"({v},)" for v in NUMS + KINDS), (
    "(1.0, 2.0)", "[1.0]", "((1.0,),)"))

APIS = [
    Api("picograd.Var", "ftx.picograd.Var(value)", {"value": NUM}, O),
    Api("picograd.Var.op", "op(ftx.picograd.Var(1.5), other)", {"op": OPS, "other": NUM}, O),
    Api("picograd.Var.rop", "op(other, ftx.picograd.Var(1.5))", {"op": OPS, "other": NUM}, O),
    Api("picograd.Var.grad", "(ftx.picograd.Var(2.0) * 3).grad(bp)",
        {"bp": S("1.0", NUMS, KINDS)}, O),
    Api("picograd.Dual", "ftx.picograd.Dual(primal, tangent)",
        {"primal": NUM, "tangent": S("0.0", NUMS, KINDS)}, D),
    Api("picograd.Dual.op", "op(ftx.picograd.Dual(1.5, 1.0), other)",
        {"op": OPS, "other": NUM}, D),
    Api("picograd.Dual.rop", "op(other, ftx.picograd.Dual(1.5, 1.0))",
        {"op": OPS, "other": NUM}, D),
    *[Api(f"picograd.{fn}", f"ftx.picograd.{fn}(x)", {"x": NUM}, P)
      for fn in ("neg", "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "value")],
    Api("picograd.grad", "ftx.picograd.grad(fun, argnums=argnums, has_aux=has_aux)(x)",
        {"fun": PFUN, "argnums": S("0", ARGNUMS, KINDS), "has_aux": S("False", FLAGS, KINDS),
         "x": PARGS}, P),
    Api("picograd.value_and_grad",
        "ftx.picograd.value_and_grad(fun, argnums=argnums, has_aux=has_aux)(x)",
        {"fun": PFUN, "argnums": S("0", ARGNUMS, KINDS), "has_aux": S("False", FLAGS, KINDS),
         "x": PARGS}, P),
    Api("picograd.jvp", "ftx.picograd.jvp(fun, primals, tangents, has_aux=has_aux)",
        {"fun": PFUN, "primals": TUP, "tangents": TUP, "has_aux": S("False", FLAGS, KINDS)}, P),
    Api("picograd.Linear", "ftx.picograd.Linear(n_in, n_out, bias, seed=seed)",
        {"n_in": S("3", INTS, KINDS), "n_out": S("2", INTS, KINDS),
         "bias": S("True", FLAGS, KINDS), "seed": S("0", INTS, KINDS)}, L),
    Api("picograd.Linear.from_torch", "ftx.picograd.Linear.from_torch(module)",
        {"module": S("torch.nn.Linear(3, 2)", KINDS, TENSORS, (
            "torch.nn.Linear(3, 2, device='meta')", "torch.nn.Linear(3, 2).to(torch.float16)",
            "torch.nn.Linear(0, 2)", "torch.nn.Conv2d(1, 1, 1)"))}, L),
    Api("picograd.Linear.call", "ftx.picograd.Linear(3, 2)(x)",
        {"x": S("[1.0, 2.0, 3.0]", KINDS, TREES, TENSORS, (
            "[1.0, 2.0]", "['a', 'b', 'c']", "[10**400, 1, 1]", "[None, 1, 1]",
            "[ftx.picograd.Var(1.0), ftx.picograd.Dual(1.0), 1.0]", "(1, 2, 3)",
            "[torch.ones(2), 1, 1]", "[float('nan')] * 3"))}, L),
    Api("picograd.Linear.state_dict", "ftx.picograd.Linear(3, 2).state_dict(dtype)",
        {"dtype": S("torch.float64", DTYPES, KINDS)}, L),
]
