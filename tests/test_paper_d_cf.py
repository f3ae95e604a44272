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
    from clickvision.experiments.paper_d import core as D

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


# ----------------------------------------------------------------------------- the CF anchor (issue 20, item 5)
def _fixed(scores):
    class Fixed:
        def score_users(self, _train, users):
            return np.tile(np.asarray(scores, float), (len(users), 1))
    return Fixed()


def test_heldout_auc_excludes_validation_items_from_the_negatives():
    # items 0-4, all seen in training (user 2 rated them all); scores 5, 4, 3, 2, 1 for everyone
    csr = lambda rows: sp.csr_matrix(np.array(rows, dtype=np.float32))  # noqa: E731
    train = csr([[1, 0, 0, 0, 0], [0, 0, 0, 1, 0], [1, 1, 1, 1, 1]])
    val = csr([[0, 1, 0, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]])
    test = csr([[0, 0, 1, 0, 0], [1, 0, 1, 0, 0], [0, 0, 0, 0, 0]])
    model = _fixed([5, 4, 3, 2, 1])
    # user 0: positive 2 (score 3). Old: negatives {1, 3, 4} -> beats 3 and 4, loses to 1: 2/3.
    #         Without the validation item 1: negatives {3, 4}: 2/2.
    # user 1: positives 0 (5), 2 (3). Old: negatives {1, 4}: 0 beats both, 2 beats 4 only: 3/4.
    #         Without the validation item 4: negatives {1}: 0 beats it, 2 does not: 1/2.
    old = cf.heldout_auc(model, train, test, per_user=True)
    new = cf.heldout_auc(model, train, test, per_user=True, exclude=val)
    np.testing.assert_allclose(old, [2 / 3, 3 / 4])
    np.testing.assert_allclose(new, [1.0, 1 / 2])
    assert cf.heldout_auc(model, train, test, exclude=val) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="exclude has shape"):
        cf.heldout_auc(model, train, test, exclude=val[:2])


def test_scored_users_are_the_users_heldout_auc_scores():
    m = cf.interaction_matrix(planted_events()).matrix
    train, held = cf.split_heldout(m, 0.2, seed=0)
    users = cf.scored_users(train, held, max_users=50, seed=4)
    assert len(users) == 50 and np.all(np.diff(users) > 0)
    per_user = cf.heldout_auc(cf.MostPopular(train), train, held, max_users=50, seed=4, per_user=True)
    full = cf.heldout_auc(cf.MostPopular(train), train, held, per_user=True)
    np.testing.assert_array_equal(per_user, full[np.searchsorted(cf.scored_users(train, held), users)])


@pytest.mark.parametrize("norm", ["l2", "none"])
def test_vae_input_norm_is_what_the_encoder_sees(norm):
    train = cf.interaction_matrix(planted_events(n_users=10, n_items=8, n_groups=2, per_user=3)).matrix
    torch.manual_seed(0)
    model = cf.MultVAE(train.shape[1], latent=2, hidden=3, input_dropout=0.0, input_norm=norm).double().eval()
    x = torch.as_tensor(train[np.arange(5)].toarray(), dtype=torch.float64)
    if norm == "l2":
        x = x / x.norm(dim=1, keepdim=True)
    h = torch.tanh(x @ model.enc_items + model.enc_bias)
    mu = model.enc_out(h).chunk(2, dim=1)[0]
    _, got, _ = model(cf.UserRows.of(train, np.arange(5), torch.device("cpu")))
    torch.testing.assert_close(got, mu)
    with pytest.raises(ValueError, match="input_norm"):
        cf.MultVAE(8, input_norm="l1")


def test_vaecf_setting_is_cornacs_vaecf_model_and_loss():
    cornac_vae = pytest.importorskip("cornac.models.vaecf.vaecf")
    train = cf.interaction_matrix(planted_events(n_users=12, n_items=8, n_groups=2, per_user=3)).matrix
    n, hidden, latent = train.shape[1], 5, 3
    torch.manual_seed(0)
    s = cf.VAECF_SETTING
    ours = cf.MultVAE(n, latent, hidden, input_dropout=s["input_dropout"], input_norm=s["input_norm"]).double().eval()
    theirs = cornac_vae.VAE(latent, [n, hidden], "tanh", "mult").double()
    with torch.no_grad():  # the same weights in Cornac's layout
        theirs.encoder.fc0.weight.copy_(ours.enc_items.T)
        theirs.encoder.fc0.bias.copy_(ours.enc_bias)
        theirs.enc_mu.weight.copy_(ours.enc_out.weight[:latent])
        theirs.enc_mu.bias.copy_(ours.enc_out.bias[:latent])
        theirs.enc_logvar.weight.copy_(ours.enc_out.weight[latent:])
        theirs.enc_logvar.bias.copy_(ours.enc_out.bias[latent:])
        theirs.decoder.fc0.load_state_dict(ours.decoder[0].state_dict())
        theirs.decoder.fc1.load_state_dict(ours.decoder[2].state_dict())
    rows = cf.UserRows.of(train, np.arange(6), torch.device("cpu"))
    x = torch.as_tensor(train[np.arange(6)].toarray(), dtype=torch.float64)  # Cornac: the binary rows as they are
    logits, mu, logvar = ours(rows)
    mu_c, logvar_c = theirs.encode(x)
    torch.testing.assert_close(mu, mu_c)
    torch.testing.assert_close(logvar, logvar_c)
    torch.testing.assert_close(torch.softmax(logits, 1), theirs.decode(mu_c))  # Cornac's score: decode(mu)
    # the loss at z = mu: ours (beta 1) vs Cornac's mean(beta * KL - sum x log(p + 1e-10))
    loss_c = theirs.loss(x, theirs.decode(mu_c), mu_c, logvar_c, s["beta_max"])
    assert cf.vae_loss(ours, rows, s["beta_max"])[0].item() == pytest.approx(loss_c.item(), rel=1e-6)
    assert s["anneal_epochs"] == 0  # a constant KL weight, as Cornac's


def test_vae_labels_name_the_setting():
    from clickvision.experiments.paper_d import core as D

    assert D.vae_label(D.CFSettings(vae_beta=0.2, vae_anneal_epochs=5.0)) == \
        "Mult-VAE (l2-normalised input, dropout 0.5, beta 0.2 annealed)"
    assert D.vae_label(D.CFSettings(vae_beta=1.0)) == "Mult-VAE (l2-normalised input, dropout 0.5, beta 1)"
    vaecf = D.CFSettings(vae_input_norm="none", vae_input_dropout=0.0, vae_beta=1.0, vae_anneal_epochs=0.0)
    assert D.vae_label(vaecf) == "VAE, VAECF's setting (raw input, no dropout, beta 1)"
    assert D.vae_label(D.CFSettings(vae_input_norm="none", vae_input_dropout=0.0, vae_beta=0.5)) == \
        "VAE (raw input, dropout 0, beta 0.5)"


def test_cache_key_ignores_new_fields_at_their_defaults():
    from clickvision.experiments.paper_d import cf as P

    assert "vae_input_norm" not in P._cache_settings(P.CFSettings())
    assert P._cache_settings(P.CFSettings(vae_input_norm="none"))["vae_input_norm"] == "none"


def test_cornac_protocol_auc_counts_low_ratings_as_negatives_and_ties_as_losses():
    pytest.importorskip("cornac")
    from clickvision.experiments.paper_d import core as D

    csr = lambda rows: sp.csr_matrix(np.array(rows, dtype=np.float64))  # noqa: E731
    # ratings; user 2 rated every item in training (every item known), it has no test item
    train = csr([[5, 0, 0, 2, 0], [0, 0, 0, 0, 5], [5, 5, 5, 5, 5]])
    val = csr([[0, 5, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]])
    test = csr([[0, 0, 5, 0, 3], [4, 0, 0, 1, 0], [0, 0, 0, 0, 0]])
    values = train + val + test
    binary = lambda m: (m > 0).astype(np.float32)  # noqa: E731
    method = D.cornac_method(binary(train), binary(val), binary(test), values, rating_threshold=4.0)
    model = _fixed([5, 4, 3, 3, 1])
    # user 0: positive 2 (score 3); negatives: every item not rated >= 4 anywhere: 3 (rated 2 in
    #   training, score 3: a tie, a loss) and 4 (rated 3 in test, score 1): 1/2
    # user 1: positive 0 (rated 4, score 5); negatives 1, 2, 3 (4 is a training positive): 3/3
    auc, _, n_users = D.cornac_protocol_auc(method, D.as_cornac(model, binary(train), "fixed"))
    assert auc == pytest.approx((0.5 + 1.0) / 2) and n_users == 2
    # restricting the test users to user 1
    only1 = D.cornac_method(binary(train), binary(val), binary(test), values, 4.0, users=np.array([1]))
    assert D.cornac_protocol_auc(only1, D.as_cornac(model, binary(train), "fixed"))[0] == pytest.approx(1.0)


def test_cornac_scores_map_cornacs_ids_back_to_our_columns():
    cornac = pytest.importorskip("cornac")
    from clickvision.experiments.paper_d import core as D

    m = cf.interaction_matrix(planted_events(n_users=60, per_user=6)).matrix
    m = m[:, np.random.default_rng(0).permutation(m.shape[1])]  # Cornac's item order differs from ours
    train, test = cf.split_heldout(m, 0.2, seed=0)
    train, val = cf.split_heldout(train, 0.1, seed=1)
    pop = cornac.models.MostPop()
    method = D.cornac_method(train, val, test, None)
    pop_auc = D.cornac_protocol_auc(method, pop)[0]  # Cornac's evaluation fits it
    ours = cf.MostPopular(train)
    np.testing.assert_allclose(cf.heldout_auc(D.CornacScores(pop, train.shape[1]), train, test, exclude=val),
                               cf.heldout_auc(ours, train, test, exclude=val))
    # and our most-popular under Cornac's protocol equals Cornac's own
    assert D.cornac_protocol_auc(method, D.as_cornac(ours, train))[0] == pytest.approx(pop_auc)


def test_cf_auc_table_with_cornac_both_protocols():
    pytest.importorskip("cornac")
    from clickvision.experiments.paper_d import core as D

    ev = planted_events(n_users=120, per_user=8)
    ev["rating"] = np.where(np.arange(len(ev)) % 3 == 0, 2.0, 5.0)
    s = D.CFSettings(bpr_k=8, bpr_epochs=2, bpr_lr=0.05, bpr_batch=256, vae_latent=4, vae_hidden=8, vae_epochs=2,
                     vae_batch=32, device="cpu")
    t = D.cf_auc_table(ev, s, vae_betas=(1.0,), cornac_epochs=2, vaecf_setting=True, rating_threshold=4.0,
                       cornac_vae_epochs=1)
    m = t.set_index("method")
    vaecf = "VAE, VAECF's setting (raw input, no dropout, beta 1)"
    assert vaecf in m.index and not m.loc[vaecf, "selected"]
    assert {"Cornac BPR (defaults, 2 epochs)", "Cornac VAECF (defaults, 1 epochs)"} <= set(m.index)
    assert m["test_auc"].between(0, 1).all() and m["cornac_protocol_auc"].between(0, 1).all()
    assert t.attrs["vae_method"] == "Mult-VAE (l2-normalised input, dropout 0.5, beta 1)"
    # the protocol before: validation items counted as test negatives (first fits, every one of ours)
    old = t.attrs["val_as_negatives"]
    assert set(old) == set(m.index) and old["most popular"] != m.loc["most popular", "test_auc"]
    plain = D.cf_auc_table(ev, s, vae_betas=(1.0,))
    assert plain["cornac_protocol_auc"].isna().all() and len(plain) == 3
    assert plain.set_index("method").loc["most popular", "test_auc"] == m.loc["most popular", "test_auc"]
