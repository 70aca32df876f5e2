"""Private: the transforms re-exported by ``ftx`` (one concept per module).

``api`` (grad, value_and_grad, vjp, jvp, linearize, hvp), ``reverse`` and ``forward``
(their engines), ``vmap`` and ``vmap_axes``, ``jacobians``, ``custom``, ``checkpoint``,
``jit``, ``validate`` (checks shared by the transforms), ``fnargs`` (argument binding).
"""
