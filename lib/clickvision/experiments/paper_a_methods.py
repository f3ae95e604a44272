"""Paper A's recognisers, one name each, for the second-half grids (Table VIII, Fig. 13, Table IX, Fig. 14).

:func:`run_methods` trains each named method on a :class:`~.paper_a_data.PaperAData` and
returns tidy rows ``method, seed, metric, value`` with ``acc_s`` / ``acc_t`` (test) and
``val_acc_s`` / ``val_acc_t``. The data may carry separate source and target label sets
(:func:`~.paper_a_data.with_label_sets`, eq. 16): every softmax and every argmax then runs
over its own domain's classes.

* ``VGGimg`` -- a recogniser on the pooled backbone vector (ImageNet weights, the paper's
  "ImageNet-initialised") trained on each domain alone: Acc-S from the source one, Acc-T
  from the target one.
* ``VGGsrc`` -- the same source recogniser, then a target recogniser *initialised from it*
  (trainable visual layer and classifier) and fine-tuned on the target; it shares Acc-S
  with VGGimg, as in the paper's Table VIII. With ``visual_hidden = 0`` only the classifier
  transfers.
* ``TDL[7]`` -- linear word embedding (FC) with the count loss (eq. 2), then V + C
  recognisers per domain on the frozen predictor.
* ``TDL`` -- the configured nonlinear embedding with the combined loss (eq. 12), then V + C.
* ``MTTDL`` -- eq. (14) on the source alone, then a target V + C recogniser on the frozen predictor.
* ``MTMDD-VM`` / ``MTMDD-VM*`` -- eq. (15) (eq. 16 with separate label sets) on both
  domains with an unshared / shared classifier.

Everything runs on cached features with one torch thread (reproducible on any core count).
The remaining Table VIII baselines (DAN, DANN, SCDA, SF, VSE++) are in :mod:`.paper_a_sota`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from .paper_a import item_rows, tdl_run
from .paper_a_data import PaperAData, torch_threads
from .paper_a_joint import joint_run
from .paper_a_train import ClickLossSpec, HeadConfig, JointSpec, recognition_accuracy

VGG_METHODS = ("VGGimg", "VGGsrc")
CLICK_METHODS = ("TDL[7]", "TDL", "MTTDL", "MTMDD-VM", "MTMDD-VM*")
METHODS = VGG_METHODS + CLICK_METHODS


@dataclass(frozen=True)
class MethodSettings:
    """The click-model settings every method shares: eq. (12) loss and the eq. (15) weights."""

    lam: float = 0.4
    mu: float = 0.1
    click: ClickLossSpec = field(default_factory=lambda: ClickLossSpec(tau=0.1, bandwidth=0.01, threshold=0.16))

    def joint(self, shared: bool, two_domain: bool = True) -> JointSpec:
        return JointSpec(lam=self.lam, mu=self.mu, click=self.click, shared=shared, two_domain=two_domain)


def _acc_rows(method: str, seed: int, dom: str, acc: dict, d=None) -> list[dict]:
    out = [{"method": method, "seed": seed, "metric": f"acc_{dom}", "value": float(acc["test"])},
           {"method": method, "seed": seed, "metric": f"val_acc_{dom}", "value": float(acc["val"])}]
    if d is not None:  # per test image (``correct_<dom>``, ``item``): the claims' scores
        out += item_rows(acc["test_correct"], d, dom, method=method, seed=seed)
    return out


def vgg_rows(data: PaperAData, cfg: HeadConfig, seed: int, which: Sequence[str] = VGG_METHODS) -> list[dict]:
    """VGGimg and / or VGGsrc (one source recogniser shared by both, as in the paper)."""
    n = len(data.classes)
    src = recognition_accuracy(data.source, cfg, None, True, seed, n, data.source_columns, keep=True)
    out = []
    if "VGGimg" in which:
        out += _acc_rows("VGGimg", seed, "s", src, data.source)
        tgt = recognition_accuracy(data.target, cfg, None, True, seed, n, data.target_columns)
        out += _acc_rows("VGGimg", seed, "t", tgt, data.target)
    if "VGGsrc" in which:
        out += _acc_rows("VGGsrc", seed, "s", src, data.source)
        tgt = recognition_accuracy(data.target, cfg, None, True, seed, n, data.target_columns, init=src["head"])
        out += _acc_rows("VGGsrc", seed, "t", tgt, data.target)
    return out


def click_method_rows(method: str, data: PaperAData, cfg: HeadConfig, seed: int,
                      settings: MethodSettings = MethodSettings()) -> list[dict]:
    """One click-based method's rows (``acc_*``, ``val_acc_*``, and ``rmse_s`` where it predicts clicks)."""
    if method in ("TDL[7]", "TDL"):
        loss = ClickLossSpec(tau=0.0) if method == "TDL[7]" else settings.click
        rows, _ = tdl_run(data, cfg, loss, seed, "fc" if method == "TDL[7]" else None, ("V+C",))
        keep = [r for r in rows if r["representation"] == "V+C"
                or (r["representation"] == "click" and r["metric"] in ("rmse_s", "val_rmse_s"))]
        return [{"method": method, "seed": seed, "metric": r["metric"], "value": r["value"],
                 **({"item": r["item"]} if "item" in r else {})} for r in keep]
    specs = {"MTTDL": settings.joint(False, two_domain=False), "MTMDD-VM": settings.joint(False),
             "MTMDD-VM*": settings.joint(True)}
    if method not in specs:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return [{"method": method, **r} for r in joint_run(data, cfg, specs[method], seed)]


def run_methods(methods: Sequence[str], data: PaperAData, cfg: HeadConfig, seeds: Sequence[int],
                settings: MethodSettings = MethodSettings(), **labels) -> pd.DataFrame:
    """Every method x seed on ``data``: tidy ``method, seed, metric, value, item`` plus ``labels`` columns
    (``item``: the test image's key on the per-image ``correct_s`` / ``correct_t`` rows, else empty)."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"methods {unknown} are not among {METHODS} (DAN, DANN, SCDA, SF, VSE++: paper_a_sota)")
    rows: list[dict] = []
    with torch_threads(1):
        for seed in seeds:
            vgg = [m for m in methods if m in VGG_METHODS]
            if vgg:
                rows += vgg_rows(data, cfg, seed, vgg)
            for m in methods:
                if m in CLICK_METHODS:
                    rows += click_method_rows(m, data, cfg, seed, settings)
    frame = pd.DataFrame(rows, columns=["method", "seed", "metric", "value", "item"])
    for key, value in labels.items():
        frame[key] = value
    return frame
