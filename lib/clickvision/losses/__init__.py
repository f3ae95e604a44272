"""Losses of the four papers, one module per concept (``cv.losses.mmd`` ...).

Submodules load on first use.
"""
from .._lazy import submodule_getattr

__getattr__ = submodule_getattr(__name__)
