"""Paper D's CF models (clickvision.models.cf): matrix building, splits, AUC, planted structure.

The per-user AUC is checked against clickvision.metrics.interaction_auc, itself checked
against scikit-learn in test_metrics; BPR and the Mult-VAE must beat most-popular on a small
planted-structure case where popularity carries no information.
"""
import types

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn.metrics import roc_auc_score

from clickvision.metrics import interaction_auc
from clickvision.models import cf


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def planted_events(n_users=240, n_items=80, n_groups=4, per_user=10, seed=0):
    """Users of a group interact only with their group's items; every item equally popular."""
    rng = np.random.default_rng(seed)
    block = n_items // n_groups
    rows = []
    for u in range(n_users):
        g = u % n_groups
        items = rng.choice(np.arange(g * block, (g + 1) * block), per_user, replace=False)
        rows += [(u, int(i)) for i in items]
    return pd.DataFrame(rows, columns=["user", "item"])


def test_interaction_matrix_binarises_orders_and_drops_unknown_items():
    ev = pd.DataFrame({"user": [5, 5, 5, 7, 9], "item": ["b", "b", "a", "c", "z"]})
    m = cf.interaction_matrix(ev, item_ids=np.array(["c", "b", "a"]))
    assert list(m.item_ids) == ["c", "b", "a"]
    assert list(m.user_ids) == [5, 7]  # user 9 only touched an unknown item
    np.testing.assert_array_equal(m.matrix.toarray(), [[0, 1, 1], [1, 0, 0]])
    with pytest.raises(ValueError, match="column 'item'"):
        cf.interaction_matrix(ev.drop(columns="item"))


def test_split_heldout_partitions_the_interactions():
    m = cf.interaction_matrix(planted_events()).matrix
    train, held = cf.split_heldout(m, 0.2, seed=3)
    assert (train.multiply(held)).nnz == 0
    assert (train + held != m).nnz == 0
    assert abs(held.nnz / m.nnz - 0.2) < 0.03
    with pytest.raises(ValueError, match="fraction"):
        cf.split_heldout(m, 1.5)


def test_fast_auc_matches_the_metric_and_sklearn_with_ties():
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 4, (40, 30)).astype(float)  # many ties
    held = rng.random(scores.shape) < 0.15
    excl = (rng.random(scores.shape) < 0.2) & ~held
    for ties in ("half", "zero"):
        fast = cf.fast_interaction_auc(scores, held, excl, ties)
        ref = interaction_auc(scores, held, excl, ties=ties, return_per_user=True).values
        np.testing.assert_allclose(fast, ref, equal_nan=True)
    u = int(np.flatnonzero(held.any(1) & (~(held | excl)).any(1))[0])
    cand = ~excl[u]
    assert cf.fast_interaction_auc(scores, held, excl)[u] == pytest.approx(
        roc_auc_score(held[u, cand], scores[u, cand]))


def test_heldout_auc_scores_only_items_seen_in_training():
    train = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]], dtype=np.float32))
    held = sp.csr_matrix(np.array([[0, 1, 0, 1], [1, 0, 0, 0], [0, 0, 0, 0]], dtype=np.float32))

    class Fixed:
        def score_users(self, _train, users):
            return np.tile([3.0, 2.0, 1.0, 100.0], (len(users), 1))

    # item 3 has no training interaction: it is neither a positive nor a negative. User 0:
    # candidates {1, 2}, held 1 (2.0) beats 2 (1.0); user 1: held 0 (3.0) beats 2 (1.0). Were
    # item 3 (score 100) a negative, user 1 would score 0.5.
    assert cf.heldout_auc(Fixed(), train, held) == pytest.approx(1.0)
    np.testing.assert_array_equal(cf.heldout_auc(Fixed(), train, held, per_user=True), [1.0, 1.0])


@pytest.mark.parametrize("model", ["bpr", "vae"])
def test_personalised_models_beat_most_popular_on_planted_structure(model):
    m = cf.interaction_matrix(planted_events()).matrix
    train, held = cf.split_heldout(m, 0.2, seed=0)
    pop = cf.heldout_auc(cf.MostPopular(train), train, held)
    if model == "bpr":
        fitted, _ = cf.fit_bpr(train, k=8, epochs=40, lr=0.05, reg=1e-3, batch_size=256, device="cpu")
    else:
        fitted, _ = cf.fit_vae(train, latent=4, hidden=16, epochs=40, lr=0.02, batch_size=32, device="cpu")
    auc = cf.heldout_auc(fitted, train, held)
    assert pop < 0.65  # popularity carries (almost) no information here
    assert auc > 0.85 and auc > pop + 0.2
    q = fitted.item_vectors()
    assert q.shape == (m.shape[1], (8 if model == "bpr" else 16) + 1)


def test_training_is_deterministic_for_a_seed():
    train = cf.interaction_matrix(planted_events(n_users=60)).matrix
    a, _ = cf.fit_vae(train, latent=4, hidden=8, epochs=2, batch_size=16, device="cpu", seed=3)
    b, _ = cf.fit_vae(train, latent=4, hidden=8, epochs=2, batch_size=16, device="cpu", seed=3)
    np.testing.assert_array_equal(a.item_vectors(), b.item_vectors())


def test_early_stopping_restores_the_best_validation_epoch():
    m = cf.interaction_matrix(planted_events()).matrix
    train, val = cf.split_heldout(m, 0.2, seed=0)
    model, hist = cf.fit_bpr(train, k=8, epochs=6, lr=0.05, batch_size=256, device="cpu", val=val, patience=10)
    aucs = hist.query("split == 'val' and name == 'auc'")["value"]
    assert hist.attrs["best_value"] == pytest.approx(aucs.max())
    assert cf.heldout_auc(model, train, val, max_users=1000) == pytest.approx(aucs.max())


def test_bpr_loss_gradcheck_float64():
    g = torch.Generator().manual_seed(0)
    P = torch.randn(5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    Q = torch.randn(6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(6, generator=g, dtype=torch.float64, requires_grad=True)
    batch = (torch.tensor([0, 1, 4, 2]), torch.tensor([1, 2, 3, 5]), torch.tensor([0, 4, 4, 1]))

    def f(P, Q, b):
        return cf.bpr_loss(types.SimpleNamespace(user=P, item=Q, item_bias=b), batch, reg=0.1)[0]
    assert torch.autograd.gradcheck(f, (P, Q, b))


def test_vae_loss_gradcheck_float64_and_matches_dense_formula():
    train = cf.interaction_matrix(planted_events(n_users=12, n_items=8, n_groups=2, per_user=3)).matrix
    torch.manual_seed(0)
    model = cf.MultVAE(train.shape[1], latent=2, hidden=3).double().eval()
    rows = cf.UserRows.of(train, np.arange(6), torch.device("cpu"))
    names = ["decoder.2.weight", "decoder.2.bias", "enc_items"]
    params = {n: p.detach().clone().requires_grad_(True) for n, p in model.named_parameters() if n in names}

    def f(*values):
        call = lambda r: torch.func.functional_call(model, dict(zip(names, values)), (r,))  # noqa: E731
        return cf.vae_loss(call, rows, beta=0.3)[0]
    assert torch.autograd.gradcheck(f, tuple(params[n] for n in names))
    # the sparse form equals -(log_softmax * x).sum(1).mean() on the dense rows (nll part, beta 0)
    logits, _, _ = model(rows)
    x = torch.as_tensor(train[np.arange(6)].toarray(), dtype=torch.float64)
    dense = -(torch.log_softmax(logits, 1) * x).sum(1).mean()
    assert cf.vae_loss(model, rows, beta=0.0)[0].item() == pytest.approx(dense.item())


def test_cf_auc_table_refits_bpr_and_the_chosen_vae_with_more_seeds():
    from clickvision.experiments import paper_d as D

    s = D.CFSettings(bpr_k=8, bpr_epochs=4, bpr_lr=0.05, bpr_batch=256, vae_latent=4, vae_hidden=8, vae_epochs=4,
                     vae_batch=32, device="cpu")
    t = D.cf_auc_table(planted_events(), s, vae_betas=(0.2, 1.0), n_seeds=2)
    m = t.set_index("method")
    chosen = t.attrs["vae_method"]
    assert m.loc[chosen, "selected"] and m["selected"].sum() == 3  # popular, BPR, the chosen VAE
    assert m.loc["BPR", "n_seeds"] == 2 and m.loc[chosen, "n_seeds"] == 2 and m.loc["most popular", "n_seeds"] == 1
    for name in ("BPR", chosen):
        aucs = t.attrs["seed_aucs"][name]
        assert m.loc[name, "test_auc"] == pytest.approx(np.mean(aucs))
        assert m.loc[name, "test_auc_min"] <= m.loc[name, "test_auc"] <= m.loc[name, "test_auc_max"]
    assert m.loc["BPR", "test_auc"] > m.loc["most popular", "test_auc"] + 0.1
    rows = D.per_user_auc_rows(t, {"VAE": chosen, "BPR": "BPR", "most popular": "most popular"})
    assert set(rows["seed"]) == {0, 1} and rows["value"].notna().all()
    per_arm = rows.groupby(["method", "seed"])["item"].apply(tuple)
    assert per_arm.nunique() == 1  # every arm and seed scored on the same users
    pop = rows[rows["method"] == "most popular"].pivot(index="item", columns="seed", values="value")
    np.testing.assert_array_equal(pop[0], pop[1])  # fit once: repeated for every seed
    for sd in (0, 1):  # the rows are the per-user AUCs behind each seed's mean
        bpr = rows.query("method == 'BPR' and seed == @sd")["value"]
        assert bpr.mean() == pytest.approx(t.attrs["seed_aucs"]["BPR"][sd], abs=0.02)
    from clickvision import claims
    j = claims.judge(claims.Claim("D", "t", "t", "direction", arms=("BPR", "most popular")), rows)
    assert j.verdict == "supported" and j.n_seeds == 2
