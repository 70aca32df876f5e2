"""``ftx.nn``: stateless layers, the same maths and parameters as ``torch.nn``.

Contract: a layer is a frozen dataclass of hyper-parameters (never tensors) with

* ``params = layer.init(key, *, dtype=torch.float32, device=None)``: a nested
  dict of tensors drawn from ``ftx.random`` keys with PyTorch's default
  distributions, whose flattened paths and shapes equal the twin
  ``nn.Module``'s ``state_dict()`` (``Sequential`` keys layers by index and
  leaves gaps for paramless layers, as ``nn.Sequential`` does);
* ``y = layer(params, x, *, key=None)``: pure; ``key`` only feeds randomness
  (``Dropout``).
* Layers with state (``BatchNorm1d``/``BatchNorm2d`` and ``Sequential``s holding one)
  also have ``state = layer.init_state(*, dtype, device)`` (a pytree under the twin's
  buffer names) and return ``(y, new_state)`` when called with ``state=`` (and
  ``training=``); nothing is mutated.

``ftx.nn.functional`` holds the same maths as plain functions. ``params_of``,
``load_params``, ``to_module`` and ``from_module`` move between ftx params and
``nn.Module`` objects.

Example:
    >>> import torch, ftx
    >>> mlp = ftx.nn.MLP([3, 16, 2])
    >>> params = mlp.init(ftx.random.key(0))
    >>> x, y = torch.randn(8, 3), torch.randn(8, 2)
    >>> grads = ftx.grad(lambda p: ftx.nn.mse_loss(mlp(p, x), y))(params)
    >>> sorted(ftx.tree.map(lambda g: tuple(g.shape), grads)["2"].items())
    [('bias', (2,)), ('weight', (2, 16))]
"""

from . import functional as functional
from ._activations import GELU as GELU
from ._activations import Identity as Identity
from ._activations import ReLU as ReLU
from ._activations import Sigmoid as Sigmoid
from ._activations import SiLU as SiLU
from ._activations import Softplus as Softplus
from ._activations import Tanh as Tanh
from ._attention import MultiheadAttention as MultiheadAttention
from ._base import Layer as Layer
from ._base import ParamsError as ParamsError
from ._batchnorm import BatchNorm1d as BatchNorm1d
from ._batchnorm import BatchNorm2d as BatchNorm2d
from ._conv import Conv1d as Conv1d
from ._conv import Conv2d as Conv2d
from ._conv import Conv3d as Conv3d
from ._conv import ConvTranspose2d as ConvTranspose2d
from ._depthwise import DepthwiseConv2d as DepthwiseConv2d
from ._dropout import Dropout as Dropout
from ._embedding import Embedding as Embedding
from ._flatten import Flatten as Flatten
from ._interop import from_module as from_module
from ._interop import load_params as load_params
from ._interop import params_of as params_of
from ._interop import state_of as state_of
from ._interop import to_module as to_module
from ._linear import Linear as Linear
from ._losses import binary_cross_entropy_with_logits as binary_cross_entropy_with_logits
from ._losses import cross_entropy as cross_entropy
from ._losses import mse_loss as mse_loss
from ._mlp import MLP as MLP
from ._named import NamedTensor as NamedTensor
from ._norm import GroupNorm as GroupNorm
from ._norm import LayerNorm as LayerNorm
from ._norm import RMSNorm as RMSNorm
from ._pool import AdaptiveAvgPool2d as AdaptiveAvgPool2d
from ._pool import AvgPool2d as AvgPool2d
from ._pool import MaxPool2d as MaxPool2d
from ._recurrent import GRU as GRU
from ._recurrent import LSTM as LSTM
from ._recurrent import GRUCell as GRUCell
from ._recurrent import LSTMCell as LSTMCell
from ._sequential import Sequential as Sequential
from ._transformer import TransformerDecoderLayer as TransformerDecoderLayer
from ._transformer import TransformerEncoderLayer as TransformerEncoderLayer
from ._upsample import Upsample as Upsample

__all__ = [
    "GELU",
    "GRU",
    "LSTM",
    "MLP",
    "AdaptiveAvgPool2d",
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose2d",
    "DepthwiseConv2d",
    "Dropout",
    "Embedding",
    "Flatten",
    "GRUCell",
    "GroupNorm",
    "Identity",
    "LSTMCell",
    "Layer",
    "LayerNorm",
    "Linear",
    "MaxPool2d",
    "MultiheadAttention",
    "NamedTensor",
    "ParamsError",
    "RMSNorm",
    "ReLU",
    "Sequential",
    "SiLU",
    "Sigmoid",
    "Softplus",
    "Tanh",
    "TransformerDecoderLayer",
    "TransformerEncoderLayer",
    "Upsample",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "from_module",
    "functional",
    "load_params",
    "mse_loss",
    "params_of",
    "state_of",
    "to_module",
]
