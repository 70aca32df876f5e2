"""Bad arguments for ftx.jit: torch.compile's keywords (checked when jit is built) and calls."""

from __future__ import annotations

from ._contract import Api, S
from ._values import FUNS, KINDS, TENSORS

O = "ftx/_transforms/jit.py"
KW = S("{}", (
    "{'mode': 'bogus'}", "{'mode': 5}", "{'dynamic': 'maybe'}", "{'dynamic': 1}",
    "{'backend': 5}", "{'backend': 'bogus'}", "{'backend': None}", "{'fullgraph': 'yes'}",
    "{'fullgraph': None}", "{'options': 5}", "{'options': {'bogus_option': 1}}",
    "{'options': {'cpp_wrapper': 'x'}}", "{'options': {1: 2}}", "{'options': cyc_dict()}",
    "{'mode': 'max-autotune', 'options': {'max_autotune': True}}", "{'disable': 'no'}",
    "{'disable': None}", "{'bogus': 1}", "{'donate_argnums': (0,)}", "{'mode': ''}",
    "{'backend': 'INDUCTOR'}", "{'backend': object()}", "{'options': []}",
    "{'options': {'guard_filter_fn': 5}}", "{'dynamic': float('nan')}",
))

APIS = [
    Api("jit", "ftx.jit(fun, **kw)", {"fun": S("f_sum", FUNS, KINDS), "kw": KW}, O),
    Api("jit.call", "ftx.jit(f_sum, backend='eager')(x)",
        {"x": S("torch.ones(3)", TENSORS, KINDS[:12])}, O, passthrough=("x",)),
]
