"""Private: what every subsystem shares.

``errors`` (the message form of DESIGN.md 1.5), ``torch_compat`` (every private torch
symbol, with version gates and fallbacks) and ``pytree`` (the one fast flattener).
"""
