"""Reverse mode: ``Var``, a scalar that records how it was computed.

Each ``Var`` keeps its value, its parent ``Var``s and the local derivative of
itself with respect to each parent (a number, computed in the forward pass).
:meth:`Var.grad` sorts the graph once, iteratively (no recursion), and sweeps
it once in reverse topological order: linear in the number of nodes and edges,
however much the graph shares subexpressions, and any depth works.
"""

from __future__ import annotations

from .._internal.errors import msg
from . import _ops as ops


def _type_error(op: str, left: object, right: object) -> TypeError:
    lt, rt = type(left).__name__, type(right).__name__
    hint = (
        "Do not mix reverse-mode Var and forward-mode Dual in one expression."
        if {lt, rt} == {"Var", "Dual"}
        else f"Convert the {rt if lt == 'Var' else lt} with float(...) or wrap it in Var(...)."
    )
    return TypeError(msg("picograd.Var", f"operands of {op} must be Var, int or float",
                         f"{lt} {op} {rt}", hint))


def _node(value: float, parents: tuple[Var, ...], partials: tuple[float, ...], op: str) -> Var:
    out = Var.__new__(Var)
    out.value = value
    out._parents = parents
    out._partials = partials
    out._op = op
    return out


class Var:
    """A scalar in a reverse-mode autodiff graph (linear-time gradients).

    Args:
        value: the number (``int`` or ``float``; stored as ``float``).

    Attributes:
        value: the float value.

    Example:
        >>> x, y = Var(1.0), Var(1.0)
        >>> f = x * x * x * y * x + y * y * y
        >>> g = f.grad()
        >>> f.value, g[x], g[y]
        (2.0, 4.0, 4.0)
        >>> f
        Var(2.0, op='add')
    """

    __slots__ = ("_op", "_parents", "_partials", "value")

    value: float
    _parents: tuple[Var, ...]
    _partials: tuple[float, ...]
    _op: str

    def __init__(self, value: float) -> None:
        if not ops.is_number(value):
            raise TypeError(msg(
                "picograd.Var", "value must be an int or a float",
                f"{type(value).__name__} {value!r:.40}",
                "Pass a Python number (use .item() on a one-element tensor).",
            ))
        self.value = ops.num("picograd.Var", value, "value")
        self._parents = ()
        self._partials = ()
        self._op = ""

    def __repr__(self) -> str:
        if self._op:
            return f"Var({self.value!r}, op={self._op!r})"
        return f"Var({self.value!r})"

    @property
    def is_leaf(self) -> bool:
        """True for a ``Var`` built by the user rather than by an operation."""
        return not self._op

    # -- arithmetic ---------------------------------------------------------------

    def __add__(self, other: Var | float) -> Var:
        if isinstance(other, Var):
            return _node(self.value + other.value, (self, other), (1.0, 1.0), "add")
        if ops.is_number(other):
            other = ops.num("picograd.Var", other)
            return _node(self.value + other, (self,), (1.0,), "add")
        raise _type_error("+", self, other)

    def __radd__(self, other: float) -> Var:
        if ops.is_number(other):
            other = ops.num("picograd.Var", other)
            return _node(other + self.value, (self,), (1.0,), "add")
        raise _type_error("+", other, self)

    def __sub__(self, other: Var | float) -> Var:
        if isinstance(other, Var):
            return _node(self.value - other.value, (self, other), (1.0, -1.0), "sub")
        if ops.is_number(other):
            other = ops.num("picograd.Var", other)
            return _node(self.value - other, (self,), (1.0,), "sub")
        raise _type_error("-", self, other)

    def __rsub__(self, other: float) -> Var:
        if ops.is_number(other):
            other = ops.num("picograd.Var", other)
            return _node(other - self.value, (self,), (-1.0,), "sub")
        raise _type_error("-", other, self)

    def __mul__(self, other: Var | float) -> Var:
        if isinstance(other, Var):
            return _node(
                self.value * other.value, (self, other), (other.value, self.value), "mul"
            )
        if ops.is_number(other):
            other = ops.num("picograd.Var", other)
            return _node(self.value * other, (self,), (float(other),), "mul")
        raise _type_error("*", self, other)

    def __rmul__(self, other: float) -> Var:
        if ops.is_number(other):
            other = ops.num("picograd.Var", other)
            return _node(other * self.value, (self,), (float(other),), "mul")
        raise _type_error("*", other, self)

    def __truediv__(self, other: Var | float) -> Var:
        if isinstance(other, Var):
            b = other.value
            y = ops.div(self.value, b)
            return _node(y, (self, other), (ops.div(1.0, b), -ops.div(y, b)), "div")
        if ops.is_number(other):
            other = ops.num("picograd.Var", other)
            return _node(ops.div(self.value, other), (self,), (ops.div(1.0, other),), "div")
        raise _type_error("/", self, other)

    def __rtruediv__(self, other: float) -> Var:
        if ops.is_number(other):
            other = ops.num("picograd.Var", other)
            b = self.value
            y = ops.div(other, b)
            return _node(y, (self,), (-ops.div(y, b),), "div")
        raise _type_error("/", other, self)

    def __pow__(self, other: Var | float) -> Var:
        if isinstance(other, Var):
            y = ops.pow_(self.value, other.value)
            da, db = ops.pow_partials(self.value, other.value, y)
            return _node(y, (self, other), (da, db), "pow")
        if ops.is_number(other):
            other = ops.num("picograd.Var", other)
            y = ops.pow_(self.value, other)
            da, _ = ops.pow_partials(self.value, other, y)
            return _node(y, (self,), (da,), "pow")
        raise _type_error("**", self, other)

    def __rpow__(self, other: float) -> Var:
        if ops.is_number(other):
            other = ops.num("picograd.Var", other)
            y = ops.pow_(other, self.value)
            _, db = ops.pow_partials(other, self.value, y)
            return _node(y, (self,), (db,), "pow")
        raise _type_error("**", other, self)

    def __neg__(self) -> Var:
        return _node(-self.value, (self,), (-1.0,), "neg")

    def __pos__(self) -> Var:
        return self

    # -- elementary functions -------------------------------------------------------

    def _unary(self, name: str) -> Var:
        f, df = ops.UNARY[name]
        y = f(self.value)
        return _node(y, (self,), (df(self.value, y),), name)

    def exp(self) -> Var:
        """``e ** self``."""
        return self._unary("exp")

    def log(self) -> Var:
        """Natural logarithm (``-inf`` at 0, ``nan`` below, as torch)."""
        return self._unary("log")

    def sqrt(self) -> Var:
        """Square root."""
        return self._unary("sqrt")

    def tanh(self) -> Var:
        """Hyperbolic tangent."""
        return self._unary("tanh")

    def sigmoid(self) -> Var:
        """Logistic function ``1 / (1 + e**-self)``."""
        return self._unary("sigmoid")

    def relu(self) -> Var:
        """``max(self, 0)``; the derivative at 0 is 0, as in torch."""
        return self._unary("relu")

    # -- reverse mode ---------------------------------------------------------------

    def topological_order(self) -> list[Var]:
        """Every ``Var`` this one depends on, itself last, each after all its parents.

        Iterative depth-first search: no recursion, so any depth works.
        """
        order: list[Var] = []
        visited: set[Var] = set()
        stack: list[tuple[Var, bool]] = [(self, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if node in visited:
                continue
            visited.add(node)
            stack.append((node, True))
            for parent in node._parents:
                if parent not in visited:
                    stack.append((parent, False))
        return order

    def grad(self, bp: float = 1.0) -> dict[Var, float]:
        """Adjoints of ``self`` with respect to every ``Var`` it depends on.

        One reverse sweep over :meth:`topological_order`. Nothing is stored on
        the nodes, so ``grad`` can be called again and again.

        Args:
            bp: the adjoint of ``self`` the sweep starts from (``d out / d self``; 1.0
                differentiates ``self`` itself).

        Returns:
            A dict ``{var: d self / d var}`` holding ``self`` and every ``Var``
            it was computed from (keys compare by identity).

        Example:
            >>> x = Var(3.0)
            >>> y = x * x
            >>> y.grad()[x]
            6.0
        """
        if not ops.is_number(bp):
            raise TypeError(msg("picograd.Var.grad", "bp must be an int or a float",
                                f"{type(bp).__name__} {bp!r:.40}",
                                "Pass the starting adjoint as a number (1.0)."))
        adjoint: dict[Var, float] = {self: ops.num("picograd.Var.grad", bp, "bp")}
        for node in reversed(self.topological_order()):
            g = adjoint[node]
            for parent, local in zip(node._parents, node._partials):
                adjoint[parent] = adjoint.get(parent, 0.0) + g * local
        return adjoint
