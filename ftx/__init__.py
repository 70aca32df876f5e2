"""ftx: JAX-style functional transforms on PyTorch.

Contract: transforms take pure functions of tensors and pytrees of tensors and
return pure functions; they are typed wrappers over ``torch.func`` with JAX's
signatures, argument names, return order and output layout, and they nest
inside ``torch.func`` transforms and ``torch.compile`` and vice versa.
Submodules: ``ftx.tree`` (pytrees), ``ftx.random`` (splittable keys),
``ftx.nn`` (stateless layers), ``ftx.optim`` (pure optimizers), ``ftx.io``
(safe checkpoints), ``ftx.picograd`` (a scalar autodiff engine for teaching),
``ftx.distributed`` (pytree collectives), ``ftx.test_util`` (numerical
derivative checks for custom rules).
"""

from . import distributed as distributed
from . import io as io
from . import lax as lax
from . import nn as nn
from . import optim as optim
from . import picograd as picograd
from . import random as random
from . import test_util as test_util
from . import tree as tree
from ._transforms.api import grad as grad
from ._transforms.api import hvp as hvp
from ._transforms.api import jvp as jvp
from ._transforms.api import linearize as linearize
from ._transforms.api import value_and_grad as value_and_grad
from ._transforms.api import vjp as vjp
from ._transforms.checkpoint import checkpoint as checkpoint
from ._transforms.custom import custom_jvp as custom_jvp
from ._transforms.custom import custom_vjp as custom_vjp
from ._transforms.jacobians import hessian as hessian
from ._transforms.jacobians import jacfwd as jacfwd
from ._transforms.jacobians import jacobian as jacobian
from ._transforms.jacobians import jacrev as jacrev
from ._transforms.jit import jit as jit
from ._transforms.vmap import vmap as vmap

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "checkpoint",
    "custom_jvp",
    "custom_vjp",
    "distributed",
    "grad",
    "hessian",
    "hvp",
    "io",
    "jacfwd",
    "jacobian",
    "jacrev",
    "jit",
    "jvp",
    "lax",
    "linearize",
    "nn",
    "optim",
    "picograd",
    "random",
    "test_util",
    "tree",
    "value_and_grad",
    "vjp",
    "vmap",
]
