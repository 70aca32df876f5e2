"""ftx.optim: pure optimizers with optax's shape and torch.optim's names and numbers.

Contract: an optimizer is a ``GradientTransformation(init, update)`` of pure
functions::

    opt = ftx.optim.adam(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    state = opt.init(params)
    updates, state = opt.update(grads, state, params)
    params = ftx.optim.apply_updates(params, updates)

Nothing is mutated. The state is a pytree of tensors (the step count a 0-dim
``int64`` tensor, buffers under torch.optim's names), so it can be vmapped,
saved and compiled. Each alias (``sgd``, ``adam``, ``adamw``, ``rmsprop``,
``adagrad``) is a :func:`chain` of small transforms whose trajectory equals its
``torch.optim`` twin step for step. ``lr`` is a number or a schedule
(``step -> lr``). Updates are differentiable (MAML) and ``vmap``-able
(ensembles); in plain eager code they run on torch's foreach kernels (small
trees, GPUs) or leaf by leaf (large CPU trees). ``update(..., donate=True)`` and
``apply_updates(..., donate=True)`` opt in to writing into the old state's and
params' buffers (same numbers, no fresh allocations).
"""

from ._adagrad import ScaleByAdagradState as ScaleByAdagradState
from ._adagrad import adagrad as adagrad
from ._adagrad import scale_by_adagrad as scale_by_adagrad
from ._adam import ScaleByAdamState as ScaleByAdamState
from ._adam import adam as adam
from ._adam import adamw as adamw
from ._adam import scale_by_adam as scale_by_adam
from ._base import EmptyState as EmptyState
from ._base import GradientTransformation as GradientTransformation
from ._base import ScalarOrSchedule as ScalarOrSchedule
from ._base import Schedule as Schedule
from ._base import apply_updates as apply_updates
from ._base import chain as chain
from ._base import identity as identity
from ._clip import clip_by_global_norm as clip_by_global_norm
from ._rmsprop import ScaleByRmsState as ScaleByRmsState
from ._rmsprop import rmsprop as rmsprop
from ._rmsprop import scale_by_rms as scale_by_rms
from ._scale import ScaleByScheduleState as ScaleByScheduleState
from ._scale import scale as scale
from ._scale import scale_by_learning_rate as scale_by_learning_rate
from ._scale import scale_by_schedule as scale_by_schedule
from ._schedules import constant as constant
from ._schedules import cosine_decay as cosine_decay
from ._schedules import exponential_decay as exponential_decay
from ._schedules import linear as linear
from ._schedules import warmup_cosine as warmup_cosine
from ._sgd import TraceState as TraceState
from ._sgd import sgd as sgd
from ._sgd import trace as trace
from ._weight_decay import add_decayed_weights as add_decayed_weights

__all__ = [
    "EmptyState",
    "GradientTransformation",
    "ScalarOrSchedule",
    "ScaleByAdagradState",
    "ScaleByAdamState",
    "ScaleByRmsState",
    "ScaleByScheduleState",
    "Schedule",
    "TraceState",
    "adagrad",
    "adam",
    "adamw",
    "add_decayed_weights",
    "apply_updates",
    "chain",
    "clip_by_global_norm",
    "constant",
    "cosine_decay",
    "exponential_decay",
    "identity",
    "linear",
    "rmsprop",
    "scale",
    "scale_by_adagrad",
    "scale_by_adam",
    "scale_by_learning_rate",
    "scale_by_rms",
    "scale_by_schedule",
    "sgd",
    "trace",
    "warmup_cosine",
]
