"""Collaborative-filtering models of paper D (section 3.3, Table 3): most-popular, BPR, Mult-VAE.

Phase one of paper D turns the binary user-item matrix ``M`` into fixed-size item vectors
``q_i`` (the *CF vectors*). Three recommenders, all in PyTorch (GPU when present) and all
trained through the one :class:`clickvision.train.Trainer`:

* :class:`MostPopular` -- non-personalised: every user gets the items by training count.
* :class:`BPR` -- Rendle et al. (2009): ``s(u, i) = p_u . q_i + b_i``, the pairwise loss
  ``-log sigmoid(s(u, i) - s(u, j))`` over (user, positive, sampled negative) triples with an
  l2 penalty. CF vector = ``[q_i, b_i]``.
* :class:`EASE` -- Steck (2019), closed form: ``B = I - P / diag(P)`` with
  ``P = (X^T X + lambda I)^-1`` (zero diagonal), ``s(u) = x_u B``. No iterations, so no early
  stopping, and suited to sparse data (an l2-regularised item-item regression). CF vector: the
  best rank-``k`` representation of item ``j``'s column ``B[:, j]`` (``U_k^T B[:, j]`` from the
  SVD of ``B``) plus the log item count.
* :class:`MultVAE` -- a VAE over the binary user rows: tanh encoder ``items -> hidden ->
  (mu, logvar)``, decoder ``latent -> hidden -> items``, the multinomial log-likelihood and a
  KL term weighted by ``beta`` (annealed linearly to ``beta_max``, or constant). Two input
  parameters say which VAE it is: ``input_norm`` ('l2': each row divided by its l2 norm, or
  'none': the binary row as it is) and ``input_dropout`` (the share of a row's items dropped in
  training). Liang et al.'s (2018) Mult-VAE is ``input_norm='l2', input_dropout=0.5`` with the
  KL weight annealed (``fit_vae``'s defaults); Cornac's ``VAECF`` (the authors' base) feeds the
  raw binary row with no dropout and a constant ``beta=1`` -- :data:`VAECF_SETTING` (with the
  same layers: tanh, a bias in every linear layer, softmax over the items, mean over users of
  ``beta * KL - sum_i x_i log p_i``). The last decoder layer carries the item bias (paper D,
  4.1.3: "supplemented with bias terms") and, after Press and Wolf, serves as the item
  embedding: CF vector = ``[W_i, b_i]`` (hidden + 1). The item bias starts at the log item
  popularity (``popularity_init``), so a short CPU run starts from the most-popular ranking
  instead of relearning it (Cornac starts it at PyTorch's default; a training choice, not a
  model one).

:func:`heldout_auc` is Table 3's metric: per-user AUC of held-out interactions over the items
seen in training (:func:`fast_interaction_auc`, equal to :func:`clickvision.metrics.interaction_auc`);
a user's training items, and with ``exclude`` the validation items, are neither positives nor negatives.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from ..train import TrainConfig, Trainer, multi_tensor_steps


@dataclass
class InteractionMatrix:
    """A binary user-item matrix (CSR, float32) with the ids of its rows and columns."""

    matrix: sp.csr_matrix
    user_ids: np.ndarray
    item_ids: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape


def interaction_matrix(events: pd.DataFrame, item_ids: np.ndarray | None = None) -> InteractionMatrix:
    """Binarise ``events`` (columns ``user``, ``item``) into ``M`` (paper D, 3.3).

    ``item_ids`` fixes the columns and their order; events on other items are dropped (cold
    items lose their interactions). Users left with no event are dropped.
    """
    for col in ("user", "item"):
        if col not in events.columns:
            raise ValueError(f"interaction_matrix: events lack column {col!r}")
    if item_ids is None:
        item_ids = np.sort(events["item"].unique())
    item_ids = np.asarray(item_ids)
    col_of = pd.Series(np.arange(len(item_ids)), index=pd.Index(item_ids))
    if not col_of.index.is_unique:
        raise ValueError("interaction_matrix: item_ids contain duplicates")
    cols = events["item"].map(col_of)
    kept = events[cols.notna().to_numpy()]
    cols = cols[cols.notna()].to_numpy(dtype=np.int64)
    user_ids, rows = np.unique(kept["user"].to_numpy(), return_inverse=True)
    m = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(user_ids), len(item_ids)))
    m.sum_duplicates()
    m.data[:] = 1.0
    return InteractionMatrix(m, user_ids, item_ids)


def split_heldout(matrix: sp.csr_matrix, fraction: float = 0.2, seed: int = 0) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """(train, held-out): a random ``fraction`` of all interactions held out (paper D, 4.1.5)."""
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must lie in (0, 1), got {fraction!r}")
    coo = matrix.tocoo()
    held = np.random.default_rng(seed).random(coo.nnz) < fraction
    make = lambda keep: sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=matrix.shape)  # noqa: E731
    return make(~held), make(held)


class MostPopular(nn.Module):
    """Non-personalised baseline (Table 3 "Most popular"): score = training interactions."""

    def __init__(self, train: sp.csr_matrix) -> None:
        super().__init__()
        self.register_buffer("counts", torch.from_numpy(np.asarray(train.sum(axis=0)).ravel().astype(np.float32)))

    def score_users(self, train: sp.csr_matrix, users: np.ndarray) -> np.ndarray:
        return np.tile(self.counts.cpu().numpy(), (len(users), 1))


class BPR(nn.Module):
    """BPR matrix factorisation with an item bias: ``s(u, i) = p_u . q_i + b_i``."""

    def __init__(self, n_users: int, n_items: int, k: int = 64, init_std: float = 0.01) -> None:
        super().__init__()
        self.user = nn.Parameter(init_std * torch.randn(n_users, k))
        self.item = nn.Parameter(init_std * torch.randn(n_items, k))
        self.item_bias = nn.Parameter(torch.zeros(n_items))

    def pair_score(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return (self.user[users] * self.item[items]).sum(-1) + self.item_bias[items]

    def score_users(self, train: sp.csr_matrix, users: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            u = torch.as_tensor(users, device=self.user.device)
            return (self.user[u] @ self.item.T + self.item_bias).cpu().numpy()

    def item_vectors(self) -> np.ndarray:
        """CF vectors ``[q_i, b_i]``, shape (n_items, k + 1)."""
        return torch.cat([self.item, self.item_bias[:, None]], 1).detach().cpu().numpy()


def bpr_loss(model: BPR, batch: tuple[torch.Tensor, ...], reg: float = 1e-4) -> tuple[torch.Tensor, dict]:
    """``-mean log sigmoid(s(u,i) - s(u,j)) + reg * mean ||theta||^2`` over the triples."""
    u, i, j = batch
    pu, qi, qj = F.embedding(u, model.user), F.embedding(i, model.item), F.embedding(j, model.item)
    bi, bj = model.item_bias[i], model.item_bias[j]
    x = (pu * (qi - qj)).sum(-1) + bi - bj
    penalty = (pu.square().sum(-1) + qi.square().sum(-1) + qj.square().sum(-1) + bi.square() + bj.square()).mean()
    rank = -F.logsigmoid(x).mean()
    return rank + reg * penalty, {"rank": rank}


def bpr_triples(train: sp.csr_matrix, batch_size: int, device: torch.device):
    """A factory of one epoch's batches: every training pair once, a uniform negative each.

    Negatives that hit one of the user's positives are redrawn (up to 10 times). Uses the
    torch random stream (seeded by the Trainer), so an epoch's triples are reproducible.
    """
    coo = train.tocoo()
    users, items = coo.row.astype(np.int64), coo.col.astype(np.int64)
    n_items = train.shape[1]
    known = np.sort(users * n_items + items)

    def epoch():
        order = torch.randperm(len(users)).numpy()
        neg = torch.randint(0, n_items, (len(users),)).numpy()
        for _ in range(10):
            codes = users[order] * n_items + neg
            pos = np.minimum(np.searchsorted(known, codes), len(known) - 1)
            hit = known[pos] == codes
            if not hit.any():
                break
            neg[hit] = torch.randint(0, n_items, (int(hit.sum()),)).numpy()
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            yield tuple(torch.from_numpy(a).to(device) for a in (users[idx], items[idx], neg[s:s + batch_size]))
    return epoch


class EASE(nn.Module):
    """EASE (Steck 2019): ``B = argmin ||X - X B||^2 + lambda ||B||^2`` s.t. ``diag(B) = 0``.

    Closed form: ``P = (X^T X + lambda I)^-1``, ``B_ij = -P_ij / P_jj`` (``i != j``), ``B_jj = 0``.
    A torch module only so that it scores through the same :func:`heldout_auc` as the others.
    """

    def __init__(self, train: sp.csr_matrix, lam: float = 100.0) -> None:
        super().__init__()
        if not lam > 0:
            raise ValueError(f"EASE: lam must be > 0, got {lam!r}")
        x = sp.csr_matrix(train, dtype=np.float32)
        gram = torch.from_numpy((x.T @ x).toarray())
        gram.diagonal().add_(lam)
        # Cholesky and the inverse from it (float32: X^T X + lambda I is well conditioned for lambda >= 1)
        chol, info = torch.linalg.cholesky_ex(gram)
        if int(info) != 0:
            raise np.linalg.LinAlgError(f"EASE: X^T X + {lam} I is not positive definite (info {int(info)})")
        p = torch.cholesky_inverse(chol).numpy()
        b = -p / np.diag(p)[None, :]
        b[np.diag_indices_from(b)] = 0.0
        self.lam = lam
        self.register_buffer("weights", torch.from_numpy(np.ascontiguousarray(b, dtype=np.float32)))
        self.register_buffer("counts", torch.from_numpy(np.asarray(x.sum(axis=0)).ravel().astype(np.float32)))

    def score_users(self, train: sp.csr_matrix, users: np.ndarray) -> np.ndarray:
        return np.asarray(train[users] @ self.weights.cpu().numpy())

    def item_vectors(self, k: int = 64) -> np.ndarray:
        """CF vectors ``[U_k^T B[:, j], log(1 + n_j)]``, shape (n_items, k + 1): the columns of ``B``
        in the span of its top-``k`` left singular vectors (``S_k V_k^T``), and the log popularity."""
        from sklearn.utils.extmath import randomized_svd

        b = self.weights.cpu().numpy().astype(np.float64)
        k = min(k, min(b.shape) - 1)
        _, s, vt = randomized_svd(b, k, n_iter=4, random_state=0)  # the top k singular triplets (seeded)
        q = (s[:, None] * vt).T
        return np.hstack([q, np.log1p(self.counts.cpu().numpy().astype(np.float64))[:, None]])


def fit_ease(train: sp.csr_matrix, lams: tuple = (10.0, 30.0, 100.0, 300.0), val: sp.csr_matrix | None = None,
             max_val_users: int = 2000, seed: int = 0) -> tuple[EASE, pd.DataFrame]:
    """:class:`EASE` with the l2 weight chosen among ``lams`` by validation AUC (the first without ``val``).

    Returns (model, a table with one row per lambda: ``lam``, ``auc``; ``attrs['best_lam']``)."""
    if not lams:
        raise ValueError("fit_ease: lams must name at least one l2 weight")
    rows, best = [], None
    score = heldout_scorer(train, val, max_users=max_val_users, seed=seed) if val is not None else None
    for lam in lams:
        model = EASE(train, lam)
        value = score(model) if score is not None else np.nan
        rows.append({"lam": lam, "auc": value})
        if best is None or (val is not None and value > best[1]):
            best = (model, value)
        if val is None:
            break
    table = pd.DataFrame(rows)
    table.attrs["best_lam"] = best[0].lam
    return best[0], table


INPUT_NORMS = ("l2", "none")

# The setting of MultVAE / fit_vae that is Cornac's VAECF model and objective: the binary user row as
# it is (no l2 normalisation), no input dropout, a constant KL weight of 1 (cornac/models/vaecf/vaecf.py,
# Cornac 3.0: ``VAE.forward`` encodes ``x`` directly, ``VAE.loss`` is ``mean(beta * kld - ll)`` with
# ``ll = sum x log softmax``; ``VAECF(beta=1.0)`` is its default). Cornac's training defaults differ from
# ours and are not part of this setting: Adam lr 0.001, batch 100 users in a fixed order, 100 epochs.
VAECF_SETTING = {"input_norm": "none", "input_dropout": 0.0, "beta_max": 1.0, "anneal_epochs": 0.0}
# Liang et al.'s Mult-VAE (fit_vae's defaults): l2-normalised input, dropout 0.5, KL weight annealed
LIANG_SETTING = {"input_norm": "l2", "input_dropout": 0.5, "beta_max": 0.2, "anneal_epochs": 5.0}


class MultVAE(nn.Module):
    """A VAE over binary user rows with the item bias in the last decoder layer.

    ``input_norm`` ('l2' or 'none') and ``input_dropout`` say what the encoder sees: Liang et
    al.'s Mult-VAE is ('l2', 0.5), Cornac's VAECF ('none', 0.0) (:data:`VAECF_SETTING`).
    Batches are sparse user rows (:class:`UserRows`): the first encoder layer is an
    ``embedding_bag`` over the user's items, so no dense ``users x items`` input is built.
    """

    def __init__(self, n_items: int, latent: int = 32, hidden: int = 64, input_dropout: float = 0.5,
                 input_norm: str = "l2") -> None:
        super().__init__()
        if not 0 <= input_dropout < 1:
            raise ValueError(f"input_dropout must lie in [0, 1), got {input_dropout!r}")
        if input_norm not in INPUT_NORMS:
            raise ValueError(f"input_norm must be one of {INPUT_NORMS}, got {input_norm!r}")
        self.latent, self.input_dropout, self.input_norm = latent, input_dropout, input_norm
        bound = 1 / math.sqrt(n_items)
        self.enc_items = nn.Parameter(torch.empty(n_items, hidden).uniform_(-bound, bound))
        self.enc_bias = nn.Parameter(torch.zeros(hidden))
        self.enc_out = nn.Linear(hidden, 2 * latent)
        self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.Tanh(), nn.Linear(hidden, n_items))

    def forward(self, rows: UserRows) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(item logits, mu, logvar) of a batch of binary user rows."""
        if self.input_norm == "l2":  # each binary row divided by its l2 norm (Liang et al.)
            weight = rows.norm_weights().to(self.enc_items.dtype)
        else:  # the binary row as it is (Cornac's VAECF)
            weight = torch.ones(len(rows.items), dtype=self.enc_items.dtype, device=rows.items.device)
        if self.training and self.input_dropout > 0:
            keep = (torch.rand_like(weight) >= self.input_dropout).to(weight.dtype)
            weight = weight * keep / (1 - self.input_dropout)
        h = F.embedding_bag(rows.items, self.enc_items, rows.offsets, mode="sum", per_sample_weights=weight)
        mu, logvar = self.enc_out(torch.tanh(h + self.enc_bias)).chunk(2, dim=1)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return self.decoder(z), mu, logvar

    def score_users(self, train: sp.csr_matrix, users: np.ndarray) -> np.ndarray:
        device = next(self.parameters()).device
        was = self.training
        self.eval()
        with torch.no_grad():
            out = self(UserRows.of(train, users, device))[0].cpu().numpy()
        self.train(was)
        return out

    def item_vectors(self) -> np.ndarray:
        """CF vectors ``[W_i, b_i]`` of the last decoder layer, shape (n_items, hidden + 1)."""
        last = self.decoder[-1]
        return torch.cat([last.weight, last.bias[:, None]], 1).detach().cpu().numpy()


@dataclass
class UserRows:
    """A batch of binary user rows in CSR form: item indices, row offsets, row ids."""

    items: torch.Tensor  # (nnz,) item index of each interaction
    offsets: torch.Tensor  # (B,) start of each row in ``items``
    row_of: torch.Tensor  # (nnz,) batch row of each interaction

    @classmethod
    def of(cls, matrix: sp.csr_matrix, rows: np.ndarray, device: torch.device) -> "UserRows":
        sub = matrix[rows]
        counts = np.diff(sub.indptr)
        as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64)).to(device)  # noqa: E731
        return cls(as_t(sub.indices), as_t(sub.indptr[:-1]), as_t(np.repeat(np.arange(len(rows)), counts)))

    def counts(self) -> torch.Tensor:
        return torch.bincount(self.row_of, minlength=len(self.offsets)).to(torch.float32)

    def norm_weights(self) -> torch.Tensor:
        return self.counts().clamp(min=1).rsqrt()[self.row_of]

    def __len__(self) -> int:
        return len(self.offsets)


def vae_loss(model: MultVAE, rows: UserRows, beta: float) -> tuple[torch.Tensor, dict]:
    """Negative ELBO: ``-sum_i x_i log softmax(logits)_i + beta * KL``, mean over users.

    For binary ``x``: ``n_u * logsumexp(logits_u) - sum of the user's item logits``.
    """
    logits, mu, logvar = model(rows)
    picked = logits[rows.row_of, rows.items]
    nll = (rows.counts() * torch.logsumexp(logits, 1)).sum() - picked.sum()
    nll = nll / len(rows)
    kl = (-0.5 * (1 + logvar - mu.square() - logvar.exp()).sum(1)).mean()
    return nll + beta * kl, {"nll": nll, "kl": kl}


def user_batches(train: sp.csr_matrix, batch_size: int, device: torch.device):
    """A factory of one epoch's :class:`UserRows` batches in a random order (users with events)."""
    active = np.flatnonzero(np.diff(train.indptr) > 0)

    def epoch():
        order = active[torch.randperm(len(active)).numpy()]
        for s in range(0, len(order), batch_size):
            yield UserRows.of(train, order[s:s + batch_size], device)
    return epoch


def _auc_val_fn(val: sp.csr_matrix | None, train: sp.csr_matrix, max_users: int, seed: int):
    if val is None:
        return None
    score = heldout_scorer(train, val, max_users=max_users, seed=seed)  # the static part once per fit
    return lambda m: {"auc": score(m)}



def log_popularity(train: sp.csr_matrix) -> torch.Tensor:
    """``log((n_i + 1) / sum_j (n_j + 1))``: the log prior of each item (add-one smoothed)."""
    counts = np.asarray(train.sum(axis=0)).ravel() + 1.0
    return torch.from_numpy(np.log(counts / counts.sum()).astype(np.float32))


def fit_bpr(train: sp.csr_matrix, k: int = 64, epochs: int = 20, lr: float = 0.01, reg: float = 1e-4,
            batch_size: int = 4096, seed: int = 0, device: str = "auto", val: sp.csr_matrix | None = None,
            patience: int | None = None, max_val_users: int = 2000,
            popularity_init: bool = True, min_delta: float = 0.0) -> tuple[BPR, pd.DataFrame]:
    """Train :class:`BPR` with Adam; with ``val`` (held-out interactions) keep the epoch of best
    validation AUC (an epoch counts as better when it gains more than ``min_delta``).
    ``popularity_init`` starts the item bias at the centred log popularity (the
    most-popular ranking), so a short CPU run starts from the baseline instead of relearning it.
    Returns (model, Trainer History)."""
    torch.manual_seed(seed)
    model = BPR(*train.shape, k=k)
    if popularity_init:
        with torch.no_grad():
            prior = log_popularity(train)
            model.item_bias.copy_(prior - prior.mean())
    cfg = TrainConfig(epochs=epochs, optimizer="adam", lr=lr, seed=seed, device=device, log_every=50,
                      monitor="auc" if val is not None else None, mode="max", patience=patience,
                      min_delta=min_delta)
    trainer = multi_tensor_steps(Trainer(model, lambda m, b: bpr_loss(m, b, reg), cfg))
    history = trainer.fit(bpr_triples(train, batch_size, trainer.device),
                          val_fn=_auc_val_fn(val, train, max_val_users, seed))
    return model, history


def fit_vae(train: sp.csr_matrix, latent: int = 32, hidden: int = 64, epochs: int = 50, lr: float = 0.01,
            batch_size: int = 128, beta_max: float = 0.2, anneal_epochs: float = 5.0, input_dropout: float = 0.5,
            seed: int = 0, device: str = "auto", val: sp.csr_matrix | None = None, patience: int | None = None,
            max_val_users: int = 2000, popularity_init: bool = True, min_delta: float = 0.0,
            input_norm: str = "l2") -> tuple[MultVAE, pd.DataFrame]:
    """Train :class:`MultVAE` with Adam, beta annealed linearly 0 -> ``beta_max`` over the first
    ``anneal_epochs`` epochs (Liang et al.; ``anneal_epochs=0``: constant ``beta_max``, as Cornac).
    The defaults are Liang et al.'s Mult-VAE (l2-normalised input, dropout 0.5, annealed KL);
    ``**VAECF_SETTING`` gives Cornac's VAECF model and objective.
    ``popularity_init`` starts the item bias (last decoder bias) at the log item prior.
    ``history.attrs['kl_by_epoch']``: the KL term's mean over each epoch's batches (epoch 1 first)."""
    torch.manual_seed(seed)
    model = MultVAE(train.shape[1], latent, hidden, input_dropout, input_norm)
    if popularity_init:
        with torch.no_grad():
            model.decoder[-1].bias.copy_(log_popularity(train))
    cfg = TrainConfig(epochs=epochs, optimizer="adam", lr=lr, seed=seed, device=device, log_every=50,
                      monitor="auc" if val is not None else None, mode="max", patience=patience,
                      min_delta=min_delta)
    state = {"step": 0}
    active = int((np.diff(train.indptr) > 0).sum())
    anneal_steps = anneal_epochs * math.ceil(active / batch_size)

    kls: list = []

    def loss_fn(m, x):
        if m.training:
            state["step"] += 1
        beta = beta_max if anneal_steps <= 0 else beta_max * min(1.0, state["step"] / anneal_steps)
        loss, terms = vae_loss(m, x, beta)
        if m.training:
            kls.append(float(terms["kl"]))
        return loss, terms

    trainer = multi_tensor_steps(Trainer(model, loss_fn, cfg))
    history = trainer.fit(user_batches(train, batch_size, trainer.device),
                          val_fn=_auc_val_fn(val, train, max_val_users, seed))
    per_epoch = max(1, math.ceil(active / batch_size))  # the KL term, mean over each epoch's batches
    history.attrs["kl_by_epoch"] = [float(np.mean(kls[s:s + per_epoch])) for s in range(0, len(kls), per_epoch)]
    return model, history


def heldout_auc(model: nn.Module, train: sp.csr_matrix, heldout: sp.csr_matrix, max_users: int | None = None,
                seed: int = 0, ties: str = "half", block: int = 512, per_user: bool = False,
                exclude: sp.csr_matrix | None = None) -> float | np.ndarray:
    """Table 3's AUC: mean over users of P(held-out item scored above a non-interacted item).

    Candidates are the items with a training interaction (unknown items cannot be scored;
    held-out events on them are dropped, like Cornac's ``exclude_unknowns``); a user's
    training items are excluded, and so are the user's items in ``exclude`` (at test: the
    validation interactions, which are neither positives nor negatives -- the user did
    interact with them). ``max_users`` scores a seeded random subset of the users
    with a held-out item (:func:`scored_users`, to bound time on large sets). ``model`` has ``score_users``.
    ``per_user``: return the per-user AUCs (NaN where undefined; the same users for every model
    given the same matrices and seed), for paired tests over users.
    """
    return heldout_scorer(train, heldout, max_users, seed, ties, block, per_user, exclude)(model)


def scored_users(train: sp.csr_matrix, heldout: sp.csr_matrix, max_users: int | None = None,
                 seed: int = 0) -> np.ndarray:
    """The rows :func:`heldout_auc` scores: users with a held-out interaction on an item seen in
    training, a seeded random ``max_users`` of them when there are more (sorted)."""
    known = np.asarray(train.sum(axis=0)).ravel() > 0
    users = np.flatnonzero(np.diff(heldout[:, known].indptr) > 0)
    if max_users is not None and len(users) > max_users:
        users = np.sort(np.random.default_rng(seed).choice(users, max_users, replace=False))
    return users


def heldout_scorer(train: sp.csr_matrix, heldout: sp.csr_matrix, max_users: int | None = None, seed: int = 0,
                   ties: str = "half", block: int = 512, per_user: bool = False,
                   exclude: sp.csr_matrix | None = None):
    """``model -> heldout_auc(model, train, heldout, ...)`` for models scored on the same matrices
    again and again (every validation epoch, every model of a table): the known items, the
    users and their held-out and excluded masks are built once, on the first call."""
    if exclude is not None and exclude.shape != train.shape:
        raise ValueError(f"heldout_auc: exclude has shape {exclude.shape}, train {train.shape}")
    setup: list = []

    def score(model: nn.Module) -> float | np.ndarray:
        if not setup:
            known = np.asarray(train.sum(axis=0)).ravel() > 0
            tr, ho = train[:, known], heldout[:, known]
            if exclude is not None:  # neither positive nor negative: training and excluded items
                tr = ((tr + exclude[:, known]) > 0).astype(np.float32)
            users = scored_users(train, heldout, max_users, seed)
            if len(users) == 0:
                raise ValueError("heldout_auc: no user has a held-out interaction on a known item")
            blocks = [users[s:s + block] for s in range(0, len(users), block)]
            setup.extend([known, [(u, ho[u].toarray() > 0, tr[u].toarray() > 0) for u in blocks]])
        known, blocks = setup
        values = np.concatenate([fast_interaction_auc(model.score_users(train, u)[:, known], h, e, ties)
                                 for u, h, e in blocks])
        return values if per_user else float(np.nanmean(values))
    return score


def fast_interaction_auc(scores: np.ndarray, heldout: np.ndarray, exclude: np.ndarray,
                         ties: str = "half") -> np.ndarray:
    """Per-user AUC as :func:`clickvision.metrics.interaction_auc` (NaN where undefined), by
    sorting each user's negatives once and binary-searching the positives (several times
    faster than ranking; tested against it)."""
    if ties not in ("half", "zero"):
        raise ValueError(f"ties must be 'half' or 'zero', got {ties!r}")
    scores = np.asarray(scores, dtype=np.float64)
    neg = np.where(heldout | exclude, np.inf, scores)
    n_neg = (~(heldout | exclude)).sum(1)
    neg.sort(axis=1)
    out = np.full(len(scores), np.nan)
    n_pos = heldout.sum(1)
    ends = np.cumsum(n_pos)
    pos_all = scores[heldout]  # row by row, each row's positives in column order (= scores[r, heldout[r]])
    for r in np.flatnonzero((n_pos > 0) & (n_neg > 0)):
        pos = pos_all[ends[r] - n_pos[r]:ends[r]]
        row = neg[r, :n_neg[r]]
        below = np.searchsorted(row, pos, "left")
        wins = below.sum() + (0.5 * (np.searchsorted(row, pos, "right") - below).sum() if ties == "half" else 0.0)
        out[r] = wins / (len(pos) * n_neg[r])
    return out


def timed(fn, *args, **kwargs):
    """(result, wall seconds) of ``fn(*args, **kwargs)`` -- for the side-by-side timing tables."""
    import time

    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


__all__ = ["InteractionMatrix", "interaction_matrix", "split_heldout", "MostPopular", "BPR", "bpr_loss",
           "MultVAE", "vae_loss", "EASE", "fit_ease", "fit_bpr", "fit_vae", "heldout_auc", "heldout_scorer",
           "scored_users", "fast_interaction_auc", "VAECF_SETTING", "LIANG_SETTING", "INPUT_NORMS",
           "timed"]
