"""Experiment functions: plain parameters in, tidy DataFrames out (one module per notebook family).

Submodules load on first use: ``cv.experiments.tour`` ...
"""
import importlib


def __getattr__(name: str):
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"{__name__}.{name}":
            raise AttributeError(f"no experiment module {name!r}") from None
        raise
