"""Paper A's SGD arm (A.15): Table IV's B sweep and Fig. 12's mu sweep under the authors' solver beside Adam.

Every head of the workbook trains with Adam (lr 1e-3, weight decay 5e-4; :class:`~.train.HeadConfig`).
The authors trained with Caffe's SGD (momentum 0.9, weight decay 5e-4, base lr 0.001). Two of the
paper's findings look like SGD behaviour: the collapse of Table IV at B = 1e-4 (Acc 0.7 %, below
chance) and Fig. 12's "smaller mu is better" for the unshared MTMDD-VM, whose target classifier only
the target softmax trains, so mu scales that classifier's whole gradient: SGD's step scales with it,
while Adam divides each parameter's update by its own gradient scale and largely cancels it.

:func:`sgd_arm` runs, for each optimiser:

* the learning rate: Adam keeps lr 1e-3 (every head here); SGD's is chosen on the validation Acc-T
  (ties: Acc-S) of TDL at the paper's settings (B 0.01, T 0.16, tau 0.1), first seed, among
  :data:`SGD_LRS` (the authors' 0.001 and ten and a hundred times it), a winner confirmed on every
  seed before it is kept -- :func:`select_sgd_lr`;
* Table IV's B values at that lr, every seed, through :func:`~.core.loss_sweep` (A.04's function);
* Fig. 12's MTMDD-VM (unshared classifier, lambda 0.4) at each mu, every seed, through
  :func:`~.joint.joint_run`, the run :func:`~.joint.multidomain_sweep` makes for MTMDD-VM (each run
  seeds itself, so the rows are the same; the sweep's MTTDL and MTMDD-VM* runs are not needed here).

The rows are tidy, per test image where the metric allows (``correct_s`` / ``correct_t`` with
``item``), with an ``optimizer`` column; the claims are :func:`.claims.claims_sgd_arm`'s. Every fit is
labelled by model, optimiser and setting (:func:`~.train.history_labels`), so under a stop rule
(``HeadConfig.patience``) :func:`~.joint.stop_summary` shows where each optimiser's fits stopped.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from ... import runtime
from .core import loss_sweep, select_confirmed
from .data import PaperAData, torch_threads
from .joint import joint_run, model_name
from .train import ClickLossSpec, HeadConfig, JointSpec, history_labels, reuse_identical_fits

OPTIMIZERS = ("adam", "sgd")
SGD_LRS = (0.001, 0.01, 0.1)  # the authors' base lr first
AUTHORS_SGD = {"momentum": 0.9, "weight_decay": 5e-4, "lr": 0.001}  # the authors' Caffe solver
ADAM_LR = 1e-3  # every head of the workbook


@dataclass
class SGDArm:
    """What :func:`sgd_arm` returns: the lr search (``lr_rows``, SGD only), the B sweep (``b_rows``), the
    mu sweep (``mu_rows``), the lr each optimiser ran with (``lrs``) and whether SGD trained above
    ``trained_above`` (validation Acc-T at the chosen lr; ``sgd_trained``)."""

    lr_rows: pd.DataFrame
    b_rows: pd.DataFrame
    mu_rows: pd.DataFrame
    lrs: dict[str, float]
    sgd_trained: bool
    trained_above: float


def optimizer_config(cfg: HeadConfig, optimizer: str, lr: float | None = None) -> HeadConfig:
    """``cfg`` with ``optimizer`` ('adam' | 'sgd'); SGD takes the authors' momentum and weight decay.
    ``lr``: the learning rate (None: Adam's 1e-3, SGD's authors' 0.001)."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    if optimizer == "adam":
        return cfg.scaled(optimizer="adam", lr=ADAM_LR if lr is None else lr)
    return cfg.scaled(optimizer="sgd", momentum=AUTHORS_SGD["momentum"], weight_decay=AUTHORS_SGD["weight_decay"],
                      lr=AUTHORS_SGD["lr"] if lr is None else lr)


def paper_click(bandwidth: float = 0.01, threshold: float = 0.16, tau: float = 0.1) -> ClickLossSpec:
    """The click loss eq. (12) at the paper's final settings (B 0.01, T 0.16, tau 0.1)."""
    return ClickLossSpec(tau=tau, bandwidth=bandwidth, threshold=threshold)


def select_sgd_lr(data: PaperAData, cfg: HeadConfig, seed: int, lrs: Sequence[float] = SGD_LRS,
                  click: ClickLossSpec | None = None,
                  confirm_seeds: Sequence[int] | None = None) -> tuple[pd.DataFrame, float]:
    """TDL (:func:`~.core.loss_sweep`, one B) with SGD at each of ``lrs`` on one seed; returns the rows (an
    ``lr`` column) and the lr chosen on validation by the rule every paper-A setting uses
    (:func:`~.core.select_setting`): the authors' lr (or the grid value nearest it) is kept unless another
    beats it on the predicted click's per-image validation Acc-T by more than one standard error. A value
    chosen on that one seed is run on ``confirm_seeds`` too and the choice made again before it is kept
    (:func:`~.core.select_confirmed`; None: the one seed decides)."""
    if not lrs or min(lrs) <= 0:
        raise ValueError(f"lrs must be positive, got {list(lrs)}")
    click = click or paper_click()

    def run(lr: float, seeds: list[int]) -> pd.DataFrame:  # TDL at ``lr`` on ``seeds`` (loss_sweep labels each seed)
        with history_labels(method=f"TDL, sgd lr={float(lr):g} (lr search)"):
            r, _ = loss_sweep(data, optimizer_config(cfg, "sgd", float(lr)), {click.bandwidth: click}, seeds, "B",
                              val_items=True)
        return r.assign(lr=float(lr), optimizer="sgd")

    rows = pd.concat([run(lr, [seed]) for lr in lrs], ignore_index=True)
    sel, rows = select_confirmed(rows, "lr", AUTHORS_SGD["lr"], confirm_seeds or [seed], run)
    return rows, float(sel.value)


def b_sweep(data: PaperAData, cfg: HeadConfig, bandwidths: Sequence[float], seeds: Sequence[int],
            click: ClickLossSpec | None = None) -> pd.DataFrame:
    """Table IV's B values (tau, T of ``click``) with ``cfg``'s optimiser, every seed: tidy rows with ``B``."""
    click = click or paper_click()
    specs = {float(b): ClickLossSpec(tau=click.tau, bandwidth=float(b), threshold=click.threshold,
                                     variant=click.variant) for b in bandwidths}
    with history_labels(method=f"TDL, {cfg.optimizer} (B sweep)"):
        rows, _ = loss_sweep(data, cfg, specs, seeds, "B")
    return rows


def mu_sweep(data: PaperAData, cfg: HeadConfig, mus: Sequence[float], seeds: Sequence[int], lam: float = 0.4,
             click: ClickLossSpec | None = None, shared: bool = False) -> pd.DataFrame:
    """Fig. 12's MTMDD-VM (``shared``: MTMDD-VM*) at each mu, every seed: tidy rows with ``model`` and ``mu``
    (:func:`~.joint.joint_run`, as :func:`~.joint.multidomain_sweep` runs it)."""
    click = click or paper_click()
    rows = []
    with torch_threads(1):
        for seed in runtime.progress(seeds, desc="Fig. 12 mu sweep: seeds"):
            for mu in mus:
                spec = JointSpec(lam=lam, mu=float(mu), click=click, shared=shared)
                with history_labels(method=f"{model_name(shared, lam)}, {cfg.optimizer}, mu={float(mu):g}", seed=seed):
                    fit = joint_run(data, cfg, spec, seed)
                rows += [{**r, "model": model_name(shared, lam), "mu": float(mu)} for r in fit]
    return pd.DataFrame(rows)


def sgd_arm(data: PaperAData, tdl_cfg: HeadConfig, joint_cfg: HeadConfig, seeds: Sequence[int],
            bandwidths: Sequence[float] = (1e-4, 1e-2), mus: Sequence[float] = (0.1, 1.0),
            sgd_lrs: Sequence[float] = SGD_LRS, lam: float = 0.4, click: ClickLossSpec | None = None,
            trained_above: float | None = None, b_click: ClickLossSpec | None = None) -> SGDArm:
    """Adam and SGD side by side on Table IV's B sweep (TDL, ``tdl_cfg``) and Fig. 12's mu sweep (MTMDD-VM,
    ``joint_cfg``); see the module doc. SGD's lr is chosen once (:func:`select_sgd_lr`, first seed, TDL at
    ``click``'s settings) and used for both sweeps. ``trained_above``: the validation Acc-T SGD must exceed
    at its chosen lr to count as trained (default: twice chance, 2 / classes); if it does not, the sweeps
    still run and :func:`.claims.claims_sgd_arm` records SGD's claims untestable. ``b_click``: the tau and T
    of the B sweep (default ``click``'s; the paper printed Table IV at tau = T = 0.1, A.15 passes that)."""
    if not seeds:
        raise ValueError("sgd_arm needs at least one seed")
    click = click or paper_click()
    trained_above = 2.0 / len(data.classes) if trained_above is None else float(trained_above)
    b_rows, mu_rows = [], []
    with reuse_identical_fits():  # the lr search's run at the chosen lr is the B sweep's first-seed run
        lr_rows, sgd_lr = select_sgd_lr(data, tdl_cfg, seeds[0], sgd_lrs, click, confirm_seeds=seeds)
        lrs = {"adam": ADAM_LR, "sgd": sgd_lr}
        for opt in OPTIMIZERS:
            b_rows.append(b_sweep(data, optimizer_config(tdl_cfg, opt, lrs[opt]), bandwidths, seeds, b_click or click)
                          .assign(optimizer=opt, lr=lrs[opt]))
    for opt in OPTIMIZERS:
        mu_rows.append(mu_sweep(data, optimizer_config(joint_cfg, opt, lrs[opt]), mus, seeds, lam, click)
                       .assign(optimizer=opt, lr=lrs[opt]))
    val = lr_rows[(lr_rows["representation"] == "C") & (lr_rows["metric"] == "val_acc_t") & (lr_rows["lr"] == sgd_lr)]
    return SGDArm(lr_rows, pd.concat(b_rows, ignore_index=True), pd.concat(mu_rows, ignore_index=True), lrs,
                  bool(val["value"].mean() > trained_above), trained_above)
