"""Paper A's recognisers, one name each, for the second-half grids (Table VIII, Fig. 13, Table IX, Fig. 14).

:func:`run_methods` trains each named method on a :class:`~.data.PaperAData` and
returns tidy rows ``method, seed, metric, value`` with ``acc_s`` / ``acc_t`` (test) and
``val_acc_s`` / ``val_acc_t``. The data may carry separate source and target label sets
(:func:`~.data.with_label_sets`, eq. 16): every softmax and every argmax then runs
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
* ``MTTDL`` -- eq. (14) (the count loss, tau = 0) on the source alone, then a target V + C recogniser
  on the frozen predictor.
* ``MTMDD-VM`` / ``MTMDD-VM*`` -- eq. (15) (eq. 16 with separate label sets) on both
  domains with an unshared / shared classifier, each at its own lambda and mu.

:func:`selected_settings` carries the settings forward from the validation selections that A.04
(tau, B, T), A.07 (lambda per variant) and A.08 (mu per variant) record in ``results/``, with a
``source`` for each value (the paper's value only where none was recorded, and then said so).

Everything runs on cached features with one torch thread (reproducible on any core count).
The remaining Table VIII baselines (DAN, DANN, SCDA, SF, VSE++) are in :mod:`.sota`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ... import paths, results, runtime
from .core import item_rows, tdl_run
from .data import PaperAData, torch_threads
from .joint import joint_run
from .train import ClickLossSpec, HeadConfig, JointSpec, history_labels, recognition_accuracy

VGG_METHODS = ("VGGimg", "VGGsrc")
CLICK_METHODS = ("TDL[7]", "TDL", "MTTDL", "MTMDD-VM", "MTMDD-VM*")
METHODS = VGG_METHODS + CLICK_METHODS


JOINT_VARIANTS = ("MTTDL", "MTMDD-VM", "MTMDD-VM*")  # the methods trained by eq. (14) / (15)
MU_VARIANTS = ("MTMDD-VM", "MTMDD-VM*")  # the two-domain ones: mu weighs their target softmax
#: The paper's values (IV-B: lambda = 0.4, mu = 0.1 for OURS, B = 0.01, T = 0.16, tau = 0.1; the authors' code
#: weighs OURS*'s target softmax 0.9), used where no validation selection was recorded -- and then said so.
PAPER_SETTINGS = {"lam": 0.4, "mu": {"MTMDD-VM": 0.1, "MTMDD-VM*": 0.9}, "tau": 0.1, "bandwidth": 0.01,
                  "threshold": 0.16}
#: Where each setting is selected on validation: experiment (results file stem), notebook, metric per variant.
SELECTIONS = {
    "tau": ("A.04-position-loss", "A.04-Position-Loss", "best_tau"),
    "bandwidth": ("A.04-position-loss", "A.04-Position-Loss", "best_B"),
    "threshold": ("A.04-position-loss", "A.04-Position-Loss", "best_T"),
    "lam": ("A.07-multitask", "A.07-Multitask", {v: f"best_lambda_{v}" for v in MU_VARIANTS}),
    "mu": ("A.08-multidomain", "A.08-Multidomain", {v: f"best_mu_{v}" for v in MU_VARIANTS}),
}
MTTDL_NOTE = "eq. (14): the count loss alone (tau = 0; B, T unused), as in A.08"


def _per_variant(name: str, value, variants: Sequence[str]) -> dict[str, float]:
    vals = dict(value) if isinstance(value, Mapping) else {v: value for v in variants}
    missing = [v for v in variants if v not in vals]
    if missing:
        raise ValueError(f"MethodSettings.{name}: no value for {missing} (got {sorted(vals)})")
    return {v: float(vals[v]) for v in variants}


@dataclass(frozen=True)
class MethodSettings:
    """The click-model settings: eq. (12)'s loss and eq. (15)'s weights, per variant.

    ``lam`` (one number, or variant -> value over :data:`JOINT_VARIANTS`) and ``mu`` (over
    :data:`MU_VARIANTS`) may differ per variant: the shared and unshared classifiers are
    selected separately on validation (A.07, A.08). ``click`` is the eq. (12) loss of TDL, SF and
    MTMDD-VM(*); MTTDL always uses eq. (14) (:data:`MTTDL_NOTE`). ``source`` says, per setting
    (``"mu[MTMDD-VM*]"``, ``"tau"`` ...), where its value comes from (:func:`selected_settings`).
    """

    lam: float | Mapping[str, float] = 0.4
    mu: float | Mapping[str, float] = 0.1
    click: ClickLossSpec = field(default_factory=lambda: ClickLossSpec(tau=0.1, bandwidth=0.01, threshold=0.16))
    source: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        lam = _per_variant("lam", self.lam, JOINT_VARIANTS)
        mu = _per_variant("mu", self.mu, MU_VARIANTS)
        bad = {**{f"lam[{k}]": v for k, v in lam.items() if not 0 <= v < 1},
               **{f"mu[{k}]": v for k, v in mu.items() if not v > 0}}
        c = self.click
        if not c.tau >= 0 or not c.bandwidth > 0 or not 0 < c.threshold < 0.5:
            bad["click"] = (c.tau, c.bandwidth, c.threshold)
        if bad:
            raise ValueError(f"MethodSettings: need 0 <= lambda < 1, mu > 0, tau >= 0, B > 0, 0 < T < 0.5; got {bad}")
        object.__setattr__(self, "lam", lam)
        object.__setattr__(self, "mu", mu)
        object.__setattr__(self, "source", dict(self.source))

    def joint(self, variant: str) -> JointSpec:
        """The eq. (14) / (15) spec of ``variant`` (one of :data:`JOINT_VARIANTS`) at its own lambda and mu."""
        if variant not in JOINT_VARIANTS:
            raise ValueError(f"variant must be one of {JOINT_VARIANTS}, got {variant!r}")
        if variant == "MTTDL":  # eq. (14): mu plays no role, the count loss alone
            return JointSpec(lam=self.lam[variant], mu=1.0, shared=False, two_domain=False,
                             click=ClickLossSpec(tau=0.0, bandwidth=self.click.bandwidth,
                                                 threshold=self.click.threshold, variant=self.click.variant))
        return JointSpec(lam=self.lam[variant], mu=self.mu[variant], click=self.click,
                         shared=variant == "MTMDD-VM*", two_domain=True)

    def table(self, methods: Sequence[str] = METHODS) -> pd.DataFrame:
        """One row per (method, setting) the registry's ``methods`` ran with: value and where it was selected."""
        c = self.click
        click = [("tau", c.tau), ("B", c.bandwidth), ("T", c.threshold)]
        src = {"tau": self.source.get("tau", "parameter"), "B": self.source.get("bandwidth", "parameter"),
               "T": self.source.get("threshold", "parameter")}
        rows = []
        for m in methods:
            if m in ("TDL", "SF"):
                rows += [(m, k, v, src[k]) for k, v in click]
            elif m == "TDL[7]":
                rows.append((m, "tau", 0.0, "eq. (2), the count loss (TDL [7])"))
            elif m == "MTTDL":
                rows += [(m, "lambda", self.lam[m], self.source.get(f"lam[{m}]", "parameter")),
                         (m, "tau", 0.0, MTTDL_NOTE)]
            elif m in MU_VARIANTS:
                rows += [(m, "lambda", self.lam[m], self.source.get(f"lam[{m}]", "parameter")),
                         (m, "mu", self.mu[m], self.source.get(f"mu[{m}]", "parameter"))]
                rows += [(m, k, v, src[k]) for k, v in click]
        return pd.DataFrame(rows, columns=["method", "setting", "value", "source"])


def selected_settings(profile: str = "default", *, results_dir: Path | None = None, **overrides) -> MethodSettings:
    """The settings A.10-A.13 run with, carried forward from the validation selections recorded by A.04
    (tau, B, T), A.07 (lambda per variant) and A.08 (mu per variant) in the results folder.

    Reads the latest run of ``profile`` in ``results/<experiment>.csv`` (else the latest default-profile
    run). Where no selection was recorded (an empty results folder: a smoke run, a fresh checkout running
    A.10 first) the paper's value (:data:`PAPER_SETTINGS`) is used and ``source`` says so. ``overrides``
    (``lam``, ``mu``, ``mu_shared``, ``tau``, ``bandwidth``, ``threshold``; ``None``: not overridden) replace
    the selections: ``lam`` for every variant, ``mu`` for MTMDD-VM, ``mu_shared`` for MTMDD-VM*.
    MTTDL's lambda is MTMDD-VM's (A.07 searched lambda for the two-domain models only; MTTDL shares the
    unshared model's loss structure). Malformed rows raise ValueError naming the file and metric.
    """
    known = {"lam", "mu", "mu_shared", "tau", "bandwidth", "threshold"}
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"selected_settings: unknown override(s) {sorted(unknown)}; known: {sorted(known)}")
    results_dir = Path(paths.RESULTS_DIR if results_dir is None else results_dir)
    values: dict[str, float] = {}
    source: dict[str, str] = {}
    for name, (experiment, notebook, metric) in SELECTIONS.items():
        rows, note = results.latest_run(experiment, profile, results_dir, who="selected_settings")
        path = results_dir / f"{experiment}.csv"
        for variant, key, met in ([(None, name, metric)] if isinstance(metric, str)
                                  else [(v, f"{name}[{v}]", m) for v, m in metric.items()]):
            paper = PAPER_SETTINGS[name]
            paper = paper[variant] if isinstance(paper, dict) else paper
            if len(rows) and (rows["metric"] == met).any():
                values[key] = results.run_value(rows, met, path, who="selected_settings")
                run = rows.iloc[0]
                source[key] = f"validation, {notebook} (results/{experiment}.csv run {run['run_id']}{note})"
            else:
                values[key] = paper
                source[key] = (f"paper's value: FALLBACK, no validation selection {met!r} in "
                               f"results/{experiment}.csv (not recorded by {notebook})")
    over = {k: v for k, v in overrides.items() if v is not None}
    for key, target in (("tau", ["tau"]), ("bandwidth", ["bandwidth"]), ("threshold", ["threshold"]),
                        ("lam", [f"lam[{v}]" for v in MU_VARIANTS]), ("mu", ["mu[MTMDD-VM]"]),
                        ("mu_shared", ["mu[MTMDD-VM*]"])):
        if key in over:
            for t in target:
                values[t] = float(over[key])
                source[t] = f"parameter {key} = {over[key]:g} (overrides the validation selection)"
    lam = {v: values[f"lam[{v}]"] for v in MU_VARIANTS}
    lam["MTTDL"] = lam["MTMDD-VM"]
    source["lam[MTTDL]"] = "MTMDD-VM's lambda (" + source["lam[MTMDD-VM]"] + ")"
    return MethodSettings(lam=lam, mu={v: values[f"mu[{v}]"] for v in MU_VARIANTS},
                          click=ClickLossSpec(tau=values["tau"], bandwidth=values["bandwidth"],
                                              threshold=values["threshold"]), source=source)


_OVERRIDE_RANGES = {"lam": ("0 <= lambda < 1", lambda v: 0 <= v < 1), "mu": ("mu > 0", lambda v: v > 0),
                    "mu_shared": ("mu > 0", lambda v: v > 0), "tau": ("tau >= 0", lambda v: v >= 0),
                    "bandwidth": ("B > 0", lambda v: v > 0), "threshold": ("0 < T < 0.5", lambda v: 0 < v < 0.5)}


def setting_overrides(**values: float) -> dict[str, float | None]:
    """A notebook's setting parameters as :func:`selected_settings` overrides: ``-1`` means "the validation
    selection" (``None``); any other value must be a valid setting (ValueError naming the parameter)."""
    out: dict[str, float | None] = {}
    for name, value in values.items():
        if name not in _OVERRIDE_RANGES:
            raise ValueError(f"unknown setting parameter {name!r}; known: {sorted(_OVERRIDE_RANGES)}")
        need, ok = _OVERRIDE_RANGES[name]
        if value != -1 and not ok(value):
            raise ValueError(f"parameter {name!r} must be -1 (selected on validation) or satisfy {need}, got {value!r}")
        out[name] = None if value == -1 else float(value)
    return out


def fallbacks(settings: MethodSettings) -> list[str]:
    """The settings that fell back on the paper's value (no validation selection found), for the notebook to say."""
    return [k for k, v in settings.source.items() if "FALLBACK" in v]


def _acc_rows(method: str, seed: int, dom: str, acc: dict, d=None) -> list[dict]:
    out = [{"method": method, "seed": seed, "metric": f"acc_{dom}", "value": float(acc["test"])},
           {"method": method, "seed": seed, "metric": f"val_acc_{dom}", "value": float(acc["val"])}]
    if d is not None:  # per test image (``correct_<dom>``, ``item``): the claims' scores
        out += item_rows(acc["test_correct"], d, dom, method=method, seed=seed)
    return out


def vgg_rows(data: PaperAData, cfg: HeadConfig, seed: int, which: Sequence[str] = VGG_METHODS) -> list[dict]:
    """VGGimg and / or VGGsrc (one source recogniser shared by both, as in the paper)."""
    n = len(data.classes)
    with history_labels(method="VGGimg / VGGsrc (source)", seed=seed):
        src = recognition_accuracy(data.source, cfg, None, True, seed, n, data.source_columns, keep=True)
    out = []
    if "VGGimg" in which:
        out += _acc_rows("VGGimg", seed, "s", src, data.source)
        with history_labels(method="VGGimg", seed=seed):
            tgt = recognition_accuracy(data.target, cfg, None, True, seed, n, data.target_columns)
        out += _acc_rows("VGGimg", seed, "t", tgt, data.target)
    if "VGGsrc" in which:
        out += _acc_rows("VGGsrc", seed, "s", src, data.source)
        with history_labels(method="VGGsrc", seed=seed):
            tgt = recognition_accuracy(data.target, cfg, None, True, seed, n, data.target_columns, init=src["head"])
        out += _acc_rows("VGGsrc", seed, "t", tgt, data.target)
    return out


def click_method_rows(method: str, data: PaperAData, cfg: HeadConfig, seed: int,
                      settings: MethodSettings = MethodSettings(), curves: list | None = None) -> list[dict]:
    """One click-based method's rows (``acc_*``, ``val_acc_*``, and ``rmse_s`` / ``rmse_s_caffe`` where it predicts
    clicks). ``curves``: a list each joint method's validation curve is appended to (``method`` and ``seed``
    columns; :func:`~.joint.validation_curve`)."""
    if method in ("TDL[7]", "TDL"):
        loss = ClickLossSpec(tau=0.0) if method == "TDL[7]" else settings.click
        rows, _ = tdl_run(data, cfg, loss, seed, "fc" if method == "TDL[7]" else None, ("V+C",))
        keep = [r for r in rows if r["representation"] == "V+C"
                or (r["representation"] == "click"
                    and r["metric"] in ("rmse_s", "val_rmse_s", "rmse_s_caffe", "val_rmse_s_caffe"))]
        return [{"method": method, "seed": seed, "metric": r["metric"], "value": r["value"],
                 **({"item": r["item"]} if "item" in r else {})} for r in keep]
    if method not in JOINT_VARIANTS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    sink = [] if curves is not None else None
    rows = joint_run(data, cfg, settings.joint(method), seed, curves=sink)
    if curves is not None:
        curves += [c.assign(method=method) for c in sink]
    return [{"method": method, **r} for r in rows]


def run_methods(methods: Sequence[str], data: PaperAData, cfg: HeadConfig, seeds: Sequence[int],
                settings: MethodSettings = MethodSettings(), curves: list | None = None, **labels) -> pd.DataFrame:
    """Every method x seed on ``data``: tidy ``method, seed, metric, value, item`` plus ``labels`` columns
    (``item``: the test image's key on the per-image ``correct_s`` / ``correct_t`` rows, else empty).
    ``curves``: a list the joint methods' validation curves are appended to (:func:`click_method_rows`)."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"methods {unknown} are not among {METHODS} (DAN, DANN, SCDA, SF, VSE++: paper_a.sota)")
    rows: list[dict] = []
    with torch_threads(1):
        for seed in runtime.progress(seeds, desc="methods: seeds"):
            vgg = [m for m in methods if m in VGG_METHODS]
            if vgg:
                rows += vgg_rows(data, cfg, seed, vgg)
            for m in methods:
                if m in CLICK_METHODS:
                    with history_labels(method=m, seed=seed):
                        rows += click_method_rows(m, data, cfg, seed, settings, curves)
    frame = pd.DataFrame(rows, columns=["method", "seed", "metric", "value", "item"])
    for key, value in labels.items():
        frame[key] = value
    return frame


def settings_note(settings: MethodSettings) -> str:
    """A short account of ``settings``: each value and the notebook that selected it, fallbacks named."""
    def where(key: str) -> str:
        src = settings.source.get(key, "parameter")
        for nb in ("A.04", "A.07", "A.08"):
            if src.startswith("validation, " + nb):
                return f"{nb} validation"
        return "paper's value, NO validation selection recorded" if "FALLBACK" in src else src.split(" (")[0]
    c = settings.click
    parts = [f"{v}: lambda {settings.lam[v]:g} ({where(f'lam[{v}]')}), mu {settings.mu[v]:g} ({where(f'mu[{v}]')})"
             for v in MU_VARIANTS]
    parts.append(f"tau {c.tau:g} ({where('tau')}), B {c.bandwidth:g} ({where('bandwidth')}), "
                 f"T {c.threshold:g} ({where('threshold')})")
    parts.append(f"MTTDL: lambda {settings.lam['MTTDL']:g}, {MTTDL_NOTE}")
    note = "settings -- " + "; ".join(parts)
    if fallbacks(settings):
        note += f"\nNOTE: no validation selection recorded for {fallbacks(settings)}: the paper's values are used"
    return note
