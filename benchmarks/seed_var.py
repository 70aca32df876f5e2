"""A naive recursive scalar ``Var`` (the project's first autodiff sketch), the picograd baseline.

Its ``grad`` recurses into the inputs and merges dicts, so a graph with shared
subexpressions is walked once per path: ``y = y * y`` repeated d times costs
2^d calls, and deep graphs hit Python's recursion limit. ``ftx.picograd``
fixes both; ``benchmarks/cases/picograd.py`` measures the difference.
"""

# ruff: noqa
from functools import reduce


class Var:

    def __init__(self, val, grad_fn=lambda: []):  # grad_fn returns the partials w.r.t. each input
        self.v, self.grad_fn = val, grad_fn

    def __add__(self, other):
        # the partial of a sum with respect to each term is 1
        return Var(self.v + other.v, lambda: [(self, 1.0), (other, 1.0)])

    def __mul__(self, other):
        # the partial of a product with respect to one factor is the other factor
        return Var(self.v * other.v, lambda: [(self, other.v), (other, self.v)])

    def grad(self, bp=1.0):
        grads = [input.grad(bp=val * bp) for (input, val) in self.grad_fn()]
        merge = lambda a, b: {k: a.get(k, 0) + b.get(k, 0) for k in set(a) | set(b)}
        return reduce(merge, grads, {self: bp})
