"""Paper B: eq. (3) similarities, neighbours, the CF score, the click model and its comparators.

DCG@25 itself (25 Excellent = 1, all Bad = 0, hand cases) is tested in tests/test_metrics.py.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from clickvision import metrics, retrieval
from clickvision.models import click_cf


def eq3_direct(r: np.ndarray, u: int, v: int) -> float:
    """Paper B eq. (3) written out term by term (query means over all images)."""
    num = du = dv = 0.0
    for n in range(r.shape[0]):
        mean = np.mean(r[n])
        num += (r[n, u] - mean) * (r[n, v] - mean)
        du += (r[n, u] - mean) ** 2
        dv += (r[n, v] - mean) ** 2
    return num / (np.sqrt(du) * np.sqrt(dv))


def test_adjusted_cosine_matches_direct_computation():
    r = np.random.default_rng(0).normal(size=(7, 5))
    s = retrieval.adjusted_cosine_similarity(r)
    for u in range(5):
        for v in range(5):
            assert s[u, v] == pytest.approx(eq3_direct(r, u, v), abs=1e-12)
    assert np.allclose(np.diag(s), 1.0)


def test_adjusted_cosine_hand_case():
    # query means 2 and 1: centred columns (-1, 1), (0, -1), (1, 0)
    r = np.array([[1.0, 2.0, 3.0], [2.0, 0.0, 1.0]])
    s = retrieval.adjusted_cosine_similarity(r)
    assert s[0, 1] == pytest.approx(-1 / np.sqrt(2))
    assert s[0, 2] == pytest.approx(-1 / np.sqrt(2))
    assert s[1, 2] == pytest.approx(0.0)


def test_adjusted_cosine_is_not_column_pearson():
    """Eq. (3) centres each query's row, not each image's column (np.corrcoef would)."""
    r = np.array([[1.0, 2.0, 3.0], [2.0, 0.0, 1.0], [0.0, 5.0, 1.0]])
    assert not np.allclose(retrieval.adjusted_cosine_similarity(r), np.corrcoef(r.T))


def test_low_rank_profiles_equal_eq3_of_the_predicted_clicks():
    rng = np.random.default_rng(1)
    q, v = rng.normal(size=(40, 4)), rng.normal(size=(25, 4))
    z = retrieval.low_rank_profiles(q, v)
    zn = z / np.linalg.norm(z, axis=1, keepdims=True)
    assert np.allclose(zn @ zn.T, retrieval.adjusted_cosine_similarity(q @ v.T), atol=1e-10)


def test_blocked_top_k_equals_full_sort():
    rng = np.random.default_rng(2)
    r = rng.normal(size=(30, 23))
    s = retrieval.adjusted_cosine_similarity(r)
    np.fill_diagonal(s, -np.inf)
    nb = retrieval.top_k_neighbours(retrieval.centred_profiles(r), k=6, block_size=4)
    expected = np.argsort(-s, axis=1, kind="stable")[:, :6]
    assert np.array_equal(nb.index, expected)
    assert np.allclose(nb.similarity, np.take_along_axis(s, expected, axis=1))
    assert np.array_equal(nb.truncate(3).index, expected[:, :3])
    chunked = retrieval.top_k_neighbours(retrieval.centred_profiles(r), k=6, block_size=7, chunk_elements=500)
    assert np.array_equal(chunked.index, expected) and np.allclose(chunked.similarity, nb.similarity)
    with pytest.raises(ValueError, match="k must be"):
        retrieval.top_k_neighbours(r.T, k=23)


def test_cf_score_matches_the_formula():
    rng = np.random.default_rng(3)
    pred = rng.normal(size=(3, 12))
    nb = retrieval.top_k_neighbours(rng.normal(size=(12, 5)), k=4)
    got = retrieval.cf_scores(pred, retrieval.neighbour_weights(nb, 12))
    for a in range(3):
        m = pred[a].mean()
        for i in range(12):
            j, s = nb.index[i], nb.similarity[i]
            assert got[a, i] == pytest.approx(m + np.sum(s * (pred[a, j] - m)) / np.sum(np.abs(s)))
    flat = np.full((1, 12), 2.5)  # equal predicted clicks: the score is that value everywhere
    assert np.allclose(retrieval.cf_scores(flat, retrieval.neighbour_weights(nb, 12)), 2.5)


def test_blocked_ranking_equals_naive_ranking():
    rng = np.random.default_rng(4)
    train_q, v, q = rng.normal(size=(50, 6)), rng.normal(size=(80, 6)), rng.normal(size=(7, 6))
    fast = retrieval.rank_gallery(q, v, train_q, k=5, top=10, block_size=9, query_block=3)
    slow = retrieval.naive_rank_gallery(q, v, train_q, k=5, top=10)
    assert fast.shape == (7, 10)
    assert np.array_equal(fast, slow)
    nb_fast = retrieval.top_k_neighbours(retrieval.low_rank_profiles(train_q, v), 5, block_size=9)
    nb_slow = retrieval.naive_neighbours(v, train_q, 5, images=[0, 17, 79])
    assert np.array_equal(nb_fast.index[[0, 17, 79]], nb_slow.index)


def test_dcg_per_query_ranks_by_score_and_breaks_ties_by_seed_not_file_order():
    rel = [3, 2, 0, 0, 3]
    frame = pd.DataFrame({"query": "q", "relevance": rel, "score": [5.0, 4.0, 3.0, 2.0, 1.0]})
    assert retrieval.dcg_per_query(frame)["q"] == pytest.approx(metrics.dcg_at_k([3, 2, 0, 0, 3]))
    best_first = pd.DataFrame({"query": "q", "relevance": [3] * 5 + [0] * 45, "score": 0.0})
    values = {round(retrieval.dcg_per_query(best_first, seed=s)["q"], 9) for s in range(5)}
    assert len(values) > 1 and max(values) < metrics.dcg_at_k([3] * 5)
    assert retrieval.dcg_per_query(best_first, seed=1)["q"] == retrieval.dcg_per_query(best_first, seed=1)["q"]
    with pytest.raises(ValueError, match="lacks columns"):
        retrieval.dcg_per_query(frame.drop(columns="relevance"))


def test_dcg_per_query_equals_eq4_query_by_query():
    """The vectorised DCG@25 against metrics.dcg_at_k on each query's own ranking (sizes below and above
    25, ties, queries in no order, a query of one candidate)."""
    rng = np.random.default_rng(3)
    sizes = {f"q{i}": int(n) for i, n in enumerate(rng.integers(1, 60, 40))}
    frame = pd.DataFrame({"query": np.repeat(list(sizes), list(sizes.values()))})
    frame["relevance"] = rng.choice([0, 2, 3], len(frame))
    frame["score"] = rng.integers(0, 6, len(frame)).astype(float)  # many ties
    frame = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    got = retrieval.dcg_per_query(frame, seed=7)
    tiebreak = np.random.default_rng(7).permutation(len(frame))  # the documented seeded tie order
    for q, g in frame.assign(t=tiebreak).groupby("query"):
        ranked = g.sort_values(["score", "t"], ascending=[False, True])["relevance"].to_numpy()
        assert got[q] == pytest.approx(metrics.dcg_at_k(ranked[:25]), rel=1e-12)
    assert list(got.index) == sorted(sizes)
    with pytest.raises(ValueError, match="non-negative"):
        retrieval.dcg_per_query(frame.assign(relevance=-1))


# --- the click model --------------------------------------------------------------------------------

def test_unseen_query_gets_the_sum_of_its_word_vectors():
    vocab = click_cf.WordVocabulary.from_queries(["red apple", "green tree", "apple tree"])
    assert vocab.words == ["apple", "green", "red", "tree"]
    model = click_cf.ClickCF(len(vocab), image_dim=3, dim=4)
    e = model.words.weight.detach()
    with torch.no_grad():
        got = model.query_vectors(vocab.encode(["Red TREE", "blue sky", "red red"]))
    assert torch.allclose(got[0], e[vocab.index["red"]] + e[vocab.index["tree"]])
    assert torch.equal(got[1], torch.zeros(4))  # no known word: the zero vector
    assert torch.allclose(got[2], 2 * e[vocab.index["red"]])
    assert vocab.coverage(["red sky", "blue sky"]).tolist() == [0.5, 0.0]


def test_click_cf_predicts_the_dot_product_of_eq1():
    torch.manual_seed(0)
    model = click_cf.ClickCF(5, image_dim=3, dim=2, feature_mean=np.ones(3), feature_basis=np.eye(3)[:, :2] / 2)
    ids, x = torch.tensor([[1, 2], [3, 0]]), torch.randn(2, 3)
    vq = model.words.weight[ids].sum(1)
    vi = model.project((x[:, :2] - 1) / 2)
    assert torch.allclose(model(ids, x), (vq * vi).sum(1))


def test_click_regression_loss_gradient():
    torch.manual_seed(0)
    q = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    v = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    y = torch.rand(6, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a, b: click_cf.click_regression_loss((a * b).sum(1), y), (q, v))
    with pytest.raises(ValueError, match="shape"):
        click_cf.click_regression_loss(torch.zeros(3), torch.zeros(4))


def test_whitening_basis():
    x = np.random.default_rng(5).normal(size=(200, 6)) @ np.diag([5.0, 3, 2, 1, 0.5, 0.1])
    mean, basis = click_cf.whitening_basis(x, 3)
    z = (x - mean) @ basis
    assert np.allclose(np.cov(z.T, bias=True), np.eye(3), atol=1e-4)
    mean, basis = click_cf.whitening_basis(x, None)
    assert np.allclose(((x - mean) @ basis).std(axis=0), 1.0, atol=1e-4)
    with pytest.raises(ValueError, match="feature_pcs"):
        click_cf.whitening_basis(x, 7)
    wide = np.random.default_rng(6).normal(size=(30, 50)) * np.linspace(3, 0.1, 50)  # fewer rows than dims
    mean, basis = click_cf.whitening_basis(wide, 10)
    z = (wide - mean) @ basis
    assert np.allclose(np.cov(z.T, bias=True), np.eye(10), atol=1e-4)
    tall_mean, tall_basis = click_cf.whitening_basis(np.vstack([wide, wide]), 10)  # same axes via the other route
    assert np.allclose(np.abs(tall_basis), np.abs(basis), atol=1e-6)


def test_click_targets():
    assert np.allclose(click_cf.click_targets([1, 3]), np.log([2.0, 4.0]))
    assert click_cf.click_targets([1, 3], "raw").tolist() == [1.0, 3.0]
    with pytest.raises(ValueError, match="target"):
        click_cf.click_targets([1], "sqrt")


def toy_graph(seed: int = 0):
    """Two visual clusters; 'cat ...' queries click cluster 0, 'car ...' queries cluster 1."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(2, 8)) * 3
    cluster = np.arange(40) % 2
    feats = centres[cluster] + rng.normal(size=(40, 8))
    keys = [f"img{i}" for i in range(40)]
    rows = []
    for word, c in (("cat", 0), ("car", 1)):
        for extra in ("photo", "small", "big", "red"):
            for i in rng.choice(np.flatnonzero(cluster[:30] == c), 5, replace=False):
                rows.append((f"{word} {extra}", keys[i], int(rng.integers(1, 9))))
    return pd.DataFrame(rows, columns=["query", "key", "clicks"]), feats, keys, cluster


def test_fit_click_cf_ranks_unseen_query_and_unseen_images():
    log, feats, keys, cluster = toy_graph()
    fit = click_cf.fit_click_cf(log, feats, keys, dim=4, epochs=12, lr=0.05, batch_size=64, feature_pcs=4, seed=0)
    held = np.arange(30, 40)  # never clicked: unseen images
    scores = fit.query_vectors(["cat"]) @ fit.image_vectors(feats[held]).T  # "cat" alone: unseen query
    assert scores[0][cluster[held] == 0].mean() > scores[0][cluster[held] == 1].mean()
    again = click_cf.fit_click_cf(log, feats, keys, dim=4, epochs=12, lr=0.05, batch_size=64, feature_pcs=4, seed=0)
    assert np.array_equal(fit.image_vectors(feats), again.image_vectors(feats))  # seeded: bit-identical


def test_fit_click_cf_rejects_unknown_keys():
    log, feats, keys, _ = toy_graph()
    with pytest.raises(ValueError, match="img_missing"):
        click_cf.fit_click_cf(pd.concat([log, pd.DataFrame([("cat", "img_missing", 1)], columns=log.columns)]),
                              feats, keys, epochs=1)


def test_cross_view_pls_aligns_clicked_pairs():
    log, feats, keys, cluster = toy_graph(1)
    emb = click_cf.fit_cross_view_pls(log, feats, keys, dim=2, feature_pcs=4)
    s = emb.query_vectors(["cat", "car"]) @ emb.image_vectors(feats[30:]).T
    held = cluster[30:]
    assert s[0][held == 0].mean() > s[0][held == 1].mean()
    assert s[1][held == 1].mean() > s[1][held == 0].mean()


def test_knn_word_profiles_borrow_the_nearest_bag():
    bags = sp.csr_matrix(np.array([[1.0, 0.0, 0.0], [0.0, 3.0, 4.0]]))
    train = np.array([[1.0, 0.0], [0.0, 1.0]])
    train = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    bags = sp.vstack([bags, sp.csr_matrix([[1.0, 1.0, 1.0]])]).tocsr()
    mix = click_cf.visual_neighbour_mix(train, np.array([[-0.9, 1.2]]), k=1)
    assert mix.nnz == 1 and mix.indices[0] == 1
    got = click_cf.knn_word_profiles(bags, mix).toarray()
    assert np.allclose(got, [[0.0, 0.6, 0.8]])
    with pytest.raises(ValueError, match="rows"):
        click_cf.knn_word_profiles(bags[:2], mix)


def test_word_bags_from_clicks_and_texts():
    vocab = click_cf.WordVocabulary.from_queries(["red apple", "green"])
    log = pd.DataFrame({"query": ["red apple", "green", "red"], "key": ["a", "a", "b"], "clicks": [3, 1, 1]})
    bags = click_cf.word_bags(vocab, ["a", "b"], log=log).toarray()
    idf = click_cf.idf_weights(sp.csr_matrix([[np.log(4), np.log(2), np.log(4)], [0, 0, np.log(2)]]))
    assert np.allclose(bags, np.array([[np.log(4), np.log(2), np.log(4)], [0, 0, np.log(2)]]) * idf)
    texts = click_cf.word_bags(vocab, ["a", "b"], texts=["Red, red apple", "blue"]).toarray()
    assert texts[1].sum() == 0 and texts[0, vocab.index["red"] - 1] > texts[0, vocab.index["apple"] - 1]
    with pytest.raises(ValueError, match="exactly one"):
        click_cf.word_bags(vocab, ["a"])
    with pytest.raises(ValueError, match="'b' not in keys"):
        click_cf.word_bags(vocab, ["a"], log=log)


def test_annotation_pseudo_log_and_bag_cosines():
    log = click_cf.annotation_pseudo_log(["a", "b"], ["red apple", "car"], lambda t: t.split())
    assert log.values.tolist() == [["red", "a", 1], ["apple", "a", 1], ["car", "b", 1]]
    vocab = click_cf.WordVocabulary.from_queries(["red", "car"])
    bags = sp.csr_matrix(np.array([[1.0, 0.0], [0.6, 0.8]]))  # unit rows over (car, red)
    got = click_cf.bag_cosines(vocab, ["red", "car red"], bags, np.array([0, 0, 1]), np.array([0, 1, 1]))
    assert np.allclose(got, [0.0, 0.8, (0.6 + 0.8) / np.sqrt(2)])


def test_dcg_by_method_is_tidy_and_scaled():
    scored = pd.DataFrame({"query": ["q1"] * 3 + ["q2"] * 3, "key": list("abcabc"), "relevance": [3, 0, 2, 0, 0, 3],
                           "part": ["val"] * 3 + ["test"] * 3, "m1": [3.0, 2, 1, 3, 2, 1], "m2": [1.0, 2, 3, 1, 2, 3]})
    out = retrieval.dcg_by_method(scored)
    assert set(out["method"]) == {"m1", "m2"} and list(out.columns) == ["method", "query", "part", "dcg"]
    m1 = out[out["method"] == "m1"].set_index("query")
    assert m1.loc["q1", "dcg"] == pytest.approx(100 * metrics.dcg_at_k([3, 0, 2]))
    assert m1.loc["q2", "part"] == "test"


def test_subsample_queries_is_nested_and_claims_are_judged_per_query():
    from clickvision import claims as C
    from clickvision.experiments.paper_b import core as B

    log = pd.DataFrame({"query": [f"q{i % 40}" for i in range(100)], "key": "k", "clicks": 1})
    small, large = B.subsample_queries(log, 0.25, seed=3), B.subsample_queries(log, 0.5, seed=3)
    assert small["query"].nunique() == 10 and set(small["query"]) <= set(large["query"])
    with pytest.raises(ValueError, match="fraction"):
        B.subsample_queries(log, 0.0)
    rng = np.random.default_rng(0)
    by_seed = {}
    for sd in (0, 1):
        rows = []
        for q in range(60):
            base = rng.normal(10, 2)
            for m, shift in ((B.CF, 1.0), (B.PLAIN, 0.0), (B.CCL, 2.0), (B.BOW_CLICKS, -1.0), (B.BOW_TEXT, -1.0),
                             (B.TEXT_MODEL, -2.0), (B.RANDOM, -5.0), (B.ORACLE, 10.0)):
                rows.append({"method": m, "query": f"q{q}", "part": "test" if q < 50 else "val",
                             "dcg": base + shift + rng.normal(0, 0.3)})
        by_seed[sd] = pd.DataFrame(rows)
    scores = B.query_scores(by_seed)
    assert list(scores.columns) == ["method", "seed", "item", "value"] and scores["item"].nunique() == 50
    verdicts = {c.claim_id.split("-", 1)[1]: C.judge(c, scores).verdict for c in B.claim_list("toy")}
    assert verdicts == {"cf-beats-content-only-toy": "untestable", "cf-beats-ccl-toy": "contradicted",
                        "cf-beats-bowdnn-toy": "supported", "cf-step-helps-toy": "supported"}
    ccl = next(c for c in B.claim_list("toy") if "ccl" in c.claim_id)
    assert ccl.paper_effect == pytest.approx(79.88 - 50.59)
    table = B.dcg_table(by_seed[0], n_resamples=200)
    assert table.loc[B.CF, "paper"] == B.PAPER_TABLE1["CNN+CF"]


def test_click_ranking_loss_hand_case_and_gradient():
    pos, neg = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 1.0])
    hand = (np.log1p(np.exp(-2.0)) + np.log1p(np.exp(1.0))) / 2
    assert click_cf.click_ranking_loss(pos, neg).item() == pytest.approx(hand, rel=1e-6)
    w = torch.tensor([3.0, 1.0])
    assert click_cf.click_ranking_loss(pos, neg, w).item() == pytest.approx(
        (3 * np.log1p(np.exp(-2.0)) + np.log1p(np.exp(1.0))) / 4, rel=1e-6)
    torch.manual_seed(1)
    q = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    a = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    wt = torch.rand(5, dtype=torch.float64) + 0.1
    assert torch.autograd.gradcheck(
        lambda q, a, b: click_cf.click_ranking_loss((q * a).sum(1), (q * b).sum(1), wt), (q, a, b))
    with pytest.raises(ValueError, match="equal 1-D"):
        click_cf.click_ranking_loss(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match="weight"):
        click_cf.click_ranking_loss(torch.zeros(3), torch.zeros(3), torch.ones(2))


def test_fit_click_cf_with_the_ranking_loss_ranks_unseen_query_and_images():
    log, feats, keys, cluster = toy_graph()
    fit = click_cf.fit_click_cf(log, feats, keys, dim=4, epochs=12, lr=0.05, batch_size=64, feature_pcs=4, seed=0,
                                loss="ranking")
    held = np.arange(30, 40)
    scores = fit.query_vectors(["cat"]) @ fit.image_vectors(feats[held]).T
    assert scores[0][cluster[held] == 0].mean() > scores[0][cluster[held] == 1].mean()
    mse = click_cf.fit_click_cf(log, feats, keys, dim=4, epochs=12, lr=0.05, batch_size=64, feature_pcs=4, seed=0)
    assert not np.allclose(fit.image_vectors(feats), mse.image_vectors(feats))  # a different objective
    with pytest.raises(ValueError, match="loss must be one of"):
        click_cf.fit_click_cf(log, feats, keys, loss="hinge")


def test_budget_weights_match_brute_force_enumeration_of_subsets():
    from itertools import combinations

    from clickvision.experiments.paper_b import core as B

    for n in (1, 3, 7):
        for b in (1, 2, 3, 9):
            bb = min(b, n)
            count = np.zeros(n)
            for sub in combinations(range(n), bb):
                count[min(sub)] += 1  # rank 0 = best on val: the subset's val-best is its smallest rank
            assert np.allclose(B.budget_weights(n, b), count / count.sum())
    with pytest.raises(ValueError, match="budget_weights"):
        B.budget_weights(3, 0)


def _readings_frame():
    """Two queries per part; three readings of CNN+CF with val means 3 > 2 > 1, one plain method."""
    from clickvision.experiments.paper_b import core as B

    rows = []
    for m, val, test in ((f"{B.CF}@1", 1.0, 10.0), (f"{B.CF}@5", 3.0, 20.0), (f"{B.CF}[own]@2", 2.0, 40.0),
                         (B.PLAIN, 0.5, 5.0)):
        for q in ("a", "b"):
            rows += [{"method": m, "query": f"v{q}", "part": "val", "dcg": val},
                     {"method": m, "query": f"t{q}", "part": "test", "dcg": test}]
    return pd.DataFrame(rows)


def test_at_budget_full_budget_is_the_val_choice_and_budget_one_the_average():
    from clickvision.experiments.paper_b import core as B

    pq = _readings_frame()
    full = B.at_budget(pq, 3)
    cf = full[(full["method"] == B.CF) & (full["part"] == "test")]["dcg"]
    assert np.allclose(cf, 20.0)  # the val-best reading (@5)
    one = B.at_budget(pq, 1)
    assert np.allclose(one[(one["method"] == B.CF) & (one["part"] == "test")]["dcg"], (10 + 20 + 40) / 3)
    two = B.at_budget(pq, 2)  # val order @5, [own]@2, @1: weights 2/3, 1/3, 0
    assert np.allclose(two[(two["method"] == B.CF) & (two["part"] == "test")]["dcg"], 2 / 3 * 20 + 1 / 3 * 40)
    plain = full[full["method"] == B.PLAIN]
    assert len(plain) == 4 and set(full["method"]) == {B.CF, B.PLAIN}
    curve = B.budget_curve(pq, (B.CF,))
    assert curve["budget"].tolist() == [1, 2, 3]
    assert np.allclose(curve["DCG@25"], [70 / 3, 2 / 3 * 20 + 1 / 3 * 40, 20.0])
