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

from .. import paths
from ..io import atomic_path
from ..models import cf, collab
from .paper_d_data import LabelledItems, bootstrap_table, item_ap_rows, standardize


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
    patience: int = 2
    min_delta: float = 1e-3  # early stopping: a validation AUC gain below this is no gain
    max_val_users: int = 500
    device: str = "auto"


def fit_cf(model: str, train: sp.csr_matrix, val: sp.csr_matrix | None, s: CFSettings, seed: int = 0
           ) -> tuple[torch.nn.Module, pd.DataFrame]:
    """Fit 'bpr' or 'vae' (early stopping on validation AUC when ``val`` is given)."""
    if model == "bpr":
        return cf.fit_bpr(train, k=s.bpr_k, epochs=s.bpr_epochs, lr=s.bpr_lr, reg=s.bpr_reg, seed=seed,
                          batch_size=s.bpr_batch, device=s.device, val=val, patience=s.patience,
                          max_val_users=s.max_val_users, min_delta=s.min_delta)
    if model == "vae":
        return cf.fit_vae(train, latent=s.vae_latent, hidden=s.vae_hidden, epochs=s.vae_epochs, lr=s.vae_lr,
                          beta_max=s.vae_beta, anneal_epochs=s.vae_anneal_epochs, seed=seed, device=s.device,
                          batch_size=s.vae_batch, val=val, patience=s.patience,
                          max_val_users=s.max_val_users, min_delta=s.min_delta)
    raise ValueError(f"model must be 'bpr' or 'vae', got {model!r}")


def cf_auc_table(events: pd.DataFrame, settings: CFSettings | None = None, seed: int = 0,
                 heldout_fraction: float = 0.2, val_fraction: float = 0.1, max_test_users: int | None = 2000,
                 vae_betas: tuple = (0.2, 1.0), cornac_epochs: int = 0, n_seeds: int = 1) -> pd.DataFrame:
    """Table 3: AUC of most-popular, BPR and VAE on a random 20% of the interactions.

    A further ``val_fraction`` of the training interactions is the validation split (early
    stopping, and the choice of the VAE's KL weight among ``vae_betas``: Liang et al.'s 0.2
    with annealing vs Cornac's/the authors' constant 1, chosen with training seed ``seed``).
    ``n_seeds`` > 1: BPR and the chosen VAE are refit with the training seeds ``seed + 1, ...``
    on the same split; their ``test_auc`` is the mean over seeds (``test_auc_min``/``_max``:
    the spread) and ``attrs['per_user']`` the per-user AUC averaged over seeds.
    ``cornac_epochs`` > 0: also fit Cornac's BPR and VAECF for that many epochs on the same
    split. Rows: method, val_auc, test_auc, test_auc_min, test_auc_max, n_seeds, fit_s, selected.
    ``attrs['per_user_seeds']``: method -> {training seed: per-user test AUC} (:func:`per_user_auc_rows`).
    """
    if n_seeds < 1:
        raise ValueError(f"n_seeds must be >= 1, got {n_seeds}")
    s = settings or CFSettings()
    full = cf.interaction_matrix(events).matrix
    train_all, test = cf.split_heldout(full, heldout_fraction, seed)
    train, val = cf.split_heldout(train_all, val_fraction, seed + 1)
    auc = lambda m, ho, n=s.max_val_users: cf.heldout_auc(m, train, ho, max_users=n, seed=seed)  # noqa: E731
    per_user, seed_aucs = {}, {}

    def test_users(name, model):  # the same seeded user subset for every model and training seed
        values = cf.heldout_auc(model, train, test, max_users=max_test_users, seed=seed, per_user=True)
        per_user.setdefault(name, []).append(values)
        seed_aucs.setdefault(name, []).append(float(np.nanmean(values)))

    def row(name, model, t, selected=True):
        test_users(name, model)
        return [name, auc(model, val), t, selected]

    rows = [row("most popular", *cf.timed(cf.MostPopular, train))]
    (bpr, _), t = cf.timed(fit_cf, "bpr", train, val, s, seed)
    rows.append(row("BPR", bpr, t))
    vaes, vae_settings = [], []
    for beta in vae_betas:
        vae_settings.append(CFSettings(**{**asdict(s), "vae_beta": beta, "vae_anneal_epochs": 5.0 if beta < 1 else 0.0}))
        (vae, _), t = cf.timed(fit_cf, "vae", train, val, vae_settings[-1], seed)
        vaes.append(row(f"VAE (beta {beta}{', annealed' if beta < 1 else ''})", vae, t, False))
    best = max(range(len(vaes)), key=lambda i: vaes[i][1])
    vaes[best][3] = True
    rows += vaes
    for sd in range(seed + 1, seed + n_seeds):  # more training seeds for BPR and the chosen VAE
        test_users("BPR", fit_cf("bpr", train, val, s, sd)[0])
        test_users(vaes[best][0], fit_cf("vae", train, val, vae_settings[best], sd)[0])
    rows = [(n, v, float(np.mean(seed_aucs[n])), min(seed_aucs[n]), max(seed_aucs[n]), len(seed_aucs[n]), t, sel)
            for n, v, t, sel in rows]
    if cornac_epochs > 0:
        rows += [(n, v, a, a, a, 1, t, sel) for n, v, a, t, sel in
                 cornac_rows(train, test, s, seed, max_test_users, cornac_epochs)]
    out = pd.DataFrame(rows, columns=["method", "val_auc", "test_auc", "test_auc_min", "test_auc_max", "n_seeds",
                                      "fit_s", "selected"])
    out.attrs.update(vae_beta=vae_betas[best], vae_method=vaes[best][0], seed_aucs=seed_aucs,
                     per_user={k: np.mean(np.vstack(v), 0) if len(v) > 1 else v[0] for k, v in per_user.items()},
                     per_user_seeds={k: {seed + i: u for i, u in enumerate(v)} for k, v in per_user.items()})
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


def cornac_rows(train: sp.csr_matrix, test: sp.csr_matrix, s: CFSettings, seed: int, max_test_users: int | None,
                epochs: int = 40) -> list:
    """Cornac 3's BPR (its README's MovieLens settings: k 10, lr 0.001, reg 0.01, ``5 * epochs``
    iterations) and VAECF (its defaults, our layer sizes, ``epochs`` epochs) on the same
    training matrix, scored by the same AUC."""
    import cornac

    coo = train.tocoo()
    uir = list(zip(coo.row.astype(str), coo.col.astype(str), np.ones(coo.nnz)))
    data = cornac.data.Dataset.from_uir(uir, seed=seed)
    uidx = np.array([data.uid_map[str(u)] if str(u) in data.uid_map else -1 for u in range(train.shape[0])])
    icol = np.array([int(i) for i in data.item_ids])  # Cornac's item order -> our column

    class Scores:
        def __init__(self, model):
            self.model = model

        def score_users(self, _train, users):
            out = np.full((len(users), train.shape[1]), -np.inf)
            for r, u in enumerate(users):
                if uidx[u] >= 0:
                    out[r, icol] = self.model.score(int(uidx[u]))
            return out

    models = {"Cornac BPR": cornac.models.BPR(k=10, max_iter=5 * epochs, learning_rate=0.001, lambda_reg=0.01,
                                              seed=seed, num_threads=1),
              "Cornac VAECF": cornac.models.VAECF(k=s.vae_latent, autoencoder_structure=[s.vae_hidden],
                                                  n_epochs=epochs, batch_size=100, learning_rate=0.001, beta=1.0,
                                                  seed=seed)}
    rows = []
    for name, model in models.items():
        _, t = cf.timed(model.fit, data)
        rows.append((name, np.nan, cf.heldout_auc(Scores(model), train, test, max_users=max_test_users, seed=seed),
                     t, False))
    return rows


# ----------------------------------------------------------------------------- CF vectors of items
def item_cf_vectors(events: pd.DataFrame, item_keys: np.ndarray, model: str = "vae",
                    settings: CFSettings | None = None, seed: int = 0, cache_tag: str | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(CF vectors, interactions per item) of ``item_keys``, from events on those items only.

    Early stopping on 10% of the interactions held out as validation. ``cache_tag``: cache
    the result under ``data/cache/paper_d/`` keyed by the inputs (shared by D.03 and D.04).
    """
    s = settings or CFSettings()
    key = None
    if cache_tag is not None:
        blob = json.dumps([cache_tag, model, asdict(s), seed, hashlib.sha256(
            pd.util.hash_pandas_object(events[["user", "item"]], index=False).values.tobytes()
            + "|".join(map(str, item_keys)).encode()).hexdigest()], sort_keys=True)
        key = paths.CACHE_DIR / "paper_d" / f"{cache_tag}-{model}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}.npz"
        if key.exists():
            with np.load(key) as z:
                return z["q"], z["n"]
    mat = cf.interaction_matrix(events, item_ids=np.asarray(item_keys)).matrix
    train, val = cf.split_heldout(mat, 0.1, seed + 1)
    fitted, _ = fit_cf(model, train, val, s, seed)
    q, n = fitted.item_vectors(), np.asarray(mat.sum(axis=0)).ravel()
    if key is not None:
        with atomic_path(key, suffix=".npz") as tmp:
            np.savez(tmp, q=q, n=n)
    return q, n


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
