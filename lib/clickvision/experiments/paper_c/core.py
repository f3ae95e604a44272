"""Paper C (CHTN, IJCAI 2017): CHTN training, Tables 1 and 2 and their claims.

Every network (CHTN, its ablations and controls, the deep baselines) is trained by the one
:class:`~clickvision.models.crossmodal_deep.StopRule` (until the validation MAP stops
improving) and gets the same small validation search (:func:`tune`): dropout in
:data:`DROPOUTS`, and for the CHTN family the pair-loss weight in :data:`PAIR_WEIGHTS`, each kept at
:data:`REFERENCE` unless another value beats it on validation by more than one standard error.
Scores are kept per query (the AP of every test image querying the texts and of every
text querying the images, :func:`query_ap`), so the claims are judged by
:class:`clickvision.claims.Ledger` over seeds x queries (:func:`table_claims`,
:func:`ablation_claims`).

The data (targets, sources, features) live in :mod:`.data`, the retrieval views
(top-k tables, typed queries, figures) in :mod:`.views`; both are re-exported here,
so a notebook needs one import: ``from clickvision.experiments.paper_c import core as pc``.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch

from ... import metrics, runtime
from ...claims import Claim, judge
from ...models.chtn import CHTN, VARIANTS, CHTNLoss, calibrate_pair_weight
from ...models.crossmodal_baselines import BASELINES, SEEDED, make_baseline  # noqa: F401  (BASELINES re-exported for C.03)
from ...models.crossmodal_deep import StopRule, TensorBatches, fit_to_convergence
from ...runtime import parallel_map
from ...selection import nearest, select_robust
from ...threads import limited
from .data import (  # noqa: F401
    CLIPART_TOPICS,
    DEFAULT_SOURCE,
    PAPER_SIZES,
    TARGETS,
    CrossModalData,
    image_features,
    load_source,
    load_target,
    prepare_data,
)
from .views import (  # noqa: F401
    plot_examples,
    plot_image_query,
    plot_text_query,
    plot_val_curves,
    rank,
    retrieval_table,
    text_query,
)

_T1 = {  # paper Table 1, (Img->Txt, Txt->Img, average) per data set
    "CCA": [(.176, .178, .177), (.159, .189, .174), (.110, .116, .113)],
    "CFA": [(.330, .306, .318), (.299, .301, .300), (.341, .308, .325)],
    "KCCA (Poly)": [(.230, .224, .227), (.129, .157, .143), (.271, .280, .276)],
    "KCCA (Gaussian)": [(.357, .328, .343), (.295, .162, .229), (.312, .329, .321)],
    "Bimodal AE": [(.301, .267, .284), (.234, .376, .305), (.404, .447, .426)],
    "Multimodal DBN": [(.204, .145, .175), (.178, .144, .161), (.438, .363, .401)],
    "Corr-AE": [(.373, .357, .365), (.306, .340, .323), (.411, .475, .443)],
    "JRL": [(.408, .353, .381), (.410, .444, .427), (.416, .377, .397)],
    "LGCFL": [(.416, .360, .388), (.408, .374, .391), (.381, .435, .408)],
    "CMDN": [(.409, .364, .387), (.410, .450, .430), (.458, .444, .451)],
    "Deep-SM": [(.458, .345, .402), (.389, .496, .443), (.440, .414, .427)],
    "CHTN": [(.508, .432, .470), (.518, .516, .517), (.467, .477, .472)],
    "OnlyCross": [(.465, .407, .436), (.360, .406, .383), (.433, .443, .438)],
    "NoShare": [(.483, .422, .453), (.488, .442, .465), (.446, .467, .457)],
    "NoSrcSp": [(.489, .415, .452), (.487, .495, .491), (.435, .457, .446)],
}
PAPER_MAP = pd.DataFrame([(m, d, *v) for m, rows in _T1.items()
                          for d, v in zip(("Wikipedia", "NUS-WIDE-10k", "Pascal Sentences"), rows)],
                         columns=["method", "data set", "img2txt", "txt2img", "average"])
LEFT_OUT = {"Multimodal DBN": "stacked RBMs (Gaussian and replicated-softmax) trained by contrastive divergence: "
                              "not small, and a stand-in would be our own design, not the method",
            "CMDN": "two-stage hierarchy of four separately pre-trained networks (stacked AEs + multimodal DBN) "
                    "feeding a stacked network: not small"}


# ------------------------------------------------------------------------------- training
SOLVERS = {  # name -> TrainConfig fields
    "adam": {"optimizer": "adam", "lr": 1e-3},  # every network of this notebook family
    # the authors' solver: SGD lr 0.01, momentum 0.9, weight decay 5e-4, 16 batches of 64 per step
    "paper": {"optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4, "accumulate": 16},
}
AUTHORS = {"solver": "paper", "kernel_num": 1}  # the authors' configuration (prototxt): one Gaussian kernel
STOP_RULES = {  # profile -> the one training-length rule of every network
    "smoke": StopRule(max_steps=30, eval_every=5, patience=2, min_delta=0.0, min_steps=10),
    "default": StopRule(max_steps=1500, eval_every=25, patience=4, min_delta=0.002, min_steps=200),
    "paper": StopRule(max_steps=10000, eval_every=100, patience=5, min_delta=0.001, min_steps=1000),
}
DROPOUTS = (0.0, 0.2, 0.5)  # the validation search of every network
PAIR_WEIGHTS = (0.001, 0.01, 0.1)  # the pair-loss weights searched (with CHTN) on validation
#: The references of the validation search (:func:`select_run`): kept unless another setting beats them
#: by more than one standard error. The pair-loss weight is the paper's (section 4.1: 0.001); the paper
#: states no dropout, so every network (CHTN and the deep baselines alike) gets the conventional 0.5.
REFERENCE = {"pair_weight": 0.001, "dropout": 0.5}
NETWORKS = ("Bimodal AE", "Corr-AE", "Deep-SM")  # the deep baselines (hidden, dropout, stop rule)
DIRECTIONS = ("img2txt", "txt2img")


@dataclass
class CHTNRun:
    """One trained network (CHTN variant or baseline): test MAP, per-query AP, stop record."""

    model: object  # the CHTN (or the fitted baseline)
    history: pd.DataFrame
    pair_weight: float
    scores: dict[str, float]
    image_repr: np.ndarray  # test images' representations (CHTN: probability vectors)
    text_repr: np.ndarray
    ap: pd.DataFrame = field(default_factory=pd.DataFrame)  # direction, query, value (test AP)
    stop: dict = field(default_factory=dict)  # stop_step, best_step, best_val, capped
    settings: dict = field(default_factory=dict)  # dropout, pair_weight, ...
    val_ap: pd.DataFrame = field(default_factory=pd.DataFrame)  # direction, query, value (validation AP, kept weights)


def _t(a: np.ndarray, dtype=torch.float32) -> torch.Tensor:
    return torch.tensor(np.asarray(a), dtype=dtype)  # a copy: cached arrays may be read-only


def _loaders(data: CrossModalData, batch_size: int, with_source: bool) -> dict:
    x, t, y = data.view("train")
    out = {"target": TensorBatches(_t(x), _t(t), _t(y, torch.long), batch_size=batch_size)}
    if with_source:
        out["source"] = TensorBatches(_t(data.source_image), _t(data.source_labels, torch.long),
                                      batch_size=batch_size)
    return out


def calibrate(data: CrossModalData, hidden: int = 256, dropout: float = 0.5, batch_size: int = 64,
              kernel_num: int = 5) -> float:
    """Pair-loss weight for this data (:func:`~clickvision.models.chtn.calibrate_pair_weight`),
    measured once with the full CHTN at seed 0 on the first training batches."""
    runtime.seed_everything(0)
    model = CHTN(data.image["train"].shape[1], data.text["train"].shape[1], len(data.classes),
                 len(data.source_classes), hidden=hidden, dropout=dropout)
    batch = {k: next(iter(v)) for k, v in _loaders(data, batch_size, True).items()}
    with limited():
        return calibrate_pair_weight(model, batch, CHTNLoss(kernel_num=kernel_num))


def represent(model: CHTN, data: CrossModalData, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """Each modality's softmax probability vectors for ``split``."""
    return (model.represent(_t(data.image[split]), "image").numpy(),
            model.represent(_t(data.text[split]), "text").numpy())


def query_ap(image_repr: np.ndarray, text_repr: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """Per-query AP of both directions (eq. 8): ``direction, query, value``; the MAP of a
    direction is the mean of its rows, the average MAP the mean of all rows (both directions
    have one query per test pair)."""
    parts = []
    for direction, (q, g) in zip(DIRECTIONS, ((image_repr, text_repr), (text_repr, image_repr))):
        r = metrics.retrieval_map(q, g, labels, labels, return_per_query=True)
        parts.append(pd.DataFrame({"direction": direction, "query": np.arange(len(labels)), "value": r.values}))
    return pd.concat(parts, ignore_index=True)


def _rule(rule: StopRule | None, steps: int | None) -> StopRule:
    rule = rule or STOP_RULES["default"]
    return rule if steps is None else replace(rule, max_steps=steps, min_steps=min(rule.min_steps, steps))


def train_chtn(data: CrossModalData, variant: str = "CHTN", seed: int = 0, rule: StopRule | None = None,
               steps: int | None = None, hidden: int = 256, dropout: float = 0.5, solver: str = "adam",
               batch_size: int = 64, pair_weight: float | None = None, kernel_num: int = 5) -> CHTNRun:
    """Train one CHTN variant by ``rule`` (default :data:`STOP_RULES` ``"default"``; ``steps``
    replaces its cap): batches of ``batch_size`` target pairs (and as many source images),
    stopped when the validation average MAP stops improving, best weights restored.
    ``solver``: a key of :data:`SOLVERS` ("paper": the authors' SGD with 16 batches
    accumulated per step; the rule then counts the same number of batches)."""
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {list(SOLVERS)}, got {solver!r}")
    if pair_weight is None:
        pair_weight = calibrate(data, hidden, dropout, batch_size, kernel_num)
    fields = dict(SOLVERS[solver])
    rule = _rule(rule, steps).for_accumulation(fields.get("accumulate", 1))
    runtime.seed_everything(seed)
    model = CHTN(data.image["train"].shape[1], data.text["train"].shape[1], len(data.classes),
                 len(data.source_classes), hidden=hidden, dropout=dropout, variant=variant)

    def val_fn(m):  # noqa: ANN001 - Trainer hook
        v = metrics.cross_modal_map(*represent(m, data, "val"), data.labels["val"])
        return {"val_map": v["average"], "val_img2txt": v["img2txt"], "val_txt2img": v["txt2img"]}
    loss = CHTNLoss(pair_weight=pair_weight, kernel_num=kernel_num)
    with limited():
        history, stop = fit_to_convergence(model, loss, _loaders(data, batch_size, model.flags.source_pathway),
                                           val_fn if len(data.labels["val"]) else None, rule, seed, **fields)
        ri, rt = represent(model, data)
        val_ap = query_ap(*represent(model, data, "val"), data.labels["val"]) if len(data.labels["val"]) else None
    stop["batches"] = stop["stop_step"] * fields.get("accumulate", 1)
    return CHTNRun(model, history, pair_weight, metrics.cross_modal_map(ri, rt, data.labels["test"]), ri, rt,
                   query_ap(ri, rt, data.labels["test"]), stop,
                   {"dropout": dropout, "pair_weight": pair_weight, "kernel_num": kernel_num, "solver": solver},
                   pd.DataFrame() if val_ap is None else val_ap)


def run_baseline(name: str, data: CrossModalData, seed: int = 0, rule: StopRule | None = None, **kw) -> CHTNRun:
    """Fit one Table 1 method on the training pairs (the networks stop by ``rule`` on the
    validation MAP) -> its test scores. ``kw`` go to the method (``hidden``, ``dropout`` ...)."""
    if name in NETWORKS:
        kw = {"rule": rule or STOP_RULES["default"], **kw}
    with limited():
        method = make_baseline(name, seed=seed, **kw).fit(*data.view("train"), val=data.view("val"))
        ri, rt = method.transform(data.image["test"], data.text["test"])
        val_ap = (query_ap(*method.transform(data.image["val"], data.text["val"]), data.labels["val"])
                  if name in NETWORKS and len(data.labels["val"]) else pd.DataFrame())
    stop = dict(getattr(method, "stop_", {}))
    if stop:
        stop["batches"] = stop["stop_step"]
    return CHTNRun(method, getattr(method, "history_", pd.DataFrame()), math.nan,
                   metrics.cross_modal_map(ri, rt, data.labels["test"]), ri, rt,
                   query_ap(ri, rt, data.labels["test"]), stop, {k: v for k, v in kw.items() if k == "dropout"}, val_ap)


def _fit(method: str, data: CrossModalData, seed: int, rule: StopRule, hidden: int, solver: str, kernel_num: int,
         **settings) -> CHTNRun:
    """One run of ``method`` (a CHTN variant, a deep baseline with ``settings``, or a method
    without a network) - a module-level function so :func:`~clickvision.runtime.parallel_map`
    can send it to a worker process."""
    if method in VARIANTS:
        return train_chtn(data, method, seed, rule, hidden=hidden, solver=solver, kernel_num=kernel_num, **settings)
    if method in NETWORKS:
        return run_baseline(method, data, seed, rule, hidden=hidden, **settings)
    return run_baseline(method, data, seed)


def reference_index(grid: Sequence[dict], reference: Mapping | None = None) -> int:
    """The grid entry the search keeps unless beaten: for each setting in turn (the grid's key order) the
    value nearest :data:`REFERENCE`'s (``reference`` updates it) among the entries still in play; the
    first entry left. Settings without a reference are left free (0 for an empty grid)."""
    reference = {**REFERENCE, **(reference or {})}
    cand = list(range(len(grid)))
    for k in (grid[0] if grid else {}):
        if k in reference:
            v = nearest(sorted({grid[i][k] for i in cand}), reference[k])
            cand = [i for i in cand if grid[i][k] == v]
    return cand[0] if cand else 0


def select_run(grid: Sequence[dict], runs: Sequence[CHTNRun], reference: int = 0, z: float = 1.0
               ) -> tuple[int, pd.DataFrame]:
    """The search's choice among finished runs of ``grid``: the run at ``reference`` (:func:`reference_index`)
    is kept unless another beats it on validation by more than ``z`` standard errors of the paired
    per-query difference in AP (both directions' queries, the restored weights' ``val_ap``;
    :func:`clickvision.selection.select_robust`). The plain best validation MAP it replaces flipped
    CHTN's pair weight between 0.001 and 0.01 on a 0.006 MAP gap between two draws of the same code.
    Returns the index and the search table (settings, val_map, stop_step, capped, mean_diff, se,
    reference, chosen). Runs without validation rows (methods without a network): the reference."""
    vals = [r.stop.get("best_val", math.nan) for r in runs]
    table = pd.DataFrame([{**g, "val_map": v, "stop_step": r.stop.get("stop_step"), "capped": r.stop.get("capped")}
                          for g, r, v in zip(grid, runs, vals)])
    rows = [r.val_ap.assign(setting=i, seed=0, metric="val_ap",
                            item=r.val_ap["direction"] + ":" + r.val_ap["query"].astype(str))
            for i, r in enumerate(runs) if len(getattr(r, "val_ap", ()))]
    best, table["mean_diff"], table["se"] = reference, math.nan, math.nan
    if len(runs) > 1 and len(rows) == len(runs):
        sel = select_robust(pd.concat(rows, ignore_index=True), "setting", reference, "val_ap", z=z)
        best = int(sel.value)
        table["mean_diff"], table["se"] = sel.table["mean_diff"].to_numpy(), sel.table["se"].to_numpy()
    table["reference"] = table.index == reference
    table["chosen"] = table.index == best
    return best, table


def tune(train: Callable[..., CHTNRun], grid: Sequence[dict], seed: int = 0) -> tuple[CHTNRun, pd.DataFrame]:
    """Train ``train(seed=seed, **settings)`` for every settings dict of ``grid``; keep the reference
    (:func:`reference_index`) unless another beats it on validation (:func:`select_run`).
    Returns that run and the search table (:func:`select_run`'s)."""
    if not grid:
        raise ValueError("tune: empty grid")
    runs = [train(seed=seed, **g) for g in grid]
    best, table = select_run(grid, runs, reference_index(grid))
    return runs[best], table


@dataclass
class Trial:
    """Every method on every target and seed, after the validation search.

    ``runs``: one row per (target, method, seed): test MAP both ways and average, the chosen
    settings, the stop record. ``scores``: per-query test AP (``target, method, seed,
    direction, query, value``). ``search``: every search run (target, method, settings,
    val_map, stop_step, capped, chosen). ``histories``: (target, method, seed) -> History.
    """

    runs: pd.DataFrame
    scores: pd.DataFrame
    search: pd.DataFrame
    histories: dict


def run_trial(datasets: dict[str, CrossModalData], seeds: Sequence[int], methods: Sequence[str],
              rule: StopRule | None = None, hidden: int = 128, dropouts: Sequence[float] = DROPOUTS,
              pair_weights: Sequence[float] = PAIR_WEIGHTS, solver: str = "adam", kernel_num: int = 5,
              log: Callable[[str], None] | None = None, n_workers: int | None = None) -> Trial:
    """Run ``methods`` (Table 1 names and CHTN variants) on every target and seed.

    Search (seed ``seeds[0]``, on validation by :func:`select_run`: the :data:`REFERENCE` setting is kept
    unless another beats it by more than one SE per validation query): CHTN first picks the pair-loss weight among
    ``pair_weights`` at dropout ``max(dropouts)``, then its dropout; every other CHTN variant
    uses CHTN's pair-loss weight and picks its dropout; every deep baseline picks its
    dropout. The search run of the chosen settings is the seed-``seeds[0]`` run; the other
    seeds are trained with the chosen settings. Methods without a network run as before
    (deterministic ones once, their row repeated for every seed).

    The runs are independent and each is seeded and single-threaded, so they go to
    ``n_workers`` processes (:func:`~clickvision.runtime.parallel_map`; default: the CPUs,
    or ``CLICKVISION_WORKERS``) in three waves - the searches that need nothing, the
    searches that need CHTN's pair weight, the other seeds - with the numbers of a serial run.
    """
    rule = rule or STOP_RULES["default"]
    seeds, s0 = list(seeds), list(seeds)[0]
    methods = list(dict.fromkeys(methods))
    family = [m for m in methods if m in VARIANTS]
    order = (["CHTN"] if family else []) + [m for m in methods if m != "CHTN" or not family]
    top = max(dropouts)
    common = {"rule": rule, "hidden": hidden, "solver": solver, "kernel_num": kernel_num}
    runs, scores, search, hist = [], [], [], {}

    def wave(tasks: list[tuple[str, str, int, dict]], desc: str) -> dict:
        """(target, method, seed, settings) -> run, all of ``tasks`` at once."""
        out = parallel_map(_fit, [{"method": m, "data": datasets[t], "seed": s, **common, **g}
                                  for t, m, s, g in tasks], n_workers, desc=desc)
        return {key(t, m, s, g): r for (t, m, s, g), r in zip(tasks, out)}

    def key(t: str, m: str, s: int, g: dict) -> tuple:
        return t, m, s, tuple(sorted(g.items()))

    # wave 1: CHTN's pair-weight search, the deep baselines' dropout searches, the methods without a network
    grids: dict[tuple[str, str], list[dict]] = {}
    for t in datasets:
        for m in order:
            if m == "CHTN" and family:
                grids[t, m] = [{"dropout": top, "pair_weight": p} for p in pair_weights]
            elif m in NETWORKS:
                grids[t, m] = [{"dropout": d} for d in dropouts]
            elif m not in VARIANTS:
                grids[t, m] = [{}]
    done = wave([(t, m, s0, g) for (t, m), gs in grids.items() for g in gs], "validation searches")
    # wave 2: CHTN's dropouts at its chosen weight, every other variant's dropouts at that weight
    weight, first = {}, {}
    for t in datasets:
        if family:
            grid = grids[t, "CHTN"]
            i, table = select_run(grid, [done[key(t, "CHTN", s0, g)] for g in grid], reference_index(grid))
            weight[t], first[t] = grid[i]["pair_weight"], (grid[i], table)
            grids[t, "CHTN rest"] = [{"dropout": d, "pair_weight": weight[t]} for d in dropouts if d != top]
            for m in order:
                if m in VARIANTS and m != "CHTN":
                    grids[t, m] = [{"dropout": d, "pair_weight": weight[t]} for d in dropouts]
    done |= wave([(t, "CHTN" if m == "CHTN rest" else m, s0, g) for (t, m), gs in grids.items()
                  if m == "CHTN rest" or (m in VARIANTS and m != "CHTN") for g in gs], "searches at CHTN's pair weight")
    # the choices (the order of the serial search: CHTN's weight first, then its dropout)
    chosen: dict[tuple[str, str], tuple[dict, CHTNRun, pd.DataFrame | None]] = {}
    for t in datasets:
        for m in order:
            if m == "CHTN" and family:
                g1, t1 = first[t]
                rest = grids[t, "CHTN rest"]
                best, table = g1, t1.assign(stage=1)
                if rest:  # stage 2: its dropout at that weight, the stage-1 run (dropout top) among them
                    full = [g1, *rest]
                    j, t2 = select_run(full, [done[key(t, "CHTN", s0, g)] for g in full], reference_index(full))
                    best = full[j]
                    table = pd.concat([table, t2.iloc[1:].assign(stage=2)], ignore_index=True)
                table["chosen"] = [(r.dropout, r.pair_weight) == (best["dropout"], weight[t])
                                   for r in table.itertuples()]
                chosen[t, m] = ({"dropout": best["dropout"], "pair_weight": weight[t]},
                                done[key(t, m, s0, best)], table)
            elif m in VARIANTS or m in NETWORKS:
                grid = grids[t, m]
                i, table = select_run(grid, [done[key(t, m, s0, g)] for g in grid], reference_index(grid))
                settings = {"dropout": grid[i]["dropout"], **({"pair_weight": weight[t]} if m in VARIANTS else {})}
                chosen[t, m] = (settings, done[key(t, m, s0, grid[i])], table)
            else:
                chosen[t, m] = ({}, done[key(t, m, s0, {})], None)
            if log:
                log(f"{t}: {m} searched ({chosen[t, m][0] or 'no search'})")
    # wave 3: the other seeds at the chosen settings (deterministic methods: once)
    trained = lambda m: m in VARIANTS or m in NETWORKS or m in SEEDED  # noqa: E731
    done |= wave([(t, m, s, chosen[t, m][0]) for t in datasets for m in order if trained(m)
                  for s in seeds if s != s0], "the other seeds")
    for t in datasets:
        for m in order:
            settings, best, table = chosen[t, m]
            if table is not None:
                search.append(table.assign(target=t, method=m))
            for s in seeds:
                run = best if s == s0 or not trained(m) else done[key(t, m, s, settings)]
                runs.append({"target": t, "method": m, "seed": s, **run.scores, **settings,
                             **{k: run.stop.get(k, math.nan) for k in ("stop_step", "best_step", "best_val",
                                                                        "batches", "capped")}})
                scores.append(run.ap.assign(target=t, method=m, seed=s))
                hist[(t, m, s)] = run.history
    cols = ["target", "method", "seed", "direction", "query", "value"]
    return Trial(pd.DataFrame(runs), pd.concat(scores, ignore_index=True)[cols],
                 pd.concat(search, ignore_index=True) if search else pd.DataFrame(), hist)


# ------------------------------------------------------------------------------- tables
def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation (ddof 0) over seeds, one row per (target, method), methods in
    input order (the claims use per-query scores, :func:`claim_data`)."""
    order = {m: i for i, m in enumerate(dict.fromkeys(df["method"]))}
    g = df.groupby(["target", "method"], sort=False)[["img2txt", "txt2img", "average"]]
    out = g.mean().join(g.std(ddof=0).add_suffix(" sd")).reset_index()
    out["n_seeds"] = g.size().to_numpy()
    return out.sort_values(["target", "method"], key=lambda s: s.map(order) if s.name == "method" else s,
                           kind="stable").reset_index(drop=True)


def stop_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (target, method): the chosen settings, mean stopping step and how many seeds hit the cap."""
    nets = runs[runs["stop_step"].notna()]
    keys = [c for c in ("dropout", "pair_weight") if c in nets]
    g = nets.groupby(["target", "method"], sort=False)
    out = g[keys].first().join(g["stop_step"].mean().rename("mean stop step")).join(
        g["best_step"].mean().rename("mean best step")).join(
        g["capped"].apply(lambda c: int(pd.Series(c).astype(bool).sum())).rename("seeds capped"))
    return out.join(g.size().rename("seeds")).reset_index()


def claim_data(scores: pd.DataFrame, arms: Sequence[str], targets: Sequence[str] | None = None) -> pd.DataFrame:
    """Tidy per-query scores of ``arms`` for :class:`~clickvision.claims.Ledger`: ``method, seed,
    fold`` (the target), ``item`` (``direction:query``), ``value`` (AP)."""
    sub = scores[scores["method"].isin(arms)]
    if targets is not None:
        sub = sub[sub["target"].isin(targets)]
    return pd.DataFrame({"method": sub["method"].to_numpy(), "seed": sub["seed"].to_numpy(),
                         "fold": sub["target"].to_numpy(),
                         "item": (sub["direction"] + ":" + sub["query"].astype(str)).to_numpy(),
                         "value": sub["value"].to_numpy()})


def _paper_gap(a: str, b: str) -> float:
    """The paper's average-MAP gap a - b, averaged over its three data sets."""
    p = PAPER_MAP.set_index(["method", "data set"])["average"]
    return float(np.mean([p[(a, d)] - p[(b, d)] for d in ("Wikipedia", "NUS-WIDE-10k", "Pascal Sentences")]))


def _paper_best_gap() -> float:
    """The paper's CHTN minus its best other method (average MAP), averaged over the data sets."""
    p = PAPER_MAP[~PAPER_MAP["method"].isin(["CHTN", "OnlyCross", "NoShare", "NoSrcSp"])]
    runner = p.groupby("data set")["average"].max()
    chtn = PAPER_MAP[PAPER_MAP["method"] == "CHTN"].set_index("data set")["average"]
    return float((chtn - runner).mean())


def _weakest(links: list[tuple[str, str, str]], scores: pd.DataFrame) -> tuple[str, str, str]:
    """Of several (winner, loser, target) direction links, the one with the lowest interval end."""
    judged = [(judge(Claim("C", "link", "", "direction", arms=(a, b)), claim_data(scores, (a, b), [t])).ci_low, a, b, t)
              for a, b, t in links]
    return min(judged)[1:]


def table1_claims(scores: pd.DataFrame, runs: pd.DataFrame) -> list[tuple[Claim, pd.DataFrame | None]]:
    """(claim, data) of Table 1, each judged on per-query AP of one target (seeds x queries).

    C-T1-best: on every target CHTN against that target's strongest other method (highest
    mean average MAP); the claim is judged on the target where CHTN's lead is weakest (lowest
    interval end), so it is supported only if it holds there, i.e. everywhere.
    C-T1-reorder: the baseline pair whose order swaps most between two targets (the smaller
    of its two point gaps is the largest), judged on its weaker target. Untestable with one
    target. Choosing the pair on the test scores favours the claim (a multiple comparison over every
    candidate swap, left unadjusted: a Bonferroni level over them would sit beyond what 2,000 resamples
    resolve). C-T1-best is a claim about every (target, other method) pair, so its interval is
    simultaneous over them (``Claim.comparisons``)."""
    means = runs.groupby(["target", "method"])["average"].mean().unstack("target")
    targets = list(dict.fromkeys(runs["target"]))
    a, b, t = _weakest([("CHTN", means[u].drop(index="CHTN").idxmax(), u) for u in targets], scores)
    best = Claim("C", "C-T1-best", "CHTN has the best average MAP on every target domain (judged on the target "
                 f"where its lead over that target's strongest other method is weakest: {b} on {t})", "direction",
                 arms=(a, b), paper_effect=_paper_best_gap(),
                 comparisons=sum(int(means[u].drop(index="CHTN").notna().sum()) for u in targets))
    out = [(best, claim_data(scores, best.arms, [t]))]
    text = "The compared methods' order changes across data sets"
    if len(targets) < 2:
        out.append((Claim("C", "C-T1-reorder", text, "untestable",
                          reason="one target domain in this run: an order cannot change across data sets"), None))
        return out
    per = runs[runs["method"] != "CHTN"].groupby(["target", "method"])["average"].mean().unstack("target")
    per = per.dropna()
    cands = []
    names = list(per.index)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            for t in targets:
                for u in targets:
                    if t != u:
                        g1, g2 = per.loc[a, t] - per.loc[b, t], per.loc[b, u] - per.loc[a, u]
                        cands.append((min(g1, g2), a, b, t, u))
    _, a, b, t, u = max(cands)
    x, y, tt = _weakest([(a, b, t), (b, a, u)], scores)
    claim = Claim("C", "C-T1-reorder", text + f" (weaker link of the largest swap: {a} > {b} on {t}, "
                  f"{b} > {a} on {u}; judged on {tt})", "direction", arms=(x, y))
    out.append((claim, claim_data(scores, (x, y), [tt])))
    return out


ABLATION_CLAIMS = (  # (id, winner, loser, sentence, from the paper?)
    ("C-T2-onlycross-noshare", "NoShare", "OnlyCross", "single-modal transfer helps: OnlyCross < NoShare", True),
    ("C-T2-noshare-chtn", "CHTN", "NoShare", "the shared layers help: NoShare < CHTN", True),
    ("C-T2-nosrcsp-chtn", "CHTN", "NoSrcSp", "source supervision helps: NoSrcSp < CHTN", True),
    ("C-T2-ctrl-nosource-chtn", "CHTN", "NoSource",
     "control: single-modal transfer helps with the shared layers in place: NoSource < CHTN", False),
    ("C-T2-ctrl-nommd-chtn", "CHTN", "NoMMD",
     "control: the source classifier helps only through the MMD: NoMMD (source classifier, no MMD) < CHTN", False),
    ("C-T2-ctrl-nosrcsp-nosource", "NoSource", "NoSrcSp",
     "control: an MMD to an unsupervised source pathway hurts: NoSrcSp < NoSource", False),
)


def ablation_claims(scores: pd.DataFrame) -> list[tuple[Claim, pd.DataFrame]]:
    """(claim, data) of Table 2 and the controls, on per-query AP (seeds x queries); with
    several targets each is judged on the target where it is weakest (lowest interval end),
    as the paper claims every ordering on every data set (the interval then simultaneous over the
    targets, ``Claim.comparisons``). Claims whose arms were not run are left out."""
    present, targets = set(scores["method"]), list(dict.fromkeys(scores["target"]))
    out = []
    for cid, hi, lo, text, paper in ABLATION_CLAIMS:
        if not {hi, lo} <= present:
            continue
        t = targets[0] if len(targets) == 1 else _weakest([(hi, lo, u) for u in targets], scores)[2]
        where = "" if len(targets) == 1 else f" (judged on the target where it is weakest: {t})"
        claim = Claim("C", cid, text + where, "direction", arms=(hi, lo),
                      paper_effect=_paper_gap(hi, lo) if paper else None, comparisons=len(targets))
        out.append((claim, claim_data(scores, (hi, lo), [t])))
    return out


def with_paper(summary: pd.DataFrame, methods: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Our mean average MAP per method and target beside the paper's three data sets
    (rows: ``methods``, default ours then the paper's others)."""
    ours = summary.pivot_table(index="method", columns="target", values="average", sort=False)
    ours.columns = [f"{c} (ours)" for c in ours.columns]
    paper = PAPER_MAP.assign(method=PAPER_MAP["method"].replace({"JRL": "JRL (spirit)", "LGCFL": "LGCFL (spirit)"}))
    paper = paper.pivot_table(index="method", columns="data set", values="average", sort=False)
    paper.columns = [f"{c} (paper)" for c in paper.columns]
    return ours.join(paper, how="outer").reindex(list(methods or dict.fromkeys([*ours.index, *paper.index])))


def val_curves(trial: Trial, methods: Sequence[str] | None = None) -> pd.DataFrame:
    """The validation curves of a trial's trained runs (the chosen settings, every seed):
    ``target, method, seed, batches, val_map`` (methods without a network have none)."""
    per = trial.runs.set_index(["target", "method", "seed"])
    parts = []
    for (t, m, s), h in trial.histories.items():
        if (methods is not None and m not in methods) or h is None or not len(h):
            continue
        r = per.loc[(t, m, s)]
        steps = float(r["stop_step"])
        c = val_curve(h, int(round(float(r["batches"]) / steps)) if steps else 1)
        if len(c):
            parts.append(c.assign(target=t, method=m, seed=s))
    cols = ["target", "method", "seed", "batches", "val_map"]
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)


def val_curve(history: pd.DataFrame, batches_per_step: int = 1) -> pd.DataFrame:
    """Validation average MAP of a History: ``batches`` (steps x batches per step), ``val_map``."""
    v = history[(history["split"] == "val") & (history["name"] == "val_map")]
    return pd.DataFrame({"batches": v["step"].to_numpy() * batches_per_step, "val_map": v["value"].to_numpy()})
