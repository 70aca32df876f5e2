"""Bad arguments for ftx.nn: layer hyper-parameters, init, apply, functional, losses, interop."""

from __future__ import annotations

from ._contract import Api, S
from ._values import (
    DEVICES,
    DTYPES,
    FLAGS,
    FUNS,
    GEN_NUMS,
    INTS,
    KEYS,
    KINDS,
    NUMS,
    PARAM_KINDS,
    SHAPES,
    STRS,
    TENSORS,
    TREES,
)

INT = (*INTS, *KINDS)
PAIR = (*INTS, *KINDS, "(1, 2, 3)", "(0, 0)", "(-1, 1)", "(2**62, 1)", "(1.5, 1)", "[1, 1]",
        "'same'", "'valid'", "'SAME'")
FLAG = (*FLAGS, *KINDS)
NUM = (*NUMS, *KINDS)
X_EXTRA = ("torch.ones(4, 5)", "torch.ones(3)", "torch.ones(2, 3, 4, 5, 6)",
           "torch.ones(1, 3, 2, 2)", "torch.ones(0, 2, 5, 5)", "torch.ones(1, 2, 1, 1)",
           "torch.ones(2, 3, dtype=torch.int64)")
KEY = S("None", KEYS, KINDS)

# (name, constructor over its slots, slot -> (good, pool), good x, owner, has params)
LAYERS: list[tuple[str, str, dict[str, tuple[str, tuple[str, ...]]], str, str, bool]] = [
    ("Linear", "ftx.nn.Linear(in_features, out_features, bias=bias)",
     {"in_features": ("3", INT), "out_features": ("2", INT), "bias": ("True", FLAG)},
     "torch.ones(4, 3)", "ftx/nn/_linear.py", True),
    ("Conv2d", "ftx.nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, "
     "padding=padding, dilation=dilation, groups=groups, bias=bias)",
     {"in_channels": ("2", INT), "out_channels": ("4", INT), "kernel_size": ("3", PAIR),
      "stride": ("1", PAIR), "padding": ("0", PAIR), "dilation": ("1", PAIR),
      "groups": ("2", INT), "bias": ("True", FLAG)},
     "torch.ones(1, 2, 5, 5)", "ftx/nn/_conv.py", True),
    ("DepthwiseConv2d", "ftx.nn.DepthwiseConv2d(channels, kernel_size, depth_multiplier=dm, "
     "stride=stride, padding=padding, dilation=dilation, bias=bias)",
     {"channels": ("2", INT), "kernel_size": ("3", PAIR), "dm": ("1", INT),
      "stride": ("1", PAIR), "padding": ("0", PAIR), "dilation": ("1", PAIR),
      "bias": ("True", FLAG)},
     "torch.ones(1, 2, 5, 5)", "ftx/nn/_depthwise.py", True),
    ("MLP", "ftx.nn.MLP(sizes, activation=activation, final_activation=final, bias=bias)",
     {"sizes": ("[3, 4, 2]", (*SHAPES, *KINDS, "[3]", "[3, -1, 2]", "[3, 2**62]", "[3, 4.0, 2]",
                              "(3, 2)", "'32'", "[3, True]")),
      "activation": ("ftx.nn.ReLU()", (*KINDS, *FUNS, "ftx.nn.Linear(4, 4)", "torch.nn.ReLU()",
                                       "torch.relu", "ftx.nn.ReLU")),
      "final": ("None", (*KINDS, "ftx.nn.Linear(2, 2)", "torch.nn.ReLU()", "torch.relu")),
      "bias": ("True", FLAG)},
     "torch.ones(4, 3)", "ftx/nn/_mlp.py", True),
    ("Sequential", "ftx.nn.Sequential(*layers)",
     {"layers": ("[ftx.nn.Linear(3, 4), ftx.nn.ReLU(), ftx.nn.Linear(4, 2)]", (
         "[1]", "[None]", "['relu']", "[torch.nn.Linear(3, 2)]", "[torch.relu]",
         "[ftx.nn.Linear]", "[ftx.nn.Linear(3, 4), ftx.nn.Linear(3, 4)]", "[]", "cyc_list()",
         "[ftx.nn.Sequential()]", "[f_sin]"))},
     "torch.ones(4, 3)", "ftx/nn/_sequential.py", True),
    ("Dropout", "ftx.nn.Dropout(p)", {"p": ("0.5", NUM)}, "torch.ones(4, 3)",
     "ftx/nn/_dropout.py", False),
    ("Flatten", "ftx.nn.Flatten(start_dim, end_dim)",
     {"start_dim": ("1", INT), "end_dim": ("-1", INT)}, "torch.ones(2, 3, 4)",
     "ftx/nn/_flatten.py", False),
    ("LayerNorm", "ftx.nn.LayerNorm(normalized_shape, eps=eps, elementwise_affine=affine, "
     "bias=bias)",
     {"normalized_shape": ("3", (*SHAPES, *INT, "(2, 3)", "(4,)")), "eps": ("1e-5", NUM),
      "affine": ("True", FLAG), "bias": ("True", FLAG)},
     "torch.ones(2, 3)", "ftx/nn/_norm.py", True),
    ("MaxPool2d", "ftx.nn.MaxPool2d(kernel_size, stride=stride, padding=padding, "
     "dilation=dilation, ceil_mode=ceil_mode)",
     {"kernel_size": ("2", PAIR), "stride": ("None", PAIR), "padding": ("0", PAIR),
      "dilation": ("1", PAIR), "ceil_mode": ("False", FLAG)},
     "torch.ones(1, 1, 4, 4)", "ftx/nn/_pool.py", False),
    ("AvgPool2d", "ftx.nn.AvgPool2d(kernel_size, stride=stride, padding=padding, "
     "ceil_mode=ceil_mode, count_include_pad=cip, divisor_override=div)",
     {"kernel_size": ("2", PAIR), "stride": ("None", PAIR), "padding": ("0", PAIR),
      "ceil_mode": ("False", FLAG), "cip": ("True", FLAG), "div": ("None", INT)},
     "torch.ones(1, 1, 4, 4)", "ftx/nn/_pool.py", False),
    ("GELU", "ftx.nn.GELU(approximate)", {"approximate": ("'none'", (*STRS, "'tanh'"))},
     "torch.ones(3)", "ftx/nn/_activations.py", False),
    ("Softplus", "ftx.nn.Softplus(beta, threshold)",
     {"beta": ("1.0", NUM), "threshold": ("20.0", NUM)}, "torch.ones(3)",
     "ftx/nn/_activations.py", False),
    *[(a, f"ftx.nn.{a}()", {}, "torch.ones(3)", "ftx/nn/_activations.py", False)
      for a in ("ReLU", "Tanh", "Sigmoid", "SiLU", "Identity")],
]


def _layer_apis() -> list[Api]:
    apis = []
    for name, ctor, slots, x, owner, has_params in LAYERS:
        # the constructor with every slot at its good value, for the init/apply cases
        fixed = {k: v[0] for k, v in slots.items()}
        build = f"(lambda {', '.join(fixed) or '_=0'}: {ctor})({', '.join(fixed.values())})"
        if slots:
            apis.append(Api(f"nn.{name}", f"run_layer({ctor}, {x})",
                            {k: S(g, pool) for k, (g, pool) in slots.items()}, owner))
        if has_params:
            apis.append(Api(f"nn.{name}.init", f"{build}.init(key, dtype=dtype, device=device)",
                            {"key": S("ftx.random.key(0)", KEYS, KINDS),
                             "dtype": S("torch.float32", DTYPES, KINDS),
                             "device": S("None", DEVICES, KINDS)}, owner))
        bad = tuple(f"bad_params({build}, {k!r})" for k in PARAM_KINDS) if has_params else ()
        apis.append(Api(f"nn.{name}.call", f"{build}(params, x, key=key)",
                        {"params": S(f"init({build})" if has_params else "{}", bad, TREES, KINDS),
                         "x": S(x, TENSORS, KINDS, TREES, X_EXTRA), "key": KEY}, owner))
    return apis


F = "ftx/nn/functional.py"
LIN = "init(ftx.nn.Linear(3, 2))"
CONV = "init(ftx.nn.Conv2d(2, 4, 3, groups=2))"
DW = "init(ftx.nn.DepthwiseConv2d(2, 3))"
LN = "init(ftx.nn.LayerNorm(3))"
X4 = "torch.ones(1, 2, 5, 5)"
XT = S("torch.ones(2, 3)", TENSORS, KINDS, TREES, X_EXTRA)
X4T = S(X4, TENSORS, KINDS, TREES, X_EXTRA)
PAIRS = S("1", PAIR)
LOSS_IN = S("torch.zeros(4, 3)", TENSORS, KINDS, TREES, X_EXTRA,
            ("torch.zeros(4, 3, requires_grad=True)",))
L = "ftx/nn/_losses.py"
I = "ftx/nn/_interop.py"
MOD = S("torch.nn.Linear(3, 2)", KINDS, TENSORS, (
    "torch.nn.Linear(3, 2, device='meta')", "torch.nn.Sequential()", "torch.nn.ModuleList()",
    "torch.nn.BatchNorm1d(3)", "torch.nn.Linear(3, 2).requires_grad_(False)",
    "torch.nn.Linear(3, 2).half()", "torch.nn.LSTM(2, 2)", "torch.nn.Linear"))
PARAMS = S("{'weight': torch.zeros(2, 3), 'bias': torch.zeros(2)}", TREES, KINDS, tuple(
    f"bad_params(ftx.nn.Linear(3, 2), {k!r})" for k in PARAM_KINDS))

APIS = [
    *_layer_apis(),
    Api("nn.functional.linear", "ftx.nn.functional.linear(params, x)",
        {"params": S(LIN, TREES, KINDS, tuple(f"bad_params(ftx.nn.Linear(3, 2), {k!r})"
                                              for k in PARAM_KINDS)), "x": XT}, F),
    Api("nn.functional.conv2d",
        "ftx.nn.functional.conv2d(params, x, stride, padding, dilation, groups)",
        {"params": S(CONV, TREES, KINDS, tuple(f"bad_params(ftx.nn.Conv2d(2, 4, 3, groups=2), "
                                               f"{k!r})" for k in PARAM_KINDS)),
         "x": X4T, "stride": PAIRS, "padding": S("0", PAIR), "dilation": PAIRS,
         "groups": S("2", INT)}, F),
    Api("nn.functional.depthwise_conv2d",
        "ftx.nn.functional.depthwise_conv2d(params, x, stride, padding, dilation)",
        {"params": S(DW, TREES, KINDS), "x": S(X4, TENSORS, KINDS, TREES, X_EXTRA, (
            "ftx.nn.NamedTensor(torch.ones(1, 2, 5, 5), ('N', 'C', 'H', 'W'))",
            "ftx.nn.NamedTensor(torch.ones(1, 2, 5, 5), ('N', 'C', None, 'W'))",
            "ftx.nn.NamedTensor(torch.ones(1, 2, 5, 5), ('A', 'B', 'C', 'D'))")),
         "stride": PAIRS, "padding": S("0", PAIR), "dilation": PAIRS}, F),
    Api("nn.functional.layer_norm", "ftx.nn.functional.layer_norm(params, x, shape, eps)",
        {"params": S(LN, TREES, KINDS), "x": XT,
         "shape": S("None", SHAPES, KINDS, ("(3,)", "(2, 3)", "(4,)")), "eps": S("1e-5", NUM)}, F),
    Api("nn.functional.dropout", "ftx.nn.functional.dropout(x, p, key)",
        {"x": XT, "p": S("0.5", NUM, gen=(GEN_NUMS,)),
         "key": S("ftx.random.key(0)", KEYS, KINDS)}, F),
    Api("nn.functional.max_pool2d",
        "ftx.nn.functional.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode)",
        {"x": X4T, "kernel_size": S("2", PAIR), "stride": S("None", PAIR),
         "padding": S("0", PAIR), "dilation": PAIRS, "ceil_mode": S("False", FLAG)}, F),
    Api("nn.functional.avg_pool2d",
        "ftx.nn.functional.avg_pool2d(x, kernel_size, stride, padding, ceil_mode, cip, div)",
        {"x": X4T, "kernel_size": S("2", PAIR), "stride": S("None", PAIR),
         "padding": S("0", PAIR), "ceil_mode": S("False", FLAG), "cip": S("True", FLAG),
         "div": S("None", INT)}, F),
    Api("nn.functional.flatten", "ftx.nn.functional.flatten(x, start_dim, end_dim)",
        {"x": XT, "start_dim": S("1", INT), "end_dim": S("-1", INT)}, F),
    *[Api(f"nn.functional.{a}", f"ftx.nn.functional.{a}(x)", {"x": XT}, F)
      for a in ("relu", "tanh", "sigmoid", "silu")],
    Api("nn.functional.gelu", "ftx.nn.functional.gelu(x, approximate)",
        {"x": XT, "approximate": S("'none'", STRS, KINDS)}, F),
    Api("nn.functional.softplus", "ftx.nn.functional.softplus(x, beta, threshold)",
        {"x": XT, "beta": S("1.0", NUM), "threshold": S("20.0", NUM)}, F),
    Api("nn.mse_loss", "ftx.nn.mse_loss(input, target, reduction)",
        {"input": LOSS_IN, "target": S("torch.ones(4, 3)", TENSORS, KINDS, X_EXTRA),
         "reduction": S("'mean'", STRS, KINDS, ("'sum'", "'none'"))}, L),
    Api("nn.cross_entropy",
        "ftx.nn.cross_entropy(input, target, reduction, label_smoothing=ls, ignore_index=ii)",
        {"input": LOSS_IN, "target": S("torch.tensor([0, 1, 2, 0])", TENSORS, KINDS, X_EXTRA, (
            "torch.tensor([0, 1, 3, 0])", "torch.tensor([-5, 1, 2, 0])",
            "torch.tensor([0, 1, 2])", "torch.tensor([0, 1, 2, 2**40])")),
         "reduction": S("'mean'", STRS, KINDS), "ls": S("0.0", NUM),
         "ii": S("-100", INT)}, L),
    Api("nn.binary_cross_entropy_with_logits",
        "ftx.nn.binary_cross_entropy_with_logits(input, target, reduction, pos_weight)",
        {"input": LOSS_IN, "target": S("torch.ones(4, 3)", TENSORS, KINDS, X_EXTRA),
         "reduction": S("'mean'", STRS, KINDS),
         "pos_weight": S("None", TENSORS, KINDS, ("torch.ones(4)", "torch.ones(3)"))}, L),
    Api("nn.params_of", "ftx.nn.params_of(module)", {"module": MOD}, I),
    Api("nn.load_params", "ftx.nn.load_params(module, params)",
        {"module": MOD, "params": PARAMS}, I, mutable=("module",)),
    Api("nn.to_module", "ftx.nn.to_module(layer, params)",
        {"layer": S("ftx.nn.Linear(3, 2)", KINDS, ("torch.nn.Linear(3, 2)", "ftx.nn.Linear",
                                                   "ftx.nn.Dropout(0.5)", "ftx.nn.MLP([3, 2])")),
         "params": PARAMS}, I),
    Api("nn.from_module", "(lambda f, p: f(p, x))(*ftx.nn.from_module(module))",
        {"module": MOD, "x": S("torch.ones(4, 3)", TENSORS, KINDS, TREES, X_EXTRA)}, I,
        passthrough=("x",)),
    Api("nn.from_module.apply", "ftx.nn.from_module(torch.nn.Linear(3, 2))[0](params, x)",
        {"params": PARAMS, "x": S("torch.ones(4, 3)", TENSORS, KINDS, X_EXTRA)}, I,
        passthrough=("x",)),
    Api("nn.NamedTensor", "ftx.nn.NamedTensor(tensor, names)",
        {"tensor": S("torch.ones(2, 3)", TENSORS, KINDS),
         "names": S("('N', 'C')", KINDS, ("('N',)", "('N', 'N')", "(1, 2)", "'NC'",
                                          "['N', 'C']", "('N', None)"))},
        "ftx/nn/_named.py"),
]
