"""Paper B (click graph + CNN collaborative filtering for image retrieval): its experiment code.

Modules (loaded on first use): ``core``, ``figures``. ``core`` is the entry point the notebooks import
(``from clickvision.experiments.paper_b import core``).
"""
from ..._lazy import submodule_getattr

__getattr__ = submodule_getattr(__name__)
