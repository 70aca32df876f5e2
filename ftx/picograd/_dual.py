"""Forward mode: ``Dual``, a number paired with its tangent (a dual number ``a + b·ε``).

Arithmetic on dual numbers with ``ε² = 0`` carries the directional derivative
along with the value: ``(a + bε)(c + dε) = ac + (ad + bc)ε``. The local
derivatives come from the same table as reverse mode (``_picograd_ops``), so
the two modes cannot drift apart.
"""

from __future__ import annotations

from .._internal.errors import msg
from . import _ops as ops


def _type_error(op: str, left: object, right: object) -> TypeError:
    lt, rt = type(left).__name__, type(right).__name__
    hint = (
        "Do not mix reverse-mode Var and forward-mode Dual in one expression."
        if {lt, rt} == {"Var", "Dual"}
        else f"Convert the {rt if lt == 'Dual' else lt} with float(...) or wrap it in Dual(...)."
    )
    return TypeError(msg("picograd.Dual", f"operands of {op} must be Dual, int or float",
                         f"{lt} {op} {rt}", hint))


class Dual:
    """A dual number ``primal + tangent·ε`` for forward-mode differentiation.

    Args:
        primal: the value (``int`` or ``float``).
        tangent: its derivative along the chosen direction (default 0).

    Example:
        >>> x = Dual(3.0, 1.0)      # seed dx = 1
        >>> y = x * x + 2 * x
        >>> y
        Dual(15.0, tangent=8.0)
    """

    __slots__ = ("primal", "tangent")

    primal: float
    tangent: float

    def __init__(self, primal: float, tangent: float = 0.0) -> None:
        for name, v in (("primal", primal), ("tangent", tangent)):
            if not ops.is_number(v):
                raise TypeError(msg("picograd.Dual", f"{name} must be an int or a float",
                                    f"{type(v).__name__} {v!r:.40}", "Pass Python numbers."))
        self.primal = ops.num("picograd.Dual", primal, "primal")
        self.tangent = ops.num("picograd.Dual", tangent, "tangent")

    def __repr__(self) -> str:
        return f"Dual({self.primal!r}, tangent={self.tangent!r})"

    @staticmethod
    def _of(primal: float, tangent: float) -> Dual:
        out = Dual.__new__(Dual)
        out.primal = primal
        out.tangent = tangent
        return out

    def __add__(self, other: Dual | float) -> Dual:
        if isinstance(other, Dual):
            return Dual._of(self.primal + other.primal, self.tangent + other.tangent)
        if ops.is_number(other):
            other = ops.num("picograd.Dual", other)
            return Dual._of(self.primal + other, self.tangent)
        raise _type_error("+", self, other)

    def __radd__(self, other: float) -> Dual:
        if ops.is_number(other):
            other = ops.num("picograd.Dual", other)
            return Dual._of(other + self.primal, self.tangent)
        raise _type_error("+", other, self)

    def __sub__(self, other: Dual | float) -> Dual:
        if isinstance(other, Dual):
            return Dual._of(self.primal - other.primal, self.tangent - other.tangent)
        if ops.is_number(other):
            other = ops.num("picograd.Dual", other)
            return Dual._of(self.primal - other, self.tangent)
        raise _type_error("-", self, other)

    def __rsub__(self, other: float) -> Dual:
        if ops.is_number(other):
            other = ops.num("picograd.Dual", other)
            return Dual._of(other - self.primal, -self.tangent)
        raise _type_error("-", other, self)

    def __mul__(self, other: Dual | float) -> Dual:
        if isinstance(other, Dual):
            return Dual._of(
                self.primal * other.primal,
                self.tangent * other.primal + self.primal * other.tangent,
            )
        if ops.is_number(other):
            other = ops.num("picograd.Dual", other)
            return Dual._of(self.primal * other, self.tangent * other)
        raise _type_error("*", self, other)

    def __rmul__(self, other: float) -> Dual:
        if ops.is_number(other):
            other = ops.num("picograd.Dual", other)
            return Dual._of(other * self.primal, other * self.tangent)
        raise _type_error("*", other, self)

    def __truediv__(self, other: Dual | float) -> Dual:
        if isinstance(other, Dual):
            b = other.primal
            y = ops.div(self.primal, b)
            return Dual._of(
                y, ops.div(1.0, b) * self.tangent - ops.div(y, b) * other.tangent
            )
        if ops.is_number(other):
            other = ops.num("picograd.Dual", other)
            return Dual._of(ops.div(self.primal, other), ops.div(1.0, other) * self.tangent)
        raise _type_error("/", self, other)

    def __rtruediv__(self, other: float) -> Dual:
        if ops.is_number(other):
            other = ops.num("picograd.Dual", other)
            y = ops.div(other, self.primal)
            return Dual._of(y, -ops.div(y, self.primal) * self.tangent)
        raise _type_error("/", other, self)

    def __pow__(self, other: Dual | float) -> Dual:
        if isinstance(other, Dual):
            y = ops.pow_(self.primal, other.primal)
            da, db = ops.pow_partials(self.primal, other.primal, y)
            return Dual._of(y, da * self.tangent + db * other.tangent)
        if ops.is_number(other):
            other = ops.num("picograd.Dual", other)
            y = ops.pow_(self.primal, other)
            da, _ = ops.pow_partials(self.primal, other, y)
            return Dual._of(y, da * self.tangent)
        raise _type_error("**", self, other)

    def __rpow__(self, other: float) -> Dual:
        if ops.is_number(other):
            other = ops.num("picograd.Dual", other)
            y = ops.pow_(other, self.primal)
            _, db = ops.pow_partials(other, self.primal, y)
            return Dual._of(y, db * self.tangent)
        raise _type_error("**", other, self)

    def __neg__(self) -> Dual:
        return Dual._of(-self.primal, -self.tangent)

    def __pos__(self) -> Dual:
        return self

    def _unary(self, name: str) -> Dual:
        f, df = ops.UNARY[name]
        y = f(self.primal)
        return Dual._of(y, df(self.primal, y) * self.tangent)

    def exp(self) -> Dual:
        """``e ** self``."""
        return self._unary("exp")

    def log(self) -> Dual:
        """Natural logarithm."""
        return self._unary("log")

    def sqrt(self) -> Dual:
        """Square root."""
        return self._unary("sqrt")

    def tanh(self) -> Dual:
        """Hyperbolic tangent."""
        return self._unary("tanh")

    def sigmoid(self) -> Dual:
        """Logistic function."""
        return self._unary("sigmoid")

    def relu(self) -> Dual:
        """``max(self, 0)``."""
        return self._unary("relu")
