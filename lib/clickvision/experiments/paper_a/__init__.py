"""Paper A (MTMDD-VM, Click-Through-Based Subspace Learning for Image Recognition / visual-click
multi-task multi-domain learning): its experiment code, one module per concept.

Modules (loaded on first use): ``core``, ``claims``, ``cleaning``, ``clicks``, ``data``, ``floors``, ``grad``, ``joint``, ``methods``, ``reduced``, ``sota``, ``train``, ``trunk``, ``unseen``. ``core`` is the entry point the notebooks import
(``from clickvision.experiments.paper_a import core``).
"""
from ..._lazy import submodule_getattr

__getattr__ = submodule_getattr(__name__)
