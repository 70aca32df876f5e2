"""``Linear``: ``y = W x + b`` over lists of picograd scalars (the tutorial's Exercise 0).

A ``Linear`` is a pytree node (children ``weight`` and ``bias``; ``in_features``
and ``out_features`` are structure), so :func:`ftx.picograd.grad` can
differentiate a loss with respect to a whole layer and ``ftx.tree.map`` can
update it: ``model = ftx.tree.map(lambda p, g: p - lr * g, model, grads)``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

import torch

from .._internal import torch_compat as _tc
from .._internal.errors import check_bool, describe, msg
from ._dual import Dual
from ._ops import is_number, num
from ._var import Var

# The most parameters a Linear may hold: each is a Python float (plus a Var under grad).
MAX_PARAMS = 2**22


class Linear:
    """A dense layer on scalars: ``out[i] = sum_j weight[i][j] * x[j] + bias[i]``.

    Shapes and initialisation follow ``torch.nn.Linear``: ``weight`` is
    ``out_features`` rows of ``in_features`` numbers and both ``weight`` and
    ``bias`` start uniform in ``(-1/sqrt(in_features), 1/sqrt(in_features))``
    (drawn from Python's ``random.Random(seed)``, not torch's generator; use
    :meth:`from_torch` to copy an ``nn.Linear``'s numbers).

    Args:
        in_features: length of the input list.
        out_features: length of the output list.
        bias: whether to add a bias.
        seed: seed of the initialisation.

    Attributes:
        weight: ``(out_features, in_features)`` nested list of numbers or ``Var``s.
        bias: ``(out_features,)`` list, or ``None``.

    Example:
        >>> import torch
        >>> _ = torch.manual_seed(0)
        >>> torchlr = torch.nn.Linear(3, 3)
        >>> picolr = Linear.from_torch(torchlr)
        >>> out = picolr([1.0, 1.0, 1.0])                     # (3,) -> (3,)
        >>> torch.allclose(torch.tensor([out]), torchlr(torch.ones(1, 3)))
        True
    """

    weight: list[list[Any]]
    bias: list[Any] | None

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, *, seed: int | None = 0
    ) -> None:
        for name, n in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise ValueError(msg("picograd.Linear", f"{name} must be a non-negative int",
                                     f"{n!r:.40}", "Pass a layer size such as 3."))
        if (in_features + 1) * out_features > MAX_PARAMS:
            raise ValueError(msg(
                "picograd.Linear", f"at most {MAX_PARAMS} parameters (a teaching engine on "
                "Python floats)", f"in_features={in_features!r:.30}, out_features="
                f"{out_features!r:.30}", "Use ftx.nn.Linear on tensors for large layers.",
            ))
        check_bool("picograd.Linear", "bias", bias)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(msg("picograd.Linear", "seed must be an int or None", describe(seed),
                                "Pass seed=0."))
        self.in_features = in_features
        self.out_features = out_features
        rng = random.Random(seed)
        bound = 1.0 / math.sqrt(in_features) if in_features > 0 else 0.0
        self.weight = [
            [rng.uniform(-bound, bound) for _ in range(in_features)] for _ in range(out_features)
        ]
        self.bias = [rng.uniform(-bound, bound) for _ in range(out_features)] if bias else None

    @classmethod
    def from_torch(cls, module: torch.nn.Linear) -> Linear:
        """A ``Linear`` holding a copy of ``module``'s weight and bias as Python floats.

        Args:
            module: a ``torch.nn.Linear`` (weight ``(out, in)``, bias ``(out,)`` or ``None``).

        Returns:
            The layer; float32 weights are widened exactly to Python floats.
        """
        if not isinstance(module, torch.nn.Linear):
            raise TypeError(msg("picograd.Linear.from_torch", "module must be a torch.nn.Linear",
                                type(module).__name__, "Pass the nn.Linear itself."))
        if module.weight.is_meta or (module.bias is not None and module.bias.is_meta):
            raise ValueError(msg("picograd.Linear.from_torch", "module must hold values",
                                 "a module on the meta device", "Materialise it first "
                                 "(module.to_empty(device='cpu') and initialise it)."))
        out = cls.__new__(cls)
        out.in_features = module.in_features
        out.out_features = module.out_features
        out.weight = module.weight.detach().to("cpu", torch.float64).tolist()
        b = module.bias
        out.bias = None if b is None else b.detach().to("cpu", torch.float64).tolist()
        return out

    def state_dict(self, dtype: torch.dtype = torch.float64) -> dict[str, torch.Tensor]:
        """The values as tensors under ``nn.Linear``'s state-dict keys (``Var``s by value).

        Returns:
            ``{"weight": (out, in), "bias": (out,)}`` (no ``"bias"`` without a bias);
            ``nn.Linear.load_state_dict`` accepts it.
        """

        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(msg("picograd.Linear.state_dict", "dtype must be a floating "
                                "torch.dtype", describe(dtype), "Pass torch.float64."))

        def num(v: Any) -> float:
            return float(v) if is_number(v) else float(v.value)

        sd = {
            "weight": torch.tensor(
                [[num(v) for v in row] for row in self.weight], dtype=dtype
            ).reshape(self.out_features, self.in_features)
        }
        if self.bias is not None:
            sd["bias"] = torch.tensor([num(v) for v in self.bias], dtype=dtype)
        return sd

    def parameters(self) -> list[Any]:
        """All weights (row by row) then the biases, as a flat list."""
        flat = [v for row in self.weight for v in row]
        return flat + (list(self.bias) if self.bias is not None else [])

    def __call__(self, x: Sequence[Any]) -> list[Any]:
        """Apply the layer.

        Args:
            x: ``(in_features,)`` list of numbers, ``Var``s or ``Dual``s.

        Returns:
            ``(out_features,)`` list, of the same kind as the inputs and weights.
        """
        if isinstance(x, str | bytes) or not isinstance(x, Sequence):
            raise TypeError(msg("picograd.Linear", "x must be a list of scalars", type(x).__name__,
                                "Pass one sample as a list such as [1.0, 2.0, 3.0]."))
        if len(x) != self.in_features:
            raise ValueError(msg("picograd.Linear",
                                 f"x must have in_features={self.in_features} entries",
                                 str(len(x)), "Pass one sample of the right length."))
        for j, xi in enumerate(x):
            if isinstance(xi, int) and not isinstance(xi, bool):
                num("picograd.Linear", xi, f"x[{j}]")
            elif not (is_number(xi) or isinstance(xi, Var | Dual)):
                raise TypeError(msg("picograd.Linear", "x must hold numbers, Vars or Duals",
                                    f"{describe(xi)} at x[{j}]", "Pass Python floats."))
        out = []
        for i, row in enumerate(self.weight):
            acc: Any = self.bias[i] if self.bias is not None else 0.0
            for w, xi in zip(row, x):
                acc = acc + w * xi
            out.append(acc)
        return out

    def __repr__(self) -> str:
        return (
            f"Linear(in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None})"
        )


def _flatten(m: Linear) -> tuple[list[Any], Any]:
    return [m.weight, m.bias], (m.in_features, m.out_features)


def _flatten_with_keys(m: Linear) -> tuple[list[tuple[Any, Any]], Any]:
    keys = [_tc.GetAttrKey("weight"), _tc.GetAttrKey("bias")]
    return list(zip(keys, [m.weight, m.bias])), (m.in_features, m.out_features)


def _unflatten(children: Any, context: Any) -> Linear:
    out = Linear.__new__(Linear)
    out.in_features, out.out_features = context
    out.weight, out.bias = children
    return out


_tc.register_node(
    Linear,
    _flatten,
    _unflatten,
    serialized_type_name="ftx.picograd.Linear",
    flatten_with_keys_fn=_flatten_with_keys,
)
