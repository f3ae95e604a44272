"""Clicks: Clickture-format logs, the SIMULATED click-log and interaction simulators, builders.

Submodules load on first use: ``cv.click.log``, ``cv.click.simulator``, ``cv.click.build`` ...
"""
from .._lazy import submodule_getattr

__getattr__ = submodule_getattr(__name__)
