"""Pytree collectives, overlapped data-parallel gradients and sharded training (torch.distributed).

Contract: every function takes pytrees of tensors and returns new pytrees of the
same structure (inputs are never mutated); it runs on an initialised
``torch.distributed`` process group (gloo on CPU, NCCL on GPU), which
``torchrun`` launches. ftx packs the leaves into a few large flat buckets per
(dtype, device) before each collective, as ``DistributedDataParallel`` does,
instead of one collective per tensor. Before reducing, the ranks agree that
their trees have one structure, shapes and dtypes (one tiny collective); when
they do not, every rank raises a ``ValueError`` naming the first differing
path. A collective that cannot complete (a rank died or never joined) raises
:class:`CollectiveError` after the group's timeout instead of hanging.

Three levels:

- collectives: :func:`all_reduce`, :func:`broadcast`, :func:`all_gather`, and
  :func:`shard` (this rank's slice of a batch);
- :func:`value_and_grad` / :func:`grad`: the gradient reduced across ranks while
  the backward pass runs (hooks on the autograd graph start each bucket's
  collective as soon as it is full); plain leaves are data parallel (all-reduce),
  leaves from :func:`shard_params` (DTensor ``Shard(0)`` on a 1-D ``DeviceMesh``)
  are gathered for the forward pass and get their shard of the gradient
  (reduce-scatter): ZeRO-3 / FSDP for pure functions, with ``ftx.optim`` updating
  each rank's shard;
- :func:`save` / :func:`load`: sharded checkpoints (one ``ftx.io`` file per rank
  plus an index) that load on any number of ranks.

Example (inside a script launched with ``torchrun --nproc_per_node=2``)::

    import ftx
    ftx.distributed.initialize(backend="gloo")
    params = ftx.distributed.shard_params(params)           # or keep them replicated
    loss, grads = ftx.distributed.value_and_grad(loss)(params, *ftx.distributed.shard(batch))
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
