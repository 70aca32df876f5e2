"""Bad arguments for ftx.optim: hyper-parameters, init/update/apply_updates, chain, schedules."""

from __future__ import annotations

from ._contract import Api, S
from ._values import FLAGS, FUNS, GEN_NUMS, GEN_TREES, INTS, KINDS, NUMS, TENSORS, TREES

NUM = (*NUMS, *KINDS)
FLAG = (*FLAGS, *KINDS)
INT = (*INTS, *KINDS)
SCHED = ("sched_bad", "sched_nan", "sched_raise", "f_vec", "f_none", "f_str",
         "lambda step: torch.tensor([0.1, 0.2])")
LR = (*NUM, *SCHED)
BETAS = (*NUM, "(0.9,)", "(0.9, 0.999, 0.1)", "(1.0, 0.999)", "(0.9, 1.5)", "(-0.1, 0.9)",
         "(float('nan'), 0.9)", "[0.9, 0.999]", "('a', 'b')", "(0.9, None)")
TREE_BAD = (*TREES, *KINDS, *TENSORS, "{'w': torch.ones(3)}",
            "{'w': torch.ones(4), 'b': torch.zeros(2)}",
            "{'w': torch.ones(3, dtype=torch.float64), 'b': torch.zeros(2)}",
            "{'w': torch.ones(3, dtype=torch.int64), 'b': torch.zeros(2)}",
            "{'w': torch.ones(3, device='meta'), 'b': torch.zeros(2)}",
            "{'w': torch.ones(3), 'b': torch.zeros(2), 'c': torch.ones(1)}",
            "{'w': torch.ones(1).expand(3), 'b': torch.zeros(2)}",
            "{'w': torch.full((3,), float('nan')), 'b': torch.zeros(2)}",
            "{'w': None, 'b': torch.zeros(2)}", "{'w': 1.0, 'b': torch.zeros(2)}",
            "[torch.ones(3), torch.zeros(2)]",
            "{'w': torch.ones(3, dtype=torch.complex64), 'b': torch.zeros(2)}")
O = "ftx/optim/_base.py"
OPTS = [
    ("sgd", "ftx.optim.sgd(lr, momentum, dampening, wd, nesterov, maximize=maximize)",
     {"lr": ("0.1", LR), "momentum": ("0.9", NUM), "dampening": ("0.0", NUM),
      "wd": ("0.0", NUM), "nesterov": ("False", FLAG), "maximize": ("False", FLAG)},
     "ftx/optim/_sgd.py"),
    ("adam", "ftx.optim.adam(lr, betas, eps, wd, amsgrad, maximize=maximize)",
     {"lr": ("1e-3", LR), "betas": ("(0.9, 0.999)", BETAS), "eps": ("1e-8", NUM),
      "wd": ("0.0", NUM), "amsgrad": ("False", FLAG), "maximize": ("False", FLAG)},
     "ftx/optim/_adam.py"),
    ("adamw", "ftx.optim.adamw(lr, betas, eps, wd, amsgrad, maximize=maximize)",
     {"lr": ("1e-3", LR), "betas": ("(0.9, 0.999)", BETAS), "eps": ("1e-8", NUM),
      "wd": ("0.01", NUM), "amsgrad": ("False", FLAG), "maximize": ("False", FLAG)},
     "ftx/optim/_adam.py"),
    ("rmsprop", "ftx.optim.rmsprop(lr, alpha, eps, wd, momentum, centered, maximize=maximize)",
     {"lr": ("0.01", LR), "alpha": ("0.99", NUM), "eps": ("1e-8", NUM), "wd": ("0.0", NUM),
      "momentum": ("0.0", NUM), "centered": ("False", FLAG), "maximize": ("False", FLAG)},
     "ftx/optim/_rmsprop.py"),
    ("adagrad", "ftx.optim.adagrad(lr, lr_decay, wd, iav, eps, maximize=maximize)",
     {"lr": ("0.01", LR), "lr_decay": ("0.0", NUM), "wd": ("0.0", NUM), "iav": ("0.0", NUM),
      "eps": ("1e-10", NUM), "maximize": ("False", FLAG)}, "ftx/optim/_adagrad.py"),
    ("scale_by_adam", "ftx.optim.scale_by_adam(betas, eps, amsgrad)",
     {"betas": ("(0.9, 0.999)", BETAS), "eps": ("1e-8", NUM), "amsgrad": ("False", FLAG)},
     "ftx/optim/_adam.py"),
    ("scale_by_rms", "ftx.optim.scale_by_rms(alpha, eps, centered, momentum)",
     {"alpha": ("0.99", NUM), "eps": ("1e-8", NUM), "centered": ("False", FLAG),
      "momentum": ("0.0", NUM)}, "ftx/optim/_rmsprop.py"),
    ("scale_by_adagrad", "ftx.optim.scale_by_adagrad(iav, eps)",
     {"iav": ("0.0", NUM), "eps": ("1e-10", NUM)}, "ftx/optim/_adagrad.py"),
    ("trace", "ftx.optim.trace(momentum, dampening, nesterov)",
     {"momentum": ("0.9", NUM), "dampening": ("0.0", NUM), "nesterov": ("False", FLAG)},
     "ftx/optim/_sgd.py"),
    ("clip_by_global_norm", "ftx.optim.clip_by_global_norm(max_norm)",
     {"max_norm": ("1.0", NUM)}, "ftx/optim/_clip.py"),
    ("add_decayed_weights", "ftx.optim.add_decayed_weights(wd)", {"wd": ("0.1", NUM)},
     "ftx/optim/_weight_decay.py"),
    ("scale", "ftx.optim.scale(step_size)", {"step_size": ("0.5", NUM)}, "ftx/optim/_scale.py"),
    ("scale_by_learning_rate", "ftx.optim.scale_by_learning_rate(lr)", {"lr": ("0.1", LR)},
     "ftx/optim/_scale.py"),
    ("scale_by_schedule", "ftx.optim.scale_by_schedule(schedule)",
     {"schedule": ("ftx.optim.constant(0.5)", (*SCHED, *FUNS, *KINDS))}, "ftx/optim/_scale.py"),
    ("chain", "ftx.optim.chain(*transforms)",
     {"transforms": ("[ftx.optim.clip_by_global_norm(1.0), ftx.optim.sgd(0.1)]", (
         "[None]", "[1]", "[f_sin]", "[(f_sin, f_sin)]", "[ftx.optim.sgd]",
         "[ftx.optim.GradientTransformation(f_sin, f_sin)]",
         "[ftx.optim.GradientTransformation(None, None)]", "cyc_list()",
         "[torch.optim.SGD([torch.ones(1, requires_grad=True)])]"))},
     "ftx/optim/_base.py"),
]
SCHEDULES = [
    ("constant", "ftx.optim.constant(value)", {"value": ("0.1", NUM)}),
    ("linear", "ftx.optim.linear(init_value, end_value, steps)",
     {"init_value": ("1.0", NUM), "end_value": ("0.0", NUM), "steps": ("10", INT)}),
    ("cosine_decay", "ftx.optim.cosine_decay(init_value, steps, end_value)",
     {"init_value": ("1.0", NUM), "steps": ("10", INT), "end_value": ("0.0", NUM)}),
    ("exponential_decay", "ftx.optim.exponential_decay(init_value, rate, steps, staircase)",
     {"init_value": ("1.0", NUM), "rate": ("0.5", NUM), "steps": ("2", INT),
      "staircase": ("False", FLAG)}),
    ("warmup_cosine", "ftx.optim.warmup_cosine(peak, warmup, decay, init_value, end_value)",
     {"peak": ("1.0", NUM), "warmup": ("2", INT), "decay": ("10", INT),
      "init_value": ("0.0", NUM), "end_value": ("0.0", NUM)}),
]
STEP = S("torch.tensor(3)", INT, NUM, TENSORS, ("torch.tensor([1, 2])", "torch.tensor(-1)",
                                               "torch.tensor(2**62)"), gen=(GEN_NUMS,))

APIS: list[Api] = []
for name, ctor, slots, owner in OPTS:
    APIS.append(Api(f"optim.{name}", f"run_opt({ctor})",
                    {k: S(g, pool) for k, (g, pool) in slots.items()}, owner))
for name, ctor, slots in SCHEDULES:
    owner = "ftx/optim/_schedules.py"
    fixed = {k: v[0] for k, v in slots.items()}
    build = f"(lambda {', '.join(fixed)}: {ctor})({', '.join(fixed.values())})"
    APIS.append(Api(f"optim.{name}", f"({ctor})(torch.tensor(3))",
                    {k: S(g, pool) for k, (g, pool) in slots.items()}, owner))
    APIS.append(Api(f"optim.{name}.call", f"{build}(step)", {"step": STEP}, owner))
for name in ("adam", "sgd"):
    owner = "ftx/optim/_adam.py" if name == "adam" else "ftx/optim/_sgd.py"
    opt = f"ftx.optim.{name}(0.1)"
    APIS += [
        Api(f"optim.{name}.init", f"{opt}.init(params)",
            {"params": S("P()", TREE_BAD, gen=(GEN_TREES,))}, owner),
        Api(f"optim.{name}.update", f"{opt}.update(grads, state, params)",
            {"grads": S("G()", TREE_BAD, gen=(GEN_TREES,)),
             "state": S(f"{opt}.init(P())", TREE_BAD, (
                 f"{opt}.init({{'w': torch.ones(3)}})", "ftx.optim.sgd(0.1, 0.9).init(P())",
                 "ftx.optim.adam(0.1).init(P())", "ftx.optim.rmsprop().init(P())")),
             "params": S("P()", TREE_BAD)}, owner),
    ]
APIS += [
    Api("optim.apply_updates", "ftx.optim.apply_updates(params, updates)",
        {"params": S("P()", TREE_BAD, gen=(GEN_TREES,)),
         "updates": S("G()", TREE_BAD, gen=(GEN_TREES,))}, O),
    Api("optim.identity.update", "ftx.optim.identity().update(grads, state, params)",
        {"grads": S("G()", TREE_BAD), "state": S("ftx.optim.identity().init(P())", TREE_BAD),
         "params": S("P()", TREE_BAD)}, O),
]
