"""Clicks: Clickture-format logs, the SIMULATED click-log and interaction simulators, builders.

Submodules load on first use: ``cv.click.log``, ``cv.click.simulator``, ``cv.click.build`` ...
"""
import importlib


def __getattr__(name: str):
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"{__name__}.{name}":
            raise AttributeError(f"module 'clickvision.click' has no attribute {name!r}") from None
        raise
