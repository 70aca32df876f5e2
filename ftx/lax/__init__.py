"""``ftx.lax``: JAX's ``jax.lax`` control flow, composable with every ftx transform.

Contract: the functions below have ``jax.lax``'s signatures and semantics on pytrees
of tensors, and each composes with ``grad``, ``vjp``, ``jvp``, ``vmap``, ``jacfwd``,
``jacrev``, ``hessian`` (ftx's or ``torch.func``'s) and ``jit``:

* ``cond(pred, true_fun, false_fun, *operands)``, ``switch(index, branches, *operands)``:
  one branch runs for a concrete predicate; a predicate ``vmap`` batches runs every
  branch and selects lane by lane.
* ``while_loop(cond_fun, body_fun, init_val)``: batched predicates run until every lane
  is done (finished lanes frozen); forward mode only (reverse mode raises JAX's error).
* ``fori_loop(lower, upper, body_fun, init_val)``: a ``scan`` for static bounds
  (reverse-differentiable), a ``while_loop`` otherwise.
* ``scan(f, init, xs=None, length=None, reverse=False, unroll=1)``, ``map(f, xs)``:
  per-step residuals kept under reverse mode (wrap ``f`` in ``ftx.checkpoint`` to
  recompute them instead); under ``jit`` the loop runs outside the graph (a graph
  break), so the graph and the compile time do not grow with the length.
* ``stop_gradient(x)``: zero derivative under every transform.
* ``associative_scan(fn, elems, reverse=False, axis=0)``: parallel prefix scan
  (``O(log n)`` depth of ordinary tensor operations).

See docs/control_flow.md for what runs where and how it differs from JAX.
"""

from ._assoc import associative_scan as associative_scan
from ._cond import cond as cond
from ._cond import switch as switch
from ._loops import fori_loop as fori_loop
from ._loops import while_loop as while_loop
from ._scan import map as map
from ._scan import scan as scan
from ._stop import stop_gradient as stop_gradient

__all__ = [
    "associative_scan",
    "cond",
    "fori_loop",
    "map",
    "scan",
    "stop_gradient",
    "switch",
    "while_loop",
]
