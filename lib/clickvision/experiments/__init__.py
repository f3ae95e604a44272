"""Experiment functions: plain parameters in, tidy DataFrames out (one module per notebook family).

Submodules load on first use: ``cv.experiments.tour`` ...
"""
from .._lazy import submodule_getattr

__getattr__ = submodule_getattr(__name__)
