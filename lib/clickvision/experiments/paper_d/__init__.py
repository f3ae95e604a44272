"""Paper D (Collaborative Image Understanding): its experiment code.

Modules (loaded on first use): ``core``, ``cf``, ``data``, ``trunk``. ``core`` is the entry point the notebooks import
(``from clickvision.experiments.paper_d import core``).
"""
from ..._lazy import submodule_getattr

__getattr__ = submodule_getattr(__name__)
