"""Paper C (CHTN, cross-modal hybrid transfer network): its experiment code.

Modules (loaded on first use): ``core``, ``data``, ``views``. ``core`` is the entry point the notebooks import
(``from clickvision.experiments.paper_c import core``).
"""
from ..._lazy import submodule_getattr

__getattr__ = submodule_getattr(__name__)
