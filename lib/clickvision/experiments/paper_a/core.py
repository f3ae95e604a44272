"""Paper A (MTMDD-VM) on the embedded emoji: click TF-IDF and the TDL tables (III-A, III-B, IV-B1).

One function per table or figure; each takes plain parameters and returns tidy DataFrames
(``metric``, ``split``, ``value`` plus the configuration and ``seed``). The joint models of
Tables VII and Fig. 12 are in :mod:`.joint`, the gradient plots of Fig. 11 in
:mod:`.grad`, the click features of A.01 in :mod:`.clicks`, the data in
:mod:`.data`, the training in :mod:`.train`.

Protocol (docs/READING-NOTES.md): TDL tables (III-VI) train a click predictor on the source, then
a recognizer per domain on the frozen predictions, so "Acc-S" is the source recognizer's
test accuracy with the predicted click feature; hyper-parameters (B, T, tau) are selected
on the validation split and test is reported; several seeds give the spread.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from ... import runtime
from ...selection import Selection, select_near
from ...losses import click as click_losses
from ...models.mtmdd import MTMDDNet, embedding_parameter_count
from .data import (SOURCE_VENDOR, TARGET_VENDOR, DomainChoice, DomainData, PaperAData, check_vendors, choose_domains,
                   load_paper_a_data, reduce_map_channels, with_target_vendor)
from .train import (
    ITEM_METRICS,
    ClickLossSpec,
    HeadConfig,
    click_item_values,
    click_metrics,
    history_labels,
    make_embedding,
    predict_clicks,
    recognition_accuracy,
    seeded,
    torch_threads,
    train_click_predictor,
)

PROFILES: dict[str, HeadConfig] = {
    "smoke": HeadConfig(hidden=64, conv_kernels=8, visual_hidden=0, epochs=2, recognizer_epochs=2, batch_size=64,
                        recognizer_batch_size=64),
    "default": HeadConfig(hidden=256, conv_kernels=64, visual_hidden=0, epochs=15, recognizer_epochs=20,
                          batch_size=128),
    "paper": HeadConfig(hidden=4096, conv_kernels=1024, visual_hidden=4096, epochs=60, recognizer_epochs=60,
                        batch_size=128),
}
MAP_CHANNELS = {"smoke": 16, "default": 128, "paper": 0}  # 0: the full 1,280-channel conv map
SMOKE_ROWS = {"train": 160, "val": 80, "test": 80}
# A.04's Fig. 10 measurements recorded per source test image (item_* rows; the claims read the first two)
FIG10_ITEM_METRICS = ("position_error_bin", "precision_at_a", "position_error", "word_ap")

# The paper's numbers (percent), to print beside ours.
PAPER_TABLE_III = pd.DataFrame({"FC": [63.0, 44.2], "biFC": [68.7, 54.0], "CONV+FC": [68.9, 51.6],
                                "CONV+biFC": [70.3, 57.3]}, index=["Acc-S (%)", "Acc-T (%)"])
PAPER_TABLE_IV = pd.DataFrame({10: [59.7, 43.6, 57.53], 1: [70.7, 58.3, 34.36], 0.1: [71.4, 58.4, 3.90],
                               0.01: [71.5, 58.9, 0.27], 0.001: [69.5, 57.3, 0.04], 0.0001: [0.7, 1.5, 0.01]},
                              index=["Acc-S (%)", "Acc-T (%)", "Ratio (%)"])
PAPER_TABLE_V = pd.DataFrame({0: [70.3, 57.3, np.nan], 0.05: [71.5, 58.8, 0.31], 0.1: [71.5, 58.9, 0.99],
                              0.15: [70.5, 57.9, 2.21], 0.2: [69.0, 56.3, 3.63], 0.4: [38.6, 29.3, 19.84],
                              1: [11.8, 7.9, np.nan]}, index=["Acc-S (%)", "Acc-T (%)", "gd-ratio"])
PAPER_TABLE_VI = pd.DataFrame({"V": [76.5, 70.7], "C[7]": [63.0, 44.2], "C_E": [70.3, 57.3], "C": [71.5, 58.9],
                               "V+C[7]": [76.4, 71.3], "V+C_E": [76.6, 71.6], "V+C": [77.5, 72.2]},
                              index=["Acc-S (%)", "Acc-T (%)"])
EMBEDDING_NAMES = {"fc": "FC", "bifc": "biFC", "conv_fc": "CONV+FC", "conv_bifc": "CONV+biFC"}


def head_config(profile: str, **changes) -> HeadConfig:
    """The heads' sizes and training length of a profile, with ``changes`` applied."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {tuple(PROFILES)}, got {profile!r}")
    return PROFILES[profile].scaled(**changes)


#: the one stop rule's patience and cap per profile (every trained model; the click predictors get twice the cap:
#: their validation loss creeps down longer than a classifier's accuracy rises)
STOP_PATIENCE = {"smoke": 1, "default": 3, "paper": 10}
STOP_CAP = {"smoke": 2, "default": 30, "paper": 60}


def stop_rule_config(profile: str, patience: int = -1, epochs: int = 0, sizes: str | None = None,
                     **changes) -> HeadConfig:
    """The heads of ``sizes``' profile (default ``profile``) trained under the one stop rule of
    :class:`~.train.HeadConfig`: every model stops after ``patience`` epochs without a better validation score
    of its own and keeps its best epoch (-1: :data:`STOP_PATIENCE` of ``profile``), at most ``epochs`` epochs
    (0: :data:`STOP_CAP`; the click predictors twice it). ``patience`` 0: the profile's fixed epochs instead
    (``epochs`` > 0 replaces them), every fit still scored on validation each epoch (``curves``) so that its
    convergence can be shown. ``changes`` as in :func:`head_config`. A bad value is named."""
    if profile not in STOP_PATIENCE:
        raise ValueError(f"profile must be one of {tuple(STOP_PATIENCE)}, got {profile!r}")
    if isinstance(patience, bool) or not isinstance(patience, int) or patience < -1:
        raise ValueError(f"patience must be an integer >= -1 (-1: the profile's, 0: fixed epochs), got {patience!r}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be an integer >= 0 (0: the profile's), got {epochs!r}")
    n_patience = STOP_PATIENCE[profile] if patience < 0 else patience
    if not n_patience:
        fixed = {"epochs": epochs, "recognizer_epochs": epochs} if epochs else {}
        return head_config(sizes or profile, **{"curves": True, **fixed, **changes})
    cap = epochs or STOP_CAP[profile]
    return head_config(sizes or profile, **{"patience": n_patience, "epochs": cap, "recognizer_epochs": cap,
                                            "click_epochs": 2 * cap, **changes})


def training_note(cfg: HeadConfig) -> str:
    """How ``cfg``'s heads train, for a notebook's set-up line: the stop rule and its caps, or the fixed epochs."""
    if cfg.patience:
        return (f"every model stops after {cfg.patience} epoch(s) without a better validation score and keeps its best "
                f"epoch (at most {cfg.epochs} epochs, recognisers {cfg.recognizer_epochs}, click predictors "
                f"{cfg.click_cap})")
    return (f"fixed epochs: click predictors {cfg.click_cap}, joint networks {cfg.epochs}, recognisers "
            f"{cfg.recognizer_epochs}" + (" (scored on validation each epoch for the curves)" if cfg.curves else ""))


def load_data(profile: str, with_map: bool = True, map_channels: int | None = None, seed: int = 0,
              target_vendor: str = TARGET_VENDOR) -> PaperAData:
    """Paper A's data for a profile: conv maps reduced to ``MAP_CHANNELS`` (smoke: a subsample).

    ``target_vendor``: the target domain's emoji vendor (default Twitter; A.10-A.13 take the one
    :func:`~.data.choose_domains` picks from 00.02's measured gaps, :func:`resolve_target`)."""
    check_vendors(SOURCE_VENDOR, target_vendor)
    data = with_target_vendor(load_paper_a_data(with_map=with_map), target_vendor, with_map)
    if profile == "smoke":
        data = data.subsample(SMOKE_ROWS, seed)
    if with_map:
        data = reduce_map_channels(data, MAP_CHANNELS[profile] if map_channels is None else map_channels)
    return data



def targets_of(rows: pd.DataFrame) -> list[str]:
    """The target vendors of rows from :func:`over_targets`, in their order (empty without a ``target`` column)."""
    return list(dict.fromkeys(rows["target"])) if "target" in rows.columns else []


def pooled_note(rows: pd.DataFrame) -> str:
    """The claim texts' note ``"; pooled over the targets X, Y"`` for rows of several targets, else ``""``."""
    targets = targets_of(rows)
    return f"; pooled over the targets {', '.join(targets)}" if len(targets) > 1 else ""

def note_pooled(pairs: list, rows: pd.DataFrame) -> list:
    """``(Claim, data)`` pairs with :func:`pooled_note` appended to every testable claim's text (an
    untestable or structural claim, with no data, says nothing about targets): for claim builders that
    judge rows of :func:`over_targets` without naming the targets themselves."""
    from dataclasses import replace

    note = pooled_note(rows)
    if not note:
        return pairs
    return [(replace(c, claim=c.claim + note) if d is not None else c, d) for c, d in pairs]


def resolve_target(target_vendor: str, source_vendor: str = SOURCE_VENDOR) -> tuple[str, DomainChoice | None]:
    """A notebook's ``target_vendor`` parameter as a vendor: ``"auto"`` -> the vendor farthest from the
    source by the gaps 00.02 measured (:func:`~.data.choose_domains`, returned with its reasons), any
    other value itself (checked: an emoji vendor other than the source; ValueError naming the parameter)."""
    if target_vendor == "auto":
        choice = choose_domains(source_vendor)
        return choice.targets[0], choice
    check_vendors(source_vendor, target_vendor)
    return target_vendor, None


def is_target_metric(metric: str) -> bool:
    """Whether a per-item metric scores the target domain's images (``correct_t``, ``val_correct_t``: the
    ``_t`` suffix of :func:`item_rows`), not the source's (``correct_s``, a click predictor's ``item_<m>``)."""
    return str(metric).endswith("_t")


def over_targets(datasets: Mapping[str, object], run: Callable[[object], pd.DataFrame]) -> pd.DataFrame:
    """``run(datasets[vendor])`` for every target vendor, pooled into one tidy frame for the claims.

    Each part gets a ``target`` column (the vendor) and the ``item`` keys of its target-domain rows
    (:func:`is_target_metric`: ``correct_t``, ``val_correct_t``) are prefixed ``<vendor>/``, so per-image
    claims pool the targets' test images as distinct items (issue #18 item 2: pooled over targets where a
    claim is about the method, not the domain) and settings are selected on the targets' validation images
    pooled. Source-domain rows (``correct_s``, a click predictor's ``item_<m>``) keep their keys: every
    target's run scores the same source images, so the claims average an image over the targets (one
    item, its targets' runs correlated) rather than count it once per target (an interval too narrow by up
    to sqrt of the number of targets). A per-seed metric pools as the mean over the targets. Histories
    recorded inside (:func:`~.train.record_histories`) carry the target as a label. ValueError when
    ``datasets`` is empty or a part returns no rows.
    """
    if not datasets:
        raise ValueError("over_targets: need at least one target domain")
    frames = []
    for vendor, value in datasets.items():
        with history_labels(target=vendor):
            frame = pd.DataFrame(run(value)).copy()
        if frame.empty:
            raise ValueError(f"over_targets: the run on target {vendor!r} returned no rows")
        frame["target"] = vendor
        if "item" in frame.columns:
            has = frame["item"].notna() & frame["metric"].map(is_target_metric)
            frame["item"] = frame["item"].astype(object)
            frame.loc[has, "item"] = vendor + "/" + frame.loc[has, "item"].astype(str)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)

# --- TDL runs (Tables III-VI) --------------------------------------------------------------------

def _rows(metrics: dict[str, float], **labels) -> list[dict]:
    return [{**labels, "metric": m, "value": float(v)} for m, v in metrics.items()]


def item_rows(correct: np.ndarray, d, dom: str, split: str = "test", **labels) -> list[dict]:
    """Per test image of domain ``dom``: metric ``correct_<dom>`` (1.0 / 0.0), ``item`` the image's key
    (``split="val"``: per validation image, metric ``val_correct_<dom>``).

    The per-item scores behind Acc-S / Acc-T (their mean), for the claims' two-level bootstrap;
    the key (not the row number) names the image, so runs on subsets of the training rows pair up.
    The validation ones are what settings are selected on (:func:`clickvision.selection.select_robust`).
    """
    if split not in ("test", "val"):
        raise ValueError(f"item_rows: split must be 'test' or 'val', got {split!r}")
    rows = d.rows(split)
    if len(correct) != len(rows):
        raise ValueError(f"item_rows: {len(correct)} correctness values for {len(rows)} {split} rows of domain {dom!r}")
    keys = d.items["key"].to_numpy()[rows] if "key" in d.items.columns else rows
    name = f"correct_{dom}" if split == "test" else f"val_correct_{dom}"
    return [{**labels, "metric": name, "item": str(k), "value": float(c)}
            for k, c in zip(keys, correct)]


def click_item_rows(d: DomainData, v_hat: np.ndarray, loss: ClickLossSpec, metrics: Sequence[str],
                    **labels) -> list[dict]:
    """Per source test image with a non-zero click truth: metric ``item_<m>`` for each ``m`` of ``metrics``
    (among :data:`~.train.ITEM_METRICS`: ``position_error_bin``, ``position_error``, ``precision_at_a``,
    ``precision_at_a_bn``, ``word_ap``), ``item`` the image's key, ``representation="click"``.

    The per-image terms of :func:`~.train.click_metrics`' test values (:func:`~.train.click_item_values`
    on the same rows, so the binarisation's batch statistics are the same): the mean of each
    ``item_<m>`` over the images is the aggregate ``m`` exactly. For the claims' two-level bootstrap
    over seeds and images (the ``item_`` prefix keeps them apart from the per-seed aggregates).
    """
    unknown = [m for m in metrics if m not in ITEM_METRICS]
    if unknown:
        raise ValueError(f"item_metrics must be among {ITEM_METRICS}, got {unknown}")
    if not metrics:
        return []
    rows = d.rows("test")
    per_image = click_item_values(d.clicks[rows], v_hat[rows], d.valid[rows], loss.bandwidth, loss.variant)
    images = rows[d.valid[rows]]
    keys = d.items["key"].to_numpy()[images] if "key" in d.items.columns else images
    return [{**labels, "metric": f"item_{m}", "item": str(k), "value": float(v)}
            for m in metrics for k, v in zip(keys, per_image[m])]


def visual_baseline(data: PaperAData, cfg: HeadConfig, seed: int) -> list[dict]:
    """V alone (no click feature): recognizers on each domain; shared by every table's V column."""
    out = []
    for dom, d, cols in data.domains():
        acc = recognition_accuracy(d, cfg, None, True, seed, len(data.classes), cols)
        out += _rows({f"acc_{dom}": acc["test"], f"val_acc_{dom}": acc["val"]}, representation="V", seed=seed)
        out += item_rows(acc["test_correct"], d, dom, representation="V", seed=seed)
    return out


#: The label suffix of rows whose source recognizer was trained on cross-fitted click predictions
#: (:func:`crossfit_clicks`): "C (cross-fitted)", "V+C (cross-fitted)".
CROSSFIT = " (cross-fitted)"


def crossfit_folds(d: DomainData, k: int = 5, seed: int = 0) -> np.ndarray:
    """Per row of ``d``: its cross-fitting fold (0 .. ``k``-1) if it is a training row, else -1.

    With a ``concept`` column in ``d.items`` the training rows are dealt by concept
    (:func:`clickvision.claims.grouped_kfold`: every training image of a concept in one fold, as the
    data set's own splits keep a concept on one side), else by a seeded
    :class:`sklearn.model_selection.KFold` (shuffled, ``random_state=seed``). Raises ValueError on
    ``k`` < 2 or fewer training rows (concepts) than folds.
    """
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 2:
        raise ValueError(f"crossfit_folds: k must be an int >= 2, got {k!r}")
    train = d.rows("train")
    fold = np.full(len(d.y), -1, dtype=np.int64)
    if "concept" in d.items.columns:
        from ...claims import grouped_kfold

        parts = grouped_kfold(d.items["concept"].astype(str).to_numpy()[train], int(k), seed)
    else:
        from sklearn.model_selection import KFold

        if len(train) < k:
            raise ValueError(f"crossfit_folds: {len(train)} training rows cannot fill k={k} folds")
        parts = KFold(n_splits=int(k), shuffle=True, random_state=seed).split(train)
    for f, (_, held) in enumerate(parts):
        fold[train[held]] = f
    return fold


def crossfit_clicks(data: PaperAData, cfg: HeadConfig, loss: ClickLossSpec, seed: int, kind: str | None = None,
                    k: int = 5, full: np.ndarray | None = None) -> np.ndarray:
    """Source click predictions whose TRAINING rows are cross-fitted (out of fold).

    The source training rows are dealt into ``k`` folds (:func:`crossfit_folds`, fold seed ``seed``);
    per fold a click predictor is trained by :func:`~.train.train_click_predictor` with the same
    ``cfg``, ``loss``, ``seed`` and ``kind`` as the full predictor on the OTHER folds' training rows
    (the fold's rows are marked ``"held out"``, so they are neither trained nor validated on; same
    epochs, so about (k-1)/k of the full predictor's steps), and predicts its own fold's rows. Every
    training row is thus predicted by a predictor that never saw it, as every target row and every
    source validation / test row is by the full predictor. Validation and test rows keep ``full``:
    the full predictor's source predictions (:func:`~.train.predict_clicks`; ``None``: trained here).
    Each fold's fit reads other rows than the full one, so :func:`~.train.reuse_identical_fits`
    keys it apart.
    """
    s = data.source
    if full is None:
        full = predict_clicks(train_click_predictor(data, cfg, loss, seed, kind).model, s)
    if full.shape[0] != len(s.y):
        raise ValueError(f"crossfit_clicks: full has {full.shape[0]} rows, the source {len(s.y)}")
    fold = crossfit_folds(s, k, seed)
    out = np.array(full, copy=True)
    for f in range(int(k)):
        held = fold == f
        split = np.where(held, "held out", s.split).astype(object)
        view = replace(data, source=replace(s, split=split, items=s.items.assign(split=split)))
        fit = train_click_predictor(view, cfg, loss, seed, kind)
        out[held] = predict_clicks(fit.model, s)[held]
    return out


def predictor_rows(data: PaperAData, cfg: HeadConfig, net: MTMDDNet, loss: ClickLossSpec, seed: int,
                   representations: Sequence[str] = ("C",), item_metrics: Sequence[str] = (),
                   v_crossfit: np.ndarray | None = None,
                   val_items: bool = False) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """The evaluation half of :func:`tdl_run` for a given click predictor ``net``: its click metrics
    against the source truth (test and ``val_``; :func:`~.train.click_metrics` with ``loss``'s B and
    variant), then recognizers per domain on its frozen predictions. ``item_metrics`` (opt-in, default
    none): also those click metrics per source test image (:func:`click_item_rows`: metrics ``item_<m>``
    with ``item``). Returns the rows and the predictions (source, target).

    ``v_crossfit`` (opt-in): source predictions with cross-fitted training rows (:func:`crossfit_clicks`
    for ``net``'s training); each representation then also gets rows labelled ``rep + CROSSFIT`` whose
    source recognizer trains on them. The target's predictions are ``net``'s either way, so its
    recognizer is the one already trained (same inputs, same seed): its rows are repeated under
    the new label, not trained again. Without ``v_crossfit`` the rows are exactly as before.

    ``val_items`` (opt-in): also each recognizer's correctness per validation image (``val_correct_<dom>``
    with ``item``), the rows :func:`clickvision.selection.select_robust` selects settings on.
    """
    vs, vt = predict_clicks(net, data.source), predict_clicks(net, data.target)
    s = data.source
    out = []
    for split in ("test", "val"):
        rows = s.rows(split)
        cm = click_metrics(s.clicks[rows], vs[rows], s.valid[rows], loss.bandwidth, loss.variant)
        prefix = "" if split == "test" else "val_"
        out += _rows({prefix + k: v for k, v in cm.items()}, representation="click", seed=seed)
    out += click_item_rows(s, vs, loss, item_metrics, representation="click", seed=seed)
    for rep in representations:
        per_domain = {}
        for (dom, d, cols), vh in zip(data.domains(), (vs, vt)):
            with history_labels(features=rep):  # each input its own validation curve (C alone, V+C)
                acc = recognition_accuracy(d, cfg, vh, rep == "V+C", seed, len(data.classes), cols)
            per_domain[dom] = (_rows({f"acc_{dom}": acc["test"], f"val_acc_{dom}": acc["val"]}, representation=rep,
                                     seed=seed) + item_rows(acc["test_correct"], d, dom, representation=rep, seed=seed))
            if val_items:
                per_domain[dom] += item_rows(acc["val_correct"], d, dom, "val", representation=rep, seed=seed)
            out += per_domain[dom]
        if v_crossfit is not None:
            label = rep + CROSSFIT
            with history_labels(features=label):
                acc = recognition_accuracy(s, cfg, v_crossfit, rep == "V+C", seed, len(data.classes),
                                           data.source_columns)
            out += _rows({"acc_s": acc["test"], "val_acc_s": acc["val"]}, representation=label, seed=seed)
            out += item_rows(acc["test_correct"], s, "s", representation=label, seed=seed)
            out += [{**r, "representation": label} for r in per_domain["t"]]
    return out, vs, vt


def tdl_run(data: PaperAData, cfg: HeadConfig, loss: ClickLossSpec, seed: int, kind: str | None = None,
            representations: Sequence[str] = ("C",), gd_steps: set[int] | None = None,
            keep: bool = False, item_metrics: Sequence[str] = (), crossfit: int = 0,
            val_items: bool = False) -> tuple[list[dict], dict]:
    """TDL with one click predictor: train it (eq. 2 / eq. 12), then recognizers on its output.

    Returns tidy rows (``representation``, ``metric``, ``value``; metrics ``acc_s``, ``acc_t``
    and ``val_*``, per test image ``correct_s`` / ``correct_t`` with ``item``; for ``representation="click"``: ``rmse_s`` and ``rmse_s_caffe``
    (RMSE-S, readings 1 and 2), ``position_error_bin`` / ``position_error`` (eq. 9 on the binarised /
    raw prediction), ``precision_at_a``, ``word_ap``, ``ratio`` (Table IV) ... on source test/val rows
    with a non-zero truth, :func:`~.train.click_metrics`; with ``item_metrics`` also ``item_<m>`` per source
    test image, :func:`click_item_rows`) and extras (the gd-ratio terms, and with ``keep`` the fit and the
    predictions).

    ``crossfit`` (opt-in, 0: off): with ``k`` > 0 folds, each representation also gets rows labelled
    ``rep + CROSSFIT`` (e.g. "C (cross-fitted)") whose source recognizer trains on out-of-fold
    predictions of the source training rows (:func:`crossfit_clicks`), beside the in-sample rows,
    which stay as they are; with ``keep`` the extras add ``v_source_crossfit``. ``val_items``: per
    validation image correctness too (:func:`predictor_rows`).
    """
    fit = train_click_predictor(data, cfg, loss, seed, kind, gd_steps)
    v_cf = None
    if crossfit:
        v_cf = crossfit_clicks(data, cfg, loss, seed, kind, crossfit, predict_clicks(fit.model, data.source))
    out, vs, vt = predictor_rows(data, cfg, fit.model, loss, seed, representations, item_metrics, v_cf, val_items)
    extras = {"grad_terms": fit.grad_terms}
    if keep:
        extras.update(fit=fit, v_source=vs, v_target=vt)
        if v_cf is not None:
            extras["v_source_crossfit"] = v_cf
    return out, extras


def tdl_baseline(data: PaperAData, cfg: HeadConfig, seeds: Sequence[int],
                 crossfit: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """III-B: the linear TDL predictor [7] (eq. 2), V, V + C[7], and the ground-truth click ceiling.

    Returns tidy rows (``representation`` C = C[7], V+C, V, "C (ground truth)",
    "V+C (ground truth)"; the ground truth exists on the source only) and the first seed's
    training history of the click predictor. ``crossfit`` (0: off): also "C (cross-fitted)" and
    "V+C (cross-fitted)", the source recognizers trained on ``crossfit``-fold out-of-fold predictions
    of the source training rows (:func:`tdl_run`); every other row is unchanged.
    """
    rows, history = [], None
    n = len(data.classes)
    with torch_threads(1):
        for seed in runtime.progress(seeds, desc="TDL baseline: seeds"):
            with history_labels(method="TDL (C[7])", seed=seed):
                out, extras = tdl_run(data, cfg, ClickLossSpec(tau=0.0), seed, "fc", ("C", "V+C"),
                                      keep=history is None, crossfit=crossfit)
            history = extras["fit"].history if history is None else history
            with history_labels(method="V", seed=seed):
                rows += out + visual_baseline(data, cfg, seed)
            for rep, use_visual in (("C (ground truth)", False), ("V+C (ground truth)", True)):
                with history_labels(method=rep, seed=seed):
                    acc = recognition_accuracy(data.source, cfg, data.source.clicks, use_visual, seed, n)
                rows += _rows({"acc_s": acc["test"], "val_acc_s": acc["val"]}, representation=rep, seed=seed)
                rows += item_rows(acc["test_correct"], data.source, "s", representation=rep, seed=seed)
    return pd.DataFrame(rows), history


def summarize(rows: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Mean, sd and number of seeds of every metric per group ``by`` (tidy; sd is NaN for one seed).

    Rows of several K-fold views (a ``fold`` column, :func:`~.data.over_folds`) are first
    averaged over the folds per seed (each seed's pooled result), so sd is still over seeds.
    """
    if "fold" in rows.columns and rows["fold"].nunique() > 1:
        rows = rows.groupby([*by, "metric", "seed"], sort=False, dropna=False)["value"].mean().reset_index()
    g = rows.groupby([*by, "metric"], sort=False)["value"]
    return g.agg(["mean", "std", "count"]).reset_index().rename(columns={"count": "seeds"})


def accuracy_table(summary: pd.DataFrame, column: str, order: Sequence, paper: pd.DataFrame | None = None,
                   metrics: Sequence[tuple[str, str]] = (("acc_s", "Acc-S (%)"), ("acc_t", "Acc-T (%)")),
                   percent: bool = True) -> pd.DataFrame:
    """Rows = metrics ("ours mean", "ours sd", "paper"), columns = ``order`` of ``column``."""
    rows = {}
    for metric, label in metrics:
        sub = summary[summary["metric"] == metric].set_index(column)
        scale = 100.0 if percent else 1.0
        rows[f"{label} ours"] = [scale * sub["mean"].get(c, np.nan) for c in order]
        rows[f"{label} ours sd"] = [scale * sub["std"].get(c, np.nan) for c in order]
        if paper is not None and label in paper.index:
            rows[f"{label} paper"] = [paper.loc[label].get(c, np.nan) for c in order]
    return pd.DataFrame(rows, index=list(order)).T


def embedding_ablation(data: PaperAData, cfg: HeadConfig, kinds: Sequence[str], seeds: Sequence[int],
                       loss: ClickLossSpec | None = None) -> pd.DataFrame:
    """Table III: recognition with the predicted click feature alone, per word embedding."""
    rows = []
    with torch_threads(1):
        for seed in runtime.progress(seeds, desc="Table III: seeds"):
            for kind in kinds:
                with history_labels(method=EMBEDDING_NAMES[kind], seed=seed):
                    out, _ = tdl_run(data, cfg, loss or ClickLossSpec(tau=0.0), seed, kind)
                rows += [{**r, "embedding": EMBEDDING_NAMES[kind]} for r in out]
    return pd.DataFrame(rows)


def kernel_grid(data: PaperAData, cfg: HeadConfig, sizes: Sequence[int], counts: Sequence[int],
                seeds: Sequence[int], kind: str = "conv_bifc", reuse: pd.DataFrame | None = None) -> pd.DataFrame:
    """Fig. 9: the CONV transformation's kernel size x number of kernels (predicted click alone).

    ``reuse``: rows of an :func:`embedding_ablation` run of ``kind`` with ``cfg``; the grid
    cell of ``cfg``'s own kernel size and number takes them instead of training again.
    """
    rows = []
    with torch_threads(1):
        for seed in runtime.progress(seeds, desc="Fig. 9: seeds"):
            for size in sizes:
                for count in counts:
                    c = cfg.scaled(conv_size=int(size), conv_kernels=int(count))
                    same = c == cfg and reuse is not None and (reuse["seed"] == seed).any()
                    if same:
                        out = reuse[reuse["seed"] == seed].drop(columns="embedding").to_dict("records")
                    else:
                        out, _ = tdl_run(data, c, ClickLossSpec(tau=0.0), seed, kind)
                    rows += [{**r, "kernel_size": int(size), "kernels": int(count)} for r in out]
    return pd.DataFrame(rows)


# --- A.03: Table III at matched capacity (#18 item 4, "Capacity") ------------------------------------

def embedding_parameters(cfg: HeadConfig, data: PaperAData, kind: str | None = None) -> int:
    """Trainable parameters of the word embedding :func:`~.train.make_embedding` builds for ``cfg`` (or
    ``kind``) on ``data``'s features (closed form, :func:`~clickvision.models.mtmdd.embedding_parameter_count`)."""
    return embedding_parameter_count(kind or cfg.embedding, data.feature_dim, data.k, cfg.hidden, cfg.conv_kernels,
                                     cfg.conv_size, cfg.pool, data.map_channels)


def embedding_width(cfg: HeadConfig, kind: str) -> str:
    """The width(s) a kind of embedding has in ``cfg``, as words ("-" for FC: it has none)."""
    return {"fc": "-", "bifc": f"hidden {cfg.hidden}", "conv_fc": f"{cfg.conv_kernels} kernels",
            "conv_bifc": f"{cfg.conv_kernels} kernels, hidden {cfg.hidden}"}[kind]


def matched_config(cfg: HeadConfig, data: PaperAData, kind: str, budget: int, max_width: int = 1 << 16) -> HeadConfig:
    """``cfg`` with ``kind``'s width set so that its embedding's parameter count is the closest to ``budget``.

    The width of each kind: biFC ``hidden``; CONV+FC ``conv_kernels``; CONV+biFC both, scaled together at
    ``cfg``'s ratio hidden / conv_kernels (one integer kernel count, hidden = round(ratio x kernels)); FC
    has none (``cfg`` is returned). Kernel size, pool and everything else stay. Ties go to the smaller width.
    """
    if kind == "fc":
        return cfg
    if budget < 1:
        raise ValueError(f"matched_config: budget must be a positive parameter count, got {budget!r}")
    ratio = cfg.hidden / cfg.conv_kernels

    def config(w: int) -> HeadConfig:
        if kind == "bifc":
            return cfg.scaled(hidden=w)
        if kind == "conv_fc":
            return cfg.scaled(conv_kernels=w)
        if kind == "conv_bifc":
            return cfg.scaled(conv_kernels=w, hidden=max(1, round(ratio * w)))
        raise ValueError(f"matched_config: kind must be one of {tuple(EMBEDDING_NAMES)}, got {kind!r}")

    def count(w: int) -> int:
        return embedding_parameters(config(w), data, kind)

    lo, hi = 1, 1  # the count rises with the width: find the first width at or past the budget
    while count(hi) < budget and hi < max_width:
        lo, hi = hi, min(2 * hi, max_width)
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if count(mid) < budget else (lo, mid)
    best = min({max(1, hi - 1), hi}, key=lambda w: (abs(count(w) - budget), w))
    return config(best)


def capacity_table(data: PaperAData, cfg: HeadConfig, configs: Mapping[str, HeadConfig],
                   reference: str = "fc") -> pd.DataFrame:
    """Each embedding's width(s) and parameter count under ``cfg`` and under its own ``configs[kind]``, side by
    side, with the matched count as a fraction of ``reference``'s."""
    budget = embedding_parameters(configs[reference], data, reference)
    rows = []
    for kind, c in configs.items():
        n = embedding_parameters(c, data, kind)
        rows.append({"embedding": EMBEDDING_NAMES[kind], "width (profile)": embedding_width(cfg, kind),
                     "parameters (profile)": embedding_parameters(cfg, data, kind),
                     "width (matched)": embedding_width(c, kind), "parameters (matched)": n,
                     f"matched / {EMBEDDING_NAMES[reference]}": round(n / budget, 4)})
    return pd.DataFrame(rows).set_index("embedding")


def matched_ablation(data: PaperAData, cfg: HeadConfig, configs: Mapping[str, HeadConfig], seeds: Sequence[int],
                     reuse: pd.DataFrame | None = None, loss: ClickLossSpec | None = None) -> pd.DataFrame:
    """Table III with one :class:`HeadConfig` per embedding (``configs[kind]``, e.g. :func:`matched_config`):
    the rows of :func:`embedding_ablation` plus ``parameters`` (the embedding's trainable parameter count).

    ``reuse``: rows of an :func:`embedding_ablation` run with ``cfg`` (same seeds); a kind whose config is
    ``cfg`` itself (FC, whose count is the budget) takes its rows instead of training again.
    """
    rows = []
    with torch_threads(1):
        for seed in runtime.progress(seeds, desc="Table III at matched capacity: seeds"):
            for kind, c in configs.items():
                name = EMBEDDING_NAMES[kind]
                prev = None if reuse is None else reuse[(reuse["embedding"] == name) & (reuse["seed"] == seed)]
                if c == cfg and prev is not None and len(prev):
                    out = prev.drop(columns="embedding").to_dict("records")
                else:
                    with history_labels(method=f"{name} (matched)", seed=seed):
                        out, _ = tdl_run(data, c, loss or ClickLossSpec(tau=0.0), seed, kind)
                n = embedding_parameters(c, data, kind)
                rows += [{**r, "embedding": name, "parameters": n} for r in out]
    return pd.DataFrame(rows)


# --- A.03: controls for "C alone" (what a recognizer on a predicted click feature reads) ---------------

CONTROLS = ("untrained", "shuffled targets", "ground truth")
SIGN = {"supported": "a > b", "contradicted": "a < b", "inconclusive": "not resolved",
        "untestable": "identical (no contrast)"}
#: What Table III's click-prediction ranking reads: metric -> (label, higher is better).
CLICK_QUALITY = {"rmse_s_caffe": ("RMSE-S reading 2 (Caffe)", False), "rmse_s": ("RMSE-S reading 1", False),
                 "precision_at_a": ("precision@|A|", True), "word_ap": ("word AP", True)}


def shuffled_click_targets(d: DomainData, seed: int) -> DomainData:
    """``d`` with its TRAINING rows' click vectors (and their non-zero flags) permuted across the training
    images (``numpy.random.default_rng(seed)``); validation and test rows keep their true clicks.

    A predictor trained on these sees the same click vectors and the same images, but no link between
    the two: what it learns about an image's clicks is noise."""
    if d.clicks is None or d.valid is None:
        raise ValueError(f"domain {d.name!r} has no click features to shuffle (the source has them)")
    train = d.rows("train")
    perm = np.random.default_rng(seed).permutation(train)
    clicks, valid = d.clicks.copy(), d.valid.copy()
    clicks[train], valid[train] = d.clicks[perm], d.valid[perm]
    return replace(d, clicks=clicks, valid=valid)


def untrained_predictor(data: PaperAData, cfg: HeadConfig, seed: int, kind: str | None = None) -> MTMDDNet:
    """The click predictor ``kind`` at its random initialisation: the weights :func:`~.train.train_click_predictor`
    starts from with the same ``seed`` (no training step)."""
    seeded(seed)
    return MTMDDNet(make_embedding(cfg, data, kind), None)


def click_controls(data: PaperAData, cfg: HeadConfig, kind: str, seeds: Sequence[int],
                   loss: ClickLossSpec | None = None) -> pd.DataFrame:
    """Controls for Table III's "C alone" (predicted click feature alone): per seed, the same recognizer
    (:func:`~.train.recognition_accuracy`, as in :func:`tdl_run`) on

    * ``untrained`` -- the predictor ``kind`` at its random initialisation (:func:`untrained_predictor`);
    * ``shuffled targets`` -- the predictor ``kind`` trained by ``loss`` (default eq. 2) on click vectors
      permuted across the training images (:func:`shuffled_click_targets`);
    * ``ground truth`` -- the source's true click feature (source only: the target has none).

    Tidy rows as :func:`tdl_run`'s (``representation`` "C" / "click"; the predictors' click metrics are
    against the TRUE clicks) with a column ``predictor``. Both predictors are functions of the image
    only, so each passes the visual information its layers keep; neither carries what clicks say.
    """
    loss = loss or ClickLossSpec(tau=0.0)
    rows = []
    with torch_threads(1):
        for seed in runtime.progress(seeds, desc="C-alone controls: seeds"):
            out, _, _ = predictor_rows(data, cfg, untrained_predictor(data, cfg, seed, kind), loss, seed)
            rows += [{**r, "predictor": "untrained"} for r in out]
            shuffled = replace(data, source=shuffled_click_targets(data.source, seed))
            fit = train_click_predictor(shuffled, cfg, loss, seed, kind)
            out, _, _ = predictor_rows(data, cfg, fit.model, loss, seed)
            rows += [{**r, "predictor": "shuffled targets"} for r in out]
            s = data.source
            acc = recognition_accuracy(s, cfg, s.clicks, False, seed, len(data.classes), data.source_columns)
            rows += _rows({"acc_s": acc["test"], "val_acc_s": acc["val"]}, representation="C", seed=seed,
                          predictor="ground truth")
            rows += item_rows(acc["test_correct"], s, "s", representation="C", seed=seed, predictor="ground truth")
    return pd.DataFrame(rows)


def click_quality_ranking(rows: pd.DataFrame, by: str, order: Sequence | None = None) -> pd.DataFrame:
    """Per ``by`` value: C-alone accuracy (Acc-S, Acc-T, %) and click-prediction quality on the source test
    images (:data:`CLICK_QUALITY`), means over seeds, each with its rank (1 = best; ties share the lower
    rank). ``rows``: tidy rows of :func:`tdl_run` / :func:`click_controls` (``representation`` "C" and
    "click"); a value without a metric (the ground truth's click scores) gets NaN and no rank."""
    summ = summarize(rows[rows["representation"].isin(["C", "click"])], [by])
    means = summ.pivot_table(index=by, columns="metric", values="mean")
    order = list(order) if order is not None else list(means.index)
    out = pd.DataFrame(index=pd.Index(order, name=by))
    for metric, label, scale, higher in [("acc_s", "Acc-S (%)", 100.0, True), ("acc_t", "Acc-T (%)", 100.0, True),
                                         *((m, lab, 1.0, hi) for m, (lab, hi) in CLICK_QUALITY.items())]:
        vals = scale * means[metric].reindex(order) if metric in means else pd.Series(np.nan, index=order)
        out[label] = vals
        out[f"rank: {label}"] = vals.rank(ascending=not higher, method="min")
    return out


def control_contrasts(rows: pd.DataFrame, pairs: Sequence[tuple[str, str]], by: str = "predictor") -> pd.DataFrame:
    """C-alone accuracy differences ``a - b`` for each ``(a, b)`` of ``by`` values, per test image over the
    seeds, with the claims engine's two-level bootstrap interval and MDE (:func:`clickvision.claims.judge`,
    judged, not recorded: these are measurements, not the paper's claims). A domain where ``a`` or ``b``
    has no rows (the ground truth on the target) is left out. Differences in points; ``sign``: "a > b" or
    "a < b" where the interval excludes 0, else "not resolved"."""
    from ...claims import Claim, judge
    from .claims import scores

    c = rows[rows["representation"] == "C"]
    out = []
    for a, b in pairs:
        for dom, label in (("s", "Acc-S"), ("t", "Acc-T")):
            have = set(c.loc[c["metric"] == f"correct_{dom}", by])
            if a not in have or b not in have:
                continue
            d = scores(c, f"correct_{dom}", {a: {by: a}, b: {by: b}})
            j = judge(Claim("A", "measured", f"{a} vs {b}, {label}", "direction", arms=(a, b)), d)
            out.append({"contrast": f"{a} - {b}", "domain": label, "difference (points)": 100 * j.estimate,
                        "90% CI low": 100 * j.ci_low, "90% CI high": 100 * j.ci_high, "MDE (points)": 100 * j.mde,
                        "sign": SIGN[j.verdict]})
    return pd.DataFrame(out)


def crossfit_contrasts(rows: pd.DataFrame, representations: Sequence[str] = ("C", "V+C")) -> pd.DataFrame:
    """Acc-S with the source recognizer trained on in-sample vs cross-fitted click predictions, per
    representation ``rep`` of ``representations`` (rows ``rep`` and ``rep + CROSSFIT`` of
    :func:`tdl_run` with ``crossfit``): both accuracies (percent, means over seeds) and their paired
    difference cross-fitted minus in-sample (points), per source test image over the seeds, with the
    claims engine's two-level bootstrap interval and MDE (:func:`clickvision.claims.judge`; judged,
    not recorded: a measurement, not a paper claim); ``sign`` as :func:`control_contrasts`'."""
    from ...claims import Claim, judge
    from .claims import scores

    out = []
    for rep in representations:
        cf = rep + CROSSFIT
        d = scores(rows, "correct_s", {cf: {"representation": cf}, rep: {"representation": rep}})
        j = judge(Claim("A", "measured", f"{cf} vs {rep}, Acc-S", "direction", arms=(cf, rep)), d)
        means = d.groupby("method")["value"].mean()
        out.append({"representation": rep, "Acc-S in-sample (%)": 100 * means[rep],
                    "Acc-S cross-fitted (%)": 100 * means[cf], "difference (points)": 100 * j.estimate,
                    "90% CI low": 100 * j.ci_low, "90% CI high": 100 * j.ci_high, "MDE (points)": 100 * j.mde,
                    "sign": SIGN[j.verdict], "seeds": j.n_seeds, "test images": j.n_items})
    return pd.DataFrame(out).set_index("representation")


# --- A.04: the position-sensitive loss (Fig. 7, Tables IV-V, Fig. 10) ---------------------------------

def binarizer_curves(settings: Sequence[tuple[float, float]], x: np.ndarray | None = None) -> pd.DataFrame:
    """Fig. 7: the indicator (a) and the smooth binariser of eq. (11) (b) for (B, T) settings."""
    import torch

    x = np.linspace(-0.05, 0.1, 601) if x is None else np.asarray(x, dtype=float)
    xt = torch.from_numpy(x)
    rows = [pd.DataFrame({"x": x, "value": click_losses.indicator_binarize(xt).numpy(), "curve": "indicator"})]
    for b, t in settings:
        rows.append(pd.DataFrame({"x": x, "value": click_losses.smooth_binarize(xt, b, t).numpy(),
                                  "curve": f"sigmoid B={b:g}, T={t:g}"}))
    return pd.concat(rows, ignore_index=True)


def loss_sweep(data: PaperAData, cfg: HeadConfig, specs: dict, seeds: Sequence[int], column: str,
               gd_fraction: float | None = None, keep_seed: int | None = None,
               item_metrics: Sequence[str] = (), val_items: bool = False,
               gd_epochs: int | None = None) -> tuple[pd.DataFrame, dict]:
    """TDL runs for each ``specs[value] = ClickLossSpec`` (Tables IV, V): tidy rows and extras.

    ``gd_fraction``: record each weighted term's gradient norm at that fraction of the run
    (footnote 7: iteration 1,500 of 10,000) of ``gd_epochs`` epochs (None: the click predictors' cap; under a
    stop rule the run's length is not known in advance, so a notebook passes the fixed-epoch run's length
    and the step stays where it was). ``keep_seed``: keep that seed's predictions.
    ``item_metrics``: click metrics also per source test image (``item_<m>`` rows with ``item``,
    :func:`click_item_rows`; Fig. 10's claims read them). ``val_items``: recognizer correctness per
    validation image too (``val_correct_<dom>``, what :func:`clickvision.selection.select_robust` reads).
    """
    if any(m not in ITEM_METRICS for m in item_metrics):  # fail before the first run, not after it
        raise ValueError(f"item_metrics must be among {ITEM_METRICS}, got {list(item_metrics)}")
    steps_per_epoch = -(-len(data.source.rows("train")) // cfg.batch_size)
    total = steps_per_epoch * (gd_epochs or cfg.click_cap)
    gd_step = max(1, round(gd_fraction * total)) if gd_fraction else None
    rows, kept = [], {}
    with torch_threads(1):
        for seed in runtime.progress(seeds, desc="click-loss settings: seeds"):
            for value, spec in specs.items():
                with history_labels(setting=f"{column}={value:g}", seed=seed):  # each setting its own curves
                    out, extras = tdl_run(data, cfg, spec, seed, gd_steps={gd_step} if gd_step else None,
                                          keep=seed == keep_seed, item_metrics=item_metrics, val_items=val_items)
                rows += [{**r, column: value} for r in out]
                g = extras["grad_terms"]
                if gd_step and {"count", "position"} <= set(g.get("term", [])):
                    norms = g.set_index("term")["grad_norm"]
                    rows.append({"representation": "click", "seed": seed, "metric": "gd_ratio",
                                 "value": float(norms["position"] / norms["count"]), column: value})
                if seed == keep_seed:
                    kept[value] = extras
    return pd.DataFrame(rows), {"kept": kept, "gd_step": gd_step, "total_steps": total}


def select_confirmed(rows: pd.DataFrame, column: str, paper_value: float, seeds: Sequence[int],
                     run_more: Callable[[float, list[int]], pd.DataFrame], metric: str = "val_correct_t",
                     representation: str = "C", z: float = 1.0) -> tuple[Selection, pd.DataFrame]:
    """:func:`select_setting`, with a value chosen on fewer than all ``seeds`` confirmed on them before it is
    kept: a sweep that runs most values on one seed (A.04's Tables IV and V) would otherwise choose on one
    training run, whose standard error over the validation items leaves out the seed-to-seed spread. While
    the chosen value (or the reference it is judged against: the paired difference uses the seeds both ran)
    lacks some of ``seeds``, ``run_more(value, missing_seeds)`` runs them (rows with ``column``) and the
    choice is made again on every row (the reference, or another value, may then win).
    Returns the selection and the rows with the added runs."""
    want = {int(s) for s in seeds}

    def missing(value) -> list[int]:
        ran = rows.loc[(rows[column] == value) & (rows["metric"] == metric), "seed"]
        return sorted(want - {int(s) for s in pd.unique(ran)})

    for _ in range(len(pd.unique(rows[column])) + 2):  # each round confirms one value: it ends
        sel = select_setting(rows, column, paper_value, metric, representation, z)
        todo = [v for v in dict.fromkeys([sel.reference, sel.value]) if missing(v)]  # the reference too: pairs
        if not todo:                                                   # are judged on the seeds both ran
            return sel, rows
        rows = pd.concat([rows, *(run_more(v, missing(v)) for v in todo)], ignore_index=True)
    raise RuntimeError(f"select_confirmed: {column} did not settle on a value run with every seed {sorted(want)}")


def select_setting(rows: pd.DataFrame, column: str, paper_value: float, metric: str = "val_correct_t",
                   representation: str = "C", z: float = 1.0) -> Selection:
    """A.04's choice of B, T or tau on validation: the paper's value (or the grid value nearest it) is kept
    unless another value of ``column`` beats it on per-image validation accuracy (``metric`` rows of the
    ``representation`` recognizer, from :func:`loss_sweep` with ``val_items``) by more than ``z`` standard
    errors of the paired difference, on the seeds both ran (:func:`clickvision.selection.select_robust`).
    The plain best-mean rule used before flipped B, T and tau between two CPUs."""
    sub = rows[rows["representation"] == representation] if "representation" in rows.columns else rows
    if sub.empty or column not in sub.columns:
        raise ValueError(f"select_setting: no rows of representation {representation!r} with column {column!r}")
    if not (sub["metric"] == metric).any():
        raise ValueError(f"select_setting: no {metric!r} rows to select {column} on (per-image validation rows come "
                         "from loss_sweep(..., val_items=True))")
    return select_near(sub, column, paper_value, metric, z=z)


def position_examples(v_true: np.ndarray, predictions: dict[str, np.ndarray], rows: Sequence[int],
                      n_words: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Fig. 10: ground truth and predicted click features on ``n_words`` random vocabulary words.

    The words are drawn among those nonzero in the chosen rows' truth (so the truth shows),
    topped up at random. Returns tidy ``row, word, source, value`` and the word indices.
    """
    rng = np.random.default_rng(seed)
    present = np.flatnonzero(np.abs(v_true[list(rows)]).sum(0) > 0)
    words = rng.choice(present, size=min(n_words // 2, len(present)), replace=False)
    rest = np.setdiff1d(np.arange(v_true.shape[1]), words)
    words = np.sort(np.concatenate([words, rng.choice(rest, size=n_words - len(words), replace=False)]))
    out = []
    for r in rows:
        out.append(pd.DataFrame({"row": r, "word": words, "source": "ground truth", "value": v_true[r, words]}))
        for name, pred in predictions.items():
            out.append(pd.DataFrame({"row": r, "word": words, "source": name, "value": pred[r, words]}))
    return pd.concat(out, ignore_index=True), words


# --- A.06: visual + click features (Table VI) ----------------------------------------------------------

def visual_click_table(data: PaperAData, cfg: HeadConfig, seeds: Sequence[int], position: ClickLossSpec,
                       kind: str = "conv_bifc") -> pd.DataFrame:
    """Table VI: V, C[7] (linear, eq. 2), C_E (nonlinear, eq. 2), C (nonlinear, eq. 12), and V + each."""
    names = {"C[7]": ("fc", ClickLossSpec(tau=0.0)), "C_E": (kind, ClickLossSpec(tau=0.0)), "C": (kind, position)}
    rows = []
    with torch_threads(1):
        for seed in runtime.progress(seeds, desc="Table VI: seeds"):
            with history_labels(method="V", seed=seed):
                rows += [{**r, "features": "V"} for r in visual_baseline(data, cfg, seed)]
            for name, (k, spec) in names.items():
                with history_labels(method=name, seed=seed):
                    out, _ = tdl_run(data, cfg, spec, seed, k, representations=("C", "V+C"))
                for r in out:
                    rep = r["representation"]
                    label = name if rep in ("C", "click") else f"V+{name}"
                    rows.append({**r, "features": label})
    return pd.DataFrame(rows)


# --- claims ------------------------------------------------------------------------------------------

def _mean(summary: pd.DataFrame, column: str, value, metric: str) -> float:
    sub = summary[(summary[column] == value) & (summary["metric"] == metric)]
    return float(sub["mean"].iloc[0]) if len(sub) else float("nan")


def _sd(summary: pd.DataFrame, column: str, value, metric: str) -> float:
    sub = summary[(summary[column] == value) & (summary["metric"] == metric)]
    return float(sub["std"].iloc[0]) if len(sub) else float("nan")


def fmt_pct(summary: pd.DataFrame, column: str, value, metric: str) -> str:
    """``"57.3 +- 1.2"`` (percent, mean +- sd over seeds)."""
    return f"{100 * _mean(summary, column, value, metric):.1f} +- {100 * _sd(summary, column, value, metric):.1f}"
