"""Losses of the four papers, one module per concept (``cv.losses.mmd`` ...).

Submodules load on first use.
"""
import importlib


def __getattr__(name: str):
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"{__name__}.{name}":
            raise AttributeError(f"no loss module {name!r}") from None
        raise
