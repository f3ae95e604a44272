"""Lazy submodules for the package's ``__init__`` files (``cv.click.log`` loads on first use)."""
from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def submodule_getattr(package: str, aliases: Mapping[str, str] | None = None) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` for ``package``: ``name`` imports ``package.name``;
    ``aliases`` maps an attribute to the submodule that defines it (``load_emoji -> emoji``).
    A missing submodule is an AttributeError; an import error inside one propagates."""
    aliases = dict(aliases or {})

    def __getattr__(name: str) -> Any:
        if name in aliases:
            return getattr(importlib.import_module(f"{package}.{aliases[name]}"), name)
        try:
            return importlib.import_module(f"{package}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{package}.{name}":
                raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
            raise

    return __getattr__
