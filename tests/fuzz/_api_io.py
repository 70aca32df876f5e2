"""Bad arguments for ftx.io: paths, trees, ``like``, devices, and files that lie."""

from __future__ import annotations

from ._contract import Api, S
from ._values import DEVICES, GEN_TREES, KINDS, LYING, TENSORS, TREES

O = "ftx/io/__init__.py"
PATHS = (
    "''", "'\\0'", "dpath('')", "dpath('missing/dir/x.safetensors')", "dpath('fifo')",
    "fifo()", "'/dev/null'", "'/proc/self/status'", "dpath() + '/'", "b'/tmp/x'",
    "pathlib.Path(dpath())", "os.fsencode(dpath())", "dpath('a' * 300)",
)
SAVE_TREES = (
    "{'a': torch.ones(3), 'b': 'not\\udcff utf8'}", "{'__metadata__': torch.ones(1)}",
    "{'': torch.ones(1)}", "{1.5: torch.ones(1)}", "{None: torch.ones(1)}",
    "{(1, 2): torch.ones(1)}", "{'x': 10**5000}", "{'x': float('nan')}", "{'x': 1j}",
    "{'x': b'bytes'}", "{'x': torch.ones(3).to_sparse()}", "{'x': inference_tensor(3)}",
    "{'x': torch.ones(3, requires_grad=True)}", "{'x': torch.ones(1).expand(5)}",
    "{'x': torch.ones(3, dtype=torch.complex64)}", "{'x': torch.ones(3, dtype=torch.uint32)}",
    "{'x': torch.ones(3, dtype=torch.float8_e4m3fn)}", "{'x': torch.empty(2**60, device='meta')}",
    "{'x': torch.ones(3, dtype=torch.qint8) if False else torch.ones(3)}", "deep(150)",
    "{'a.b': torch.ones(1), 'a': {'b': torch.ones(1)}}", "{'x': Opaque()}",
)
LIKE = (
    "{'w': torch.zeros(2, 3), 'step': 0}", "{'w': torch.zeros(3, 2), 'step': 3}",
    "{'w': torch.zeros(2, 3, dtype=torch.float64), 'step': 3}", "{'w': torch.zeros(2, 3)}",
    "{'w': torch.zeros(2, 3), 'step': 3.0}", "{'w': torch.zeros(2, 3), 'step': '3'}",
    "{'w': torch.zeros(2, 3), 'step': torch.tensor(3)}", "{'w': 0, 'step': 3}",
    "{'w': torch.zeros(2, 3, device='meta'), 'step': 3}", "{'w': Opaque(), 'step': 3}",
    "{'w': torch.zeros(2, 3), 'step': 3, 'x': 1}", "[torch.zeros(2, 3), 3]",
    "Pair(torch.zeros(2, 3), 3)",
)

APIS = [
    Api("io.save", "ftx.io.save(path, tree)",
        {"path": S("existing_ckpt()", PATHS, KINDS),
         "tree": S("{'w': torch.ones(2, 3), 'step': 3}", SAVE_TREES, TREES, KINDS, TENSORS,
                   gen=(GEN_TREES,))}, O, files=True),
    Api("io.load", "ftx.io.load(path, like=like, device=device)",
        {"path": S("existing_ckpt()", PATHS, KINDS, tuple(f"lying({k!r})" for k in LYING)),
         "like": S("None", LIKE, TREES, KINDS, TENSORS, gen=(GEN_TREES,)),
         "device": S("None", DEVICES, KINDS)}, O, files=True),
    Api("io.load.plain", "ftx.io.load(path, like=like)",
        {"path": S("lying('good_plain')", tuple(f"lying({k!r})" for k in LYING)),
         "like": S("None", TREES, KINDS, ("{'x': torch.zeros(2)}", "{'y': torch.zeros(2)}",
                                          "{'x': torch.zeros(3)}", "{'x': 0}"))}, O, files=True),
]
