"""clickvision: a research workbook on clicks and collaborative signals for images.

One import in every notebook: ``import clickvision as cv``. Submodules load lazily
(``cv.metrics``, ``cv.train``, ``cv.data`` ...), so importing the package is cheap.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SUBMODULES = {
    "paths", "runtime", "params", "results", "plots", "io", "metrics", "train", "sweep",
    "data", "click", "models", "features", "workbook", "widgets", "losses", "experiments",
    "stats", "nbrun", "report", "retrieval", "cleaning", "fusion", "claims", "regression",
    "provenance", "book", "threads", "selection",
}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'clickvision' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _SUBMODULES)
