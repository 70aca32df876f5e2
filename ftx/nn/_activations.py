"""Activation layers (paramless): ``ReLU``, ``GELU``, ``Tanh``, ``Sigmoid``, ``SiLU``,
``Softplus``, ``Identity``, each the twin of the ``torch.nn`` module of that name.

Each takes a floating tensor (``Identity`` any tensor); an integer input raises
``TypeError`` on every device instead of depending on which kernels torch has."""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._base import Layer, Params, check_empty, check_fields, choice, kernel_error, real

__all__ = ["GELU", "Identity", "ReLU", "SiLU", "Sigmoid", "Softplus", "Tanh"]


@dataclasses.dataclass(frozen=True)
class ReLU(Layer):
    """``max(x, 0)`` elementwise; params ``{}``.

    Example:
        >>> import torch, ftx
        >>> ftx.nn.ReLU()({}, torch.tensor([-1.0, 2.0]))
        tensor([0., 2.])
    """

    def __call__(self, params: Params, x: Tensor, *, key: Tensor | None = None) -> Tensor:
        """``x: (*) -> (*)``."""
        if type(params) is not dict or params or type(x) is not Tensor or not x.is_floating_point():
            check_empty(self, params, x, floating=True)
        try:
            return torch.relu(x)
        except (RuntimeError, NotImplementedError) as err:
            kernel_error(self.api, x, err)

    def twin(self) -> nn.Module:
        return nn.ReLU()


@dataclasses.dataclass(frozen=True)
class Tanh(Layer):
    """``tanh(x)`` elementwise; params ``{}``.

    Example:
        >>> import torch, ftx
        >>> ftx.nn.Tanh()({}, torch.zeros(2))
        tensor([0., 0.])
    """

    def __call__(self, params: Params, x: Tensor, *, key: Tensor | None = None) -> Tensor:
        """``x: (*) -> (*)``."""
        if type(params) is not dict or params or type(x) is not Tensor or not x.is_floating_point():
            check_empty(self, params, x, floating=True)
        try:
            return torch.tanh(x)
        except (RuntimeError, NotImplementedError) as err:
            kernel_error(self.api, x, err)

    def twin(self) -> nn.Module:
        return nn.Tanh()


@dataclasses.dataclass(frozen=True)
class Sigmoid(Layer):
    """``1 / (1 + exp(-x))`` elementwise; params ``{}``.

    Example:
        >>> import torch, ftx
        >>> ftx.nn.Sigmoid()({}, torch.zeros(2))
        tensor([0.5000, 0.5000])
    """

    def __call__(self, params: Params, x: Tensor, *, key: Tensor | None = None) -> Tensor:
        """``x: (*) -> (*)``."""
        if type(params) is not dict or params or type(x) is not Tensor or not x.is_floating_point():
            check_empty(self, params, x, floating=True)
        try:
            return torch.sigmoid(x)
        except (RuntimeError, NotImplementedError) as err:
            kernel_error(self.api, x, err)

    def twin(self) -> nn.Module:
        return nn.Sigmoid()


@dataclasses.dataclass(frozen=True)
class SiLU(Layer):
    """``x * sigmoid(x)`` elementwise; params ``{}``.

    Example:
        >>> import torch, ftx
        >>> ftx.nn.SiLU()({}, torch.zeros(2))
        tensor([0., 0.])
    """

    def __call__(self, params: Params, x: Tensor, *, key: Tensor | None = None) -> Tensor:
        """``x: (*) -> (*)``."""
        if type(params) is not dict or params or type(x) is not Tensor or not x.is_floating_point():
            check_empty(self, params, x, floating=True)
        try:
            return F.silu(x)
        except (RuntimeError, NotImplementedError) as err:
            kernel_error(self.api, x, err)

    def twin(self) -> nn.Module:
        return nn.SiLU()


@dataclasses.dataclass(frozen=True)
class Identity(Layer):
    """Returns its input; params ``{}``.

    Example:
        >>> import torch, ftx
        >>> ftx.nn.Identity()({}, torch.ones(2))
        tensor([1., 1.])
    """

    def __call__(self, params: Params, x: Tensor, *, key: Tensor | None = None) -> Tensor:
        """``x: (*) -> (*)``."""
        if type(params) is not dict or params or type(x) is not Tensor:
            check_empty(self, params, x)
        return x

    def twin(self) -> nn.Module:
        return nn.Identity()


@dataclasses.dataclass(frozen=True)
class GELU(Layer):
    """Gaussian error linear unit, exact (``"none"``) or ``"tanh"``-approximated.

    Args:
        approximate: ``"none"`` or ``"tanh"``, as in ``nn.GELU``.

    Example:
        >>> import torch, ftx
        >>> ftx.nn.GELU()({}, torch.zeros(2))
        tensor([0., 0.])
    """

    approximate: str = "none"

    def __post_init__(self) -> None:
        check_fields(self, approximate=choice("none", "tanh"))

    def __call__(self, params: Params, x: Tensor, *, key: Tensor | None = None) -> Tensor:
        """``x: (*) -> (*)``."""
        if type(params) is not dict or params or type(x) is not Tensor or not x.is_floating_point():
            check_empty(self, params, x, floating=True)
        try:
            return F.gelu(x, approximate=self.approximate)
        except (RuntimeError, NotImplementedError) as err:
            kernel_error(self.api, x, err)

    def twin(self) -> nn.Module:
        return nn.GELU(approximate=self.approximate)


@dataclasses.dataclass(frozen=True)
class Softplus(Layer):
    """``log(1 + exp(beta * x)) / beta``, linear above ``threshold`` (as ``nn.Softplus``).

    Args:
        beta: sharpness (> 0).
        threshold: ``beta * x`` above which the function is the identity.

    Example:
        >>> import torch, ftx
        >>> ftx.nn.Softplus()({}, torch.zeros(1))
        tensor([0.6931])
    """

    beta: float = 1.0
    threshold: float = 20.0

    def __post_init__(self) -> None:
        check_fields(self, beta=real(0.0, low_open=True), threshold=real())

    def __call__(self, params: Params, x: Tensor, *, key: Tensor | None = None) -> Tensor:
        """``x: (*) -> (*)``."""
        if type(params) is not dict or params or type(x) is not Tensor or not x.is_floating_point():
            check_empty(self, params, x, floating=True)
        try:
            return F.softplus(x, self.beta, self.threshold)
        except (RuntimeError, NotImplementedError) as err:
            kernel_error(self.api, x, err)

    def twin(self) -> nn.Module:
        return nn.Softplus(self.beta, self.threshold)
