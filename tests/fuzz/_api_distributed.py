"""Bad arguments for ftx.distributed, without a process group (what a single process can test)."""

from __future__ import annotations

from ._contract import Api, S
from ._values import FLAGS, GEN_TREES, INTS, KINDS, NUMS, STRS, TENSORS, TREES

O = "ftx/distributed/_collectives.py"
TREE = S("{'w': torch.ones(3)}", TREES, KINDS, TENSORS, gen=(GEN_TREES,))
GROUP = S("None", KINDS, ("torch.distributed.group.WORLD",))
CHECK = S("True", FLAGS, KINDS)

APIS = [
    Api("distributed.shard", "ftx.distributed.shard(batch, rank=rank, world_size=world_size)",
        {"batch": S("{'x': torch.arange(6), 'y': torch.ones(6, 2)}", TREES, KINDS, TENSORS, (
            "{'x': torch.arange(6), 'y': torch.ones(5)}", "{'x': torch.arange(7)}",
            "{'x': torch.tensor(1)}", "{'x': 1}",), gen=(GEN_TREES,)),
         "rank": S("1", INTS, KINDS), "world_size": S("3", INTS, KINDS)}, O),
    Api("distributed.all_reduce",
        "ftx.distributed.all_reduce(tree, op, group=group, bucket_mb=bucket_mb, check=check)",
        {"tree": TREE, "op": S("'mean'", STRS, KINDS), "group": GROUP,
         "bucket_mb": S("25.0", NUMS, KINDS), "check": CHECK}, O, good_raises="ValueError"),
    Api("distributed.broadcast", "ftx.distributed.broadcast(tree, src, group=group, check=check)",
        {"tree": TREE, "src": S("0", INTS, KINDS), "group": GROUP, "check": CHECK}, O,
        good_raises="ValueError"),
    Api("distributed.all_gather", "ftx.distributed.all_gather(tree, group=group, check=check)",
        {"tree": TREE, "group": GROUP, "check": CHECK}, O, good_raises="ValueError"),
    Api("distributed.rank", "ftx.distributed.rank(group)", {"group": GROUP}, O),
    Api("distributed.world_size", "ftx.distributed.world_size(group)", {"group": GROUP}, O),
    Api("distributed.initialize",
        "ftx.distributed.initialize(backend, timeout=timeout, init_method=init_method)",
        {"backend": S("'gloo'", STRS, KINDS, ("'nccl'", "'mpi'", "'GLOO'")),
         "timeout": S("0.5", NUMS, KINDS, ("datetime.timedelta(seconds=-1)",
                                           "datetime.timedelta(0)")),
         "init_method": S("None", KINDS, ("'bogus://x'", "''", "'env://'"))}, O,
        good_raises="CollectiveError"),
]
