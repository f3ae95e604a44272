"""Data sets: embedded builders (from Debian/npm packages) and loaders for the originals.

``python -m clickvision.data build`` builds every embedded set; see :mod:`.base` for the
objects loaders return.
"""
from .base import DataError, ImageSet, Interactions, MissingSourceError  # noqa: F401
