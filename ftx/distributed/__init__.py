"""Pytree collectives over ``torch.distributed`` process groups.

Contract: every function takes a pytree of tensors and returns a new pytree of
the same structure (inputs are never mutated); it runs on an initialised
``torch.distributed`` process group (gloo on CPU, NCCL on GPU), which
``torchrun`` launches. ftx packs the leaves into a few large flat buckets per
(dtype, device) before each collective, as ``DistributedDataParallel`` does,
instead of one collective per tensor. Before reducing, the ranks agree that
their trees have one structure, shapes and dtypes (one tiny collective); when
they do not, every rank raises a ``ValueError`` naming the first differing
path. A collective that cannot complete (a rank died or never joined) raises
:class:`CollectiveError` after the group's timeout instead of hanging.

Example (inside a script launched with ``torchrun --nproc_per_node=2``)::

    import torch.distributed as dist, ftx
    ftx.distributed.initialize(backend="gloo")
    grads = ftx.grad(loss)(params, ftx.distributed.shard(batch))
    grads = ftx.distributed.all_reduce(grads, op="mean")
"""

from __future__ import annotations

from ._checkpoint import load as load
from ._checkpoint import save as save
from ._collectives import CollectiveError as CollectiveError
from ._collectives import all_gather as all_gather
from ._collectives import all_reduce as all_reduce
from ._collectives import broadcast as broadcast
from ._collectives import initialize as initialize
from ._collectives import rank as rank
from ._collectives import shard as shard
from ._collectives import world_size as world_size
from ._grad import grad as grad
from ._grad import value_and_grad as value_and_grad
from ._sharded import gather_params as gather_params
from ._sharded import shard_params as shard_params

__all__ = [
    "CollectiveError",
    "all_gather",
    "all_reduce",
    "broadcast",
    "gather_params",
    "grad",
    "initialize",
    "load",
    "rank",
    "save",
    "shard",
    "shard_params",
    "value_and_grad",
    "world_size",
]
