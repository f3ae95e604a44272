"""Paper D's CF phase: Table 3 (CF models by held-out AUC), the items' CF vectors, Table 4 (CF2Label).

MovieLens (real ratings) is the honest check; the Open Clip Art interactions are SIMULATED.
Every function returns a tidy DataFrame; the notebooks narrate and plot.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from scipy.stats import norm

from ... import metrics as M
from ... import paths, stats
from ...io import atomic_path
from ...models import cf, collab
from .data import LabelledItems, bootstrap_table, item_ap_rows, standardize


# ----------------------------------------------------------------------------- CF models (Table 3)
@dataclass
class CFSettings:
    """CF hyper-parameters (paper D: latent 64 for BPR, VAE latent 32 / hidden 64 -> 65-d vectors)."""

    bpr_k: int = 64
    bpr_epochs: int = 30
    bpr_lr: float = 0.01
    bpr_reg: float = 1e-2
    bpr_batch: int = 2048
    vae_latent: int = 32
    vae_hidden: int = 64
    vae_epochs: int = 30
    vae_lr: float = 0.01
    vae_batch: int = 128
    vae_beta: float = 1.0
    vae_anneal_epochs: float = 0.0
    vae_input_dropout: float = 0.5  # share of a user's items dropped from the encoder's input in training
    vae_input_norm: str = "l2"  # 'l2': input rows divided by their l2 norm (Liang et al.); 'none': raw (Cornac's VAECF)
    patience: int = 2
    min_delta: float = 1e-3  # early stopping: a validation AUC gain below this is no gain
    max_val_users: int = 500
    ease_lams: tuple = (300.0, 1000.0)  # EASE's l2 weights, one chosen by validation AUC (a development
    # grid 30-1000 on the simulated Toys-density events peaked at 300-1000 by validation AUC)
    ease_k: int = 64  # EASE's CF vector: rank-k columns of B (+ the log count)
    device: str = "auto"


# The CF fit behind the auxiliary target of D.03/D.04 (Table 5, Figs. 3-4): the VAE at lr 0.01 gains little
# per epoch on sparse data, so patience 2 with min_delta 1e-3 stopped it at a near-initial epoch; here any
# gain counts and 6 epochs without one end the run (the best epoch is restored and logged).
TARGET_CF_SETTINGS = {"patience": 6, "min_delta": 0.0, "bpr_epochs": 40, "vae_epochs": 40}


CF_MODELS = ("bpr", "vae", "ease")


def fit_cf(model: str, train: sp.csr_matrix, val: sp.csr_matrix | None, s: CFSettings, seed: int = 0
           ) -> tuple[torch.nn.Module, pd.DataFrame]:
    """Fit 'bpr' or 'vae' (early stopping on validation AUC when ``val`` is given) or 'ease'
    (closed form, its l2 weight chosen among ``s.ease_lams`` by validation AUC)."""
    if model == "ease":
        return cf.fit_ease(train, s.ease_lams, val, s.max_val_users, seed)
    if model == "bpr":
        return cf.fit_bpr(train, k=s.bpr_k, epochs=s.bpr_epochs, lr=s.bpr_lr, reg=s.bpr_reg, seed=seed,
                          batch_size=s.bpr_batch, device=s.device, val=val, patience=s.patience,
                          max_val_users=s.max_val_users, min_delta=s.min_delta)
    if model == "vae":
        return cf.fit_vae(train, latent=s.vae_latent, hidden=s.vae_hidden, epochs=s.vae_epochs, lr=s.vae_lr,
                          beta_max=s.vae_beta, anneal_epochs=s.vae_anneal_epochs, seed=seed, device=s.device,
                          batch_size=s.vae_batch, val=val, patience=s.patience,
                          max_val_users=s.max_val_users, min_delta=s.min_delta,
                          input_dropout=s.vae_input_dropout, input_norm=s.vae_input_norm)
    raise ValueError(f"model must be one of {CF_MODELS}, got {model!r}")


def vae_label(s: CFSettings) -> str:
    """A VAE row's name: the input (l2-normalised or raw, dropout) and the KL weight it ran with;
    Cornac's VAECF setting (:data:`clickvision.models.cf.VAECF_SETTING`) is named as such."""
    mine = {"input_norm": s.vae_input_norm, "input_dropout": s.vae_input_dropout, "beta_max": s.vae_beta,
            "anneal_epochs": s.vae_anneal_epochs}
    if mine == cf.VAECF_SETTING:
        return "VAE, VAECF's setting (raw input, no dropout, beta 1)"
    beta = f"beta {s.vae_beta:g}" + (" annealed" if s.vae_anneal_epochs > 0 else "")
    name = "Mult-VAE" if s.vae_input_norm == "l2" and s.vae_input_dropout > 0 else "VAE"
    return f"{name} ({'l2-normalised' if s.vae_input_norm == 'l2' else 'raw'} input, dropout {s.vae_input_dropout:g}, {beta})"


def cf_auc_table(events: pd.DataFrame, settings: CFSettings | None = None, seed: int = 0,
                 heldout_fraction: float = 0.2, val_fraction: float = 0.1, max_test_users: int | None = 2000,
                 vae_betas: tuple = (0.2, 1.0), cornac_epochs: int = 0, n_seeds: int = 1,
                 vaecf_setting: bool = False, rating_threshold: float | None = None,
                 cornac_vae_epochs: int | None = None) -> pd.DataFrame:
    """Table 3: AUC of most-popular, BPR and VAE on a random 20% of the interactions.

    A further ``val_fraction`` of the training interactions is the validation split (early
    stopping, and the choice of the VAE's KL weight among ``vae_betas``: Liang et al.'s
    Mult-VAE -- l2-normalised input, dropout 0.5 -- with the KL weight 0.2 annealed vs a constant 1;
    the choice uses training seed ``seed``). The test AUC (:func:`clickvision.models.cf.heldout_auc`)
    excludes a user's training and validation items from the negatives; ``attrs['val_as_negatives']``:
    method -> the test AUC of its first fit with the validation items counted as negatives (the
    protocol before; kept to show the change).
    ``n_seeds`` > 1: BPR and the chosen VAE are refit with the training seeds ``seed + 1, ...``
    on the same split; their ``test_auc`` is the mean over seeds (``test_auc_min``/``_max``:
    the spread) and ``attrs['per_user']`` the per-user AUC averaged over seeds.
    ``vaecf_setting``: also fit our VAE at Cornac's VAECF setting (raw input, no dropout, constant KL
    weight 1; our training) -- a comparison row, not a candidate of the choice.
    ``cornac_epochs`` > 0: also fit Cornac's BPR and VAECF at their documented defaults
    (:func:`cornac_models`) for that many epochs (VAECF: ``cornac_vae_epochs`` when given) on the same
    training split.
    ``rating_threshold``: also score every row under Cornac's own protocol (:func:`cornac_protocol_auc`:
    Cornac's ``ranking_eval`` and ``AUC`` on this split, items rated below the threshold negatives,
    ties losses) -> column ``cornac_protocol_auc`` (our models: the fit with training seed ``seed``).
    Ratings are the events' ``rating`` column, 1 for every event without one.
    Rows: method, val_auc, test_auc, test_auc_min, test_auc_max, n_seeds, fit_s, selected,
    cornac_protocol_auc. ``attrs['per_user_seeds']``: method -> {training seed: per-user test AUC}
    (:func:`per_user_auc_rows`); ``attrs['cornac_users']``: method -> users Cornac's protocol scored
    (those of our scored users it knows with a test item at or above the threshold).
    """
    if n_seeds < 1:
        raise ValueError(f"n_seeds must be >= 1, got {n_seeds}")
    s = settings or CFSettings()
    mat = cf.interaction_matrix(events)
    full = mat.matrix
    train_all, test = cf.split_heldout(full, heldout_fraction, seed)
    train, val = cf.split_heldout(train_all, val_fraction, seed + 1)
    # every model is scored on the same matrices: their users and masks are built once
    val_auc = cf.heldout_scorer(train, val, max_users=s.max_val_users, seed=seed)
    test_auc = cf.heldout_scorer(train, test, max_users=max_test_users, seed=seed, per_user=True, exclude=val)
    val_as_negatives = cf.heldout_scorer(train, test, max_users=max_test_users, seed=seed)
    per_user, seed_aucs, first = {}, {}, {}

    def test_users(name, model):  # the same seeded user subset for every model and training seed
        values = test_auc(model)
        per_user.setdefault(name, []).append(values)
        seed_aucs.setdefault(name, []).append(float(np.nanmean(values)))

    def row(name, model, t, selected=True):
        test_users(name, model)
        first[name] = model
        return [name, val_auc(model), t, selected]

    rows = [row("most popular", *cf.timed(cf.MostPopular, train))]
    (bpr, _), t = cf.timed(fit_cf, "bpr", train, val, s, seed)
    rows.append(row("BPR", bpr, t))
    vaes, vae_settings = [], []
    for beta in vae_betas:
        vae_settings.append(CFSettings(**{**asdict(s), "vae_beta": beta, "vae_anneal_epochs": 5.0 if beta < 1 else 0.0}))
        (vae, _), t = cf.timed(fit_cf, "vae", train, val, vae_settings[-1], seed)
        vaes.append(row(vae_label(vae_settings[-1]), vae, t, False))
    best = max(range(len(vaes)), key=lambda i: vaes[i][1])
    vaes[best][3] = True
    rows += vaes
    if vaecf_setting:
        vs = CFSettings(**{**asdict(s), "vae_input_norm": cf.VAECF_SETTING["input_norm"],
                           "vae_input_dropout": cf.VAECF_SETTING["input_dropout"],
                           "vae_beta": cf.VAECF_SETTING["beta_max"], "vae_anneal_epochs": cf.VAECF_SETTING["anneal_epochs"]})
        (vae, _), t = cf.timed(fit_cf, "vae", train, val, vs, seed)
        rows.append(row(vae_label(vs), vae, t, False))
    for sd in range(seed + 1, seed + n_seeds):  # more training seeds for BPR and the chosen VAE
        test_users("BPR", fit_cf("bpr", train, val, s, sd)[0])
        test_users(vaes[best][0], fit_cf("vae", train, val, vae_settings[best], sd)[0])
    rows = [(n, v, float(np.mean(seed_aucs[n])), min(seed_aucs[n]), max(seed_aucs[n]), len(seed_aucs[n]), t, sel)
            for n, v, t, sel in rows]
    extra = cornac_models(cornac_epochs, seed, cornac_vae_epochs) if cornac_epochs > 0 else {}
    cornac_auc, cornac_n, users = {}, {}, cf.scored_users(train, test, max_test_users, seed)
    old = {k: val_as_negatives(m) for k, m in first.items()}
    if rating_threshold is not None or extra:
        values = None
        if "rating" in events.columns:  # each interaction's rating (the last of repeats), at the matrix's positions
            events = events.drop_duplicates(["user", "item"], keep="last")
            at = (pd.Index(mat.user_ids).get_indexer(events["user"]), pd.Index(mat.item_ids).get_indexer(events["item"]))
            values = sp.csr_matrix((events["rating"].to_numpy(np.float64), at), shape=full.shape)
        method = cornac_method(train, val, test, values, 1.0 if rating_threshold is None else rating_threshold,
                               users, seed)
        for name, model in extra.items():  # Cornac's models: fit by Cornac's evaluation, then scored by ours too
            cornac_auc[name], t, cornac_n[name] = cornac_protocol_auc(method, model)
            scores = CornacScores(model, train.shape[1])
            a = float(np.nanmean(test_auc(scores)))
            old[name] = val_as_negatives(scores)
            rows.append((name, np.nan, a, a, a, 1, t, False))
        if rating_threshold is not None:
            for name, model in first.items():
                cornac_auc[name], _, cornac_n[name] = cornac_protocol_auc(method, as_cornac(model, train, name))
    out = pd.DataFrame(rows, columns=["method", "val_auc", "test_auc", "test_auc_min", "test_auc_max", "n_seeds",
                                      "fit_s", "selected"])
    out["cornac_protocol_auc"] = [cornac_auc.get(m, np.nan) if rating_threshold is not None else np.nan
                                  for m in out["method"]]
    out.attrs.update(vae_beta=vae_betas[best], vae_method=vaes[best][0], seed_aucs=seed_aucs,
                     per_user={k: np.mean(np.vstack(v), 0) if len(v) > 1 else v[0] for k, v in per_user.items()},
                     per_user_seeds={k: {seed + i: u for i, u in enumerate(v)} for k, v in per_user.items()},
                     cornac_users=cornac_n, rating_threshold=rating_threshold, val_as_negatives=old)
    return out


def per_user_auc_rows(table: pd.DataFrame, methods: dict) -> pd.DataFrame:
    """Tidy per-user test AUC rows (method, seed, item = user, value) for :mod:`clickvision.claims`.

    ``methods`` maps a claim's arm name to a row of ``table`` (e.g. ``{"VAE": "VAE (beta 1.0)"}``).
    A method fit once (deterministic, e.g. most popular) is repeated for every training seed of
    the others, so every arm has the same seeds; users whose AUC is undefined under any arm are
    dropped (the same users for every arm and seed).
    """
    pus = table.attrs["per_user_seeds"]
    seeds = sorted(set().union(*(pus[m].keys() for m in methods.values())))
    grid = {}
    for arm, m in methods.items():
        by_seed = pus[m]
        if len(by_seed) == 1:  # fit once: the same scores at every seed
            only = next(iter(by_seed.values()))
            by_seed = {sd: only for sd in seeds}
        if sorted(by_seed) != seeds:
            raise ValueError(f"{m!r} was fit with seeds {sorted(by_seed)}, the others with {seeds}")
        grid[arm] = np.vstack([by_seed[sd] for sd in seeds])
    ok = np.all([np.isfinite(v).all(0) for v in grid.values()], axis=0)
    users = np.flatnonzero(ok)
    return pd.concat([pd.DataFrame({"method": arm, "seed": np.repeat(seeds, len(users)),
                                    "item": np.tile(users, len(seeds)), "value": v[:, ok].ravel()})
                      for arm, v in grid.items()], ignore_index=True)


def cornac_models(epochs: int = 100, seed: int = 0, vae_epochs: int | None = None) -> dict:
    """Cornac 3's BPR and VAECF at their documented defaults (the constructors' defaults; the
    docstrings' ``max_iter``/``n_epochs`` default is 100): BPR k 10, SGD lr 0.001, ``lambda_reg``
    0.01 (its docstring says 0.001; the code's default is 0.01), item bias; VAECF k 10, encoder
    ``[20]``, tanh, multinomial likelihood, beta 1, Adam lr 0.001, batch 100. Only the epochs are
    set (``epochs``; ``vae_epochs`` for VAECF when given) and the seed (which makes Cornac's BPR
    single-threaded)."""
    import cornac

    return {f"Cornac BPR (defaults, {epochs} epochs)": cornac.models.BPR(max_iter=epochs, seed=seed, verbose=False),
            f"Cornac VAECF (defaults, {vae_epochs or epochs} epochs)": cornac.models.VAECF(n_epochs=vae_epochs or epochs,
                                                                                          seed=seed)}


def cornac_method(train: sp.csr_matrix, val: sp.csr_matrix, test: sp.csr_matrix, values: sp.csr_matrix | None,
                  rating_threshold: float = 1.0, users: np.ndarray | None = None, seed: int = 0):
    """Cornac's evaluation on our split: ``cornac.eval_methods.BaseMethod.from_splits`` of the
    (user, item, rating) triples of ``train``, ``test`` (only ``users`` when given) and ``val``,
    ``exclude_unknowns=True``. Users and items are our matrix's row and column numbers as strings;
    ratings come from ``values`` (same shape, a rating at every interaction; None: all 1)."""
    import cornac

    def uir(m, rows=None):
        m = sp.csr_matrix(m.multiply(values) if values is not None else m).tocoo()
        keep = np.isin(m.row, rows) if rows is not None else np.ones(m.nnz, bool)
        return list(zip(m.row[keep].astype(str), m.col[keep].astype(str), m.data[keep].astype(float)))
    return cornac.eval_methods.BaseMethod.from_splits(
        train_data=uir(train), test_data=uir(test, users), val_data=uir(val), rating_threshold=rating_threshold,
        exclude_unknowns=True, seed=seed, verbose=False)


def cornac_protocol_auc(method, model) -> tuple[float, float, int]:
    """(AUC, fit seconds, users scored) of ``model`` (a ``cornac.models.Recommender``) under Cornac's own evaluation
    ``method`` (:func:`cornac_method`): ``method.evaluate`` fits the model on ``method.train_set`` and
    runs ``ranking_eval`` with ``cornac.metrics.AUC``: per test user, positives are the test items rated
    at or above the threshold; negatives every known item not rated at or above it in training,
    validation or test (so items rated below it, even training ones, are negatives); a tie is a loss;
    the mean over users with a positive."""
    import cornac

    result, _ = method.evaluate(model, [cornac.metrics.AUC()], user_based=True, show_validation=False)
    return (float(result.metric_avg_results["AUC"]), float(result.metric_avg_results["Train (s)"]),
            len(result.metric_user_results["AUC"]))


class CornacScores:
    """A fitted Cornac model as our scorer (``score_users``): its scores at our columns (``-inf`` at
    items it never saw; Cornac's ids are our row and column numbers as strings, :func:`cornac_method`)."""

    def __init__(self, model, n_items: int) -> None:
        self.model, self.n_items = model, n_items
        self.uidx = {int(u): i for u, i in model.uid_map.items()}
        self.icol = np.empty(len(model.iid_map), np.int64)
        for i, j in model.iid_map.items():
            self.icol[j] = int(i)
        self.icol = self.icol[:model.num_items]

    def score_users(self, _train, users) -> np.ndarray:
        out = np.full((len(users), self.n_items), -np.inf)
        for r, u in enumerate(users):
            if int(u) in self.uidx and self.uidx[int(u)] < self.model.num_users:
                out[r, self.icol] = self.model.score(self.uidx[int(u)])[:len(self.icol)]
        return out


def as_cornac(model, train: sp.csr_matrix, name: str = "ours"):
    """Our fitted model (``score_users``) as a ``cornac.models.Recommender`` for Cornac's evaluation:
    ``fit`` trains nothing (it learns Cornac's id maps: our row and column numbers as strings), ``score``
    returns ``model.score_users(train, [row])`` at Cornac's known items."""
    import cornac

    class Ours(cornac.models.Recommender):
        def __init__(self):
            super().__init__(name=name, trainable=False)

        def fit(self, train_set, val_set=None):
            super().fit(train_set, val_set)
            self.rows = np.empty(len(train_set.uid_map), np.int64)
            for u, i in train_set.uid_map.items():
                self.rows[i] = int(u)
            self.cols = np.empty(len(train_set.iid_map), np.int64)
            for c, j in train_set.iid_map.items():
                self.cols[j] = int(c)
            self.cols = self.cols[:train_set.num_items]
            return self

        def score(self, user_idx, item_idx=None):
            s = np.asarray(model.score_users(train, np.array([self.rows[user_idx]]))[0], np.float64)[self.cols]
            return s if item_idx is None else s[item_idx]
    return Ours()


# ----------------------------------------------------------------------------- CF vectors of items
# CFSettings fields added after caches were written: they enter a cache key only when they differ from
# their defaults (the defaults are what those caches ran with), so existing caches stay valid
_LATER_FIELDS = {"vae_input_dropout": 0.5, "vae_input_norm": "l2"}


def _cache_settings(s: CFSettings) -> dict:
    return {k: v for k, v in asdict(s).items() if not (k in _LATER_FIELDS and v == _LATER_FIELDS[k])}


def fit_log(model: str, history: pd.DataFrame) -> dict:
    """What a CF fit did: the best (restored) and the last epoch, whether patience stopped it, the
    best validation AUC, and for the VAE the KL term (mean over the batches) at the best epoch and
    at the last; for EASE the chosen l2 weight."""
    if model == "ease":
        return {"model": model, "best_epoch": 0, "stopped_epoch": 0, "stopped_early": False,
                "best_val_auc": float(history["auc"].max()) if history["auc"].notna().any() else float("nan"),
                "lam": float(history.attrs["best_lam"])}
    steps = history.groupby("step")["epoch"].max()
    best_step, last_step = history.attrs.get("best_step"), history.attrs.get("stopped_step")

    def epoch_of(step: int | None) -> int:
        return int(steps.loc[:step].iloc[-1]) if step is not None and (steps.index <= step).any() else -1

    out = {"model": model, "best_epoch": epoch_of(best_step), "stopped_epoch": epoch_of(last_step),
           "stopped_early": bool(history.attrs.get("stopped_early", False)),
           "best_val_auc": float(history.attrs.get("best_value", float("nan")))}
    if model == "vae":
        kl = history.attrs.get("kl_by_epoch", [])  # epoch e (1-based) at kl[e - 1]
        out.update(kl_best_epoch=float(kl[out["best_epoch"] - 1]) if 0 < out["best_epoch"] <= len(kl) else float("nan"),
                   kl_last_epoch=float(kl[-1]) if kl else float("nan"))
    return out


def item_cf_fit(events: pd.DataFrame, item_keys: np.ndarray, model: str = "vae",
                settings: CFSettings | None = None, seed: int = 0, cache_tag: str | None = None
                ) -> tuple[np.ndarray, np.ndarray, dict]:
    """(CF vectors, interactions per item, :func:`fit_log`) of ``item_keys``, from events on those items only.

    Early stopping (and EASE's l2 weight) on 10% of the interactions held out as validation.
    ``cache_tag``: cache the result under ``data/cache/paper_d/`` keyed by the inputs.
    """
    s = settings or CFSettings()
    key = None
    if cache_tag is not None:
        blob = json.dumps([cache_tag, model, _cache_settings(s), seed, hashlib.sha256(
            pd.util.hash_pandas_object(events[["user", "item"]], index=False).values.tobytes()
            + "|".join(map(str, item_keys)).encode()).hexdigest()], sort_keys=True)
        key = paths.CACHE_DIR / "paper_d" / f"{cache_tag}-{model}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}.npz"
        if key.exists():
            with np.load(key) as z:
                return z["q"], z["n"], (json.loads(str(z["log"])) if "log" in z.files else {})
    mat = cf.interaction_matrix(events, item_ids=np.asarray(item_keys)).matrix
    train, val = cf.split_heldout(mat, 0.1, seed + 1)
    fitted, history = fit_cf(model, train, val, s, seed)
    q = fitted.item_vectors(s.ease_k) if model == "ease" else fitted.item_vectors()
    n, log = np.asarray(mat.sum(axis=0)).ravel(), fit_log(model, history)
    if key is not None:
        with atomic_path(key, suffix=".npz") as tmp:
            np.savez(tmp, q=q, n=n, log=np.array(json.dumps(log)))
    return q, n, log


def item_cf_vectors(events: pd.DataFrame, item_keys: np.ndarray, model: str = "vae",
                    settings: CFSettings | None = None, seed: int = 0, cache_tag: str | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(CF vectors, interactions per item) of ``item_keys`` (:func:`item_cf_fit` without its log)."""
    q, n, _ = item_cf_fit(events, item_keys, model, settings, seed, cache_tag)
    return q, n


# ----------------------------------------------------------------------------- the information gate
def information_gate(q: np.ndarray, y: np.ndarray, seed: int = 0, epochs: int = 20, n_folds: int = 5,
                     n_resamples: int = 200, ci: float = 0.9) -> dict:
    """How much label information an auxiliary target ``q`` carries, measured before it is used.

    The out-of-fold CF2Label mAP (:func:`clickvision.models.collab.out_of_fold_scores`: every item
    scored by a CF2Label that never saw it) of the items' labels ``y`` from ``q`` alone, against
    the label prior (the mAP of scoring every item by the class frequencies: the mean class
    frequency). Interval over the items: a normal interval whose standard error is the spread of
    the mAP over ``n_resamples`` half-samples of the items drawn without replacement
    (:func:`clickvision.stats.bootstrap_indices`; repeated rows would tie and lift AP), of the mAP
    and, paired in each half-sample, of mAP - prior. ``open``: the
    interval of mAP - prior lies above 0 (the target carries label information). ``q`` is
    standardised here. Returns map, prior, ratio, lo, hi, diff, diff_lo, diff_hi, open, n_items, ci and the
    out-of-fold ``scores`` themselves.
    """
    q, y = np.asarray(q, dtype=np.float64), np.asarray(y, dtype=bool)
    if q.ndim != 2 or y.ndim != 2 or len(q) != len(y):
        raise ValueError(f"information_gate: q and y must be 2-d with equal rows, got {q.shape}, {y.shape}")
    if not np.isfinite(q).all():
        raise ValueError("information_gate: q has NaN or infinite entries")
    oof = collab.out_of_fold_scores(standardize(q, np.arange(len(q))), y, n_folds=n_folds, seed=seed, epochs=epochs)
    # half-samples without replacement: a resample with repeated rows ties them with themselves and
    # lifts AP (the plain bootstrap distribution sat above the estimate); a half-sample's spread
    # around the full-sample value is the full-sample standard error for a mean-like statistic
    idx = stats.bootstrap_indices(len(y), n_resamples, fraction=0.5, seed=seed, replace=False)
    prior_scores = np.tile(y.mean(0), (len(y), 1))
    boot = stats.bootstrap_metric(M.average_precision_macro, y, {"gate": oof, "prior": prior_scores}, idx)
    wide = boot.pivot(index="resample", columns="method", values="value")
    z = float(norm.ppf(1 - (1 - ci) / 2))
    mean_ap, prior = M.average_precision_macro(y, oof), float(y[:, y.any(0)].mean(0).mean())
    diff = mean_ap - prior
    se, se_diff = float(wide["gate"].std(ddof=1)), float((wide["gate"] - wide["prior"]).std(ddof=1))
    lo, hi, dlo, dhi = mean_ap - z * se, mean_ap + z * se, diff - z * se_diff, diff + z * se_diff
    return {"map": mean_ap, "prior": prior, "ratio": mean_ap / prior, "lo": float(lo), "hi": float(hi),
            "diff": diff, "diff_lo": float(dlo), "diff_hi": float(dhi), "open": bool(dlo > 0),
            "n_items": len(y), "ci": ci, "scores": oof}


def gate_line(gate: dict, name: str = "auxiliary target") -> str:
    """One printed line of :func:`information_gate`."""
    return (f"information gate ({name}): out-of-fold CF2Label mAP {gate['map']:.3f} "
            f"({gate['ci']:.0%} CI {gate['lo']:.3f}-{gate['hi']:.3f}) vs label prior {gate['prior']:.3f} "
            f"({gate['ratio']:.1f}x; difference {gate['diff']:+.3f}, {gate['diff_lo']:+.3f} to {gate['diff_hi']:+.3f}) "
            f"over {gate['n_items']:,} training images: {'OPEN' if gate['open'] else 'CLOSED'}")


# ----------------------------------------------------------------------------- Table 4: CF2Label
def cf2label_table(items: LabelledItems, events: pd.DataFrame, settings: CFSettings | None = None,
                   seed: int = 0, epochs: int = 40, n_resamples: int = 50) -> pd.DataFrame:
    """Table 4: mAP of popularity, CF2Label-BPR and CF2Label-VAE on the test items.

    The pre-study sees every item's interactions (4.2): the CF models are fit on all events
    (10% held out for early stopping); CF2Label trains on the training items, stops on the
    validation items. Popularity scores each class by its training frequency.
    ``attrs['items']``: per-class AP rows on the test items (:func:`item_ap_rows` ``per="class"``,
    seed ``seed``; their mean is the table's mAP) for the claims: the popularity baseline gives
    every item the same scores, so only a per-class average scores it as the paper's mAP does.
    """
    tr, va, te = items.rows("train"), items.rows("val"), items.rows("test")
    prior = items.y[tr].mean(0)
    scores = {"Popularity based": np.tile(prior, (len(te), 1))}
    for model in ("bpr", "vae"):
        q, _ = item_cf_vectors(events, items.keys, model, settings, seed)
        q = standardize(q, tr)
        net, _ = collab.fit_cf2label(q[tr], items.y[tr], q[va], items.y[va], epochs=epochs, seed=seed)
        scores[f"CF2Label {model.upper()}"] = collab.predict_scores(net, q[te])
    table = bootstrap_table(items.y[te], scores, "Popularity based", n_resamples, seed=seed)
    table.attrs["items"] = item_ap_rows(items.y[te], {k: {seed: v} for k, v in scores.items()}, per="class")
    return table
