"""Back ends: each turns one checked protocol into something that evaluates it.

`python` compiles to Python source run against `runtime`'s exports.
"""
