"""Paper D on MovieLens (D.06): the title-text features, the cold test movies of the CF fit, the
tidy per-movie AP rows, alpha chosen on validation and the parameter checks -- on small inputs
(a synthetic ratings table stands in for the extract where the real one is not needed)."""
import numpy as np
import pandas as pd
import pytest
from clickvision import paths
from clickvision.experiments.paper_d import core as D
from clickvision.experiments.paper_d import movielens as ML
from clickvision.models import collab
from sklearn.feature_extraction.text import TfidfVectorizer

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore:validation mAP never got better:RuntimeWarning")]

GENRES = ["Comedy", "Drama", "Horror"]


def test_title_documents_add_year_and_decade_tokens():
    docs = ML.title_documents(["Toy Story", "Heat", "Untitled"], [1995, 1995.0, np.nan])
    assert docs == ["Toy Story year1995 decade1990", "Heat year1995 decade1990", "Untitled"]
    assert ML.title_documents(["Heat"], [1995], decade=False) == ["Heat year1995"]
    with pytest.raises(ValueError, match="titles and years"):
        ML.title_documents(["a", "b"], [1])


def test_text_features_are_fitted_on_training_documents_only():
    docs = ["red apple", "red car", "green apple", "green car", "blue whale", "blue whale apple"]
    train = np.array([0, 1, 2, 3])
    x, info = ML.text_features(docs, train, svd_dim=0, min_df=1)
    oracle = TfidfVectorizer(min_df=1, sublinear_tf=True, token_pattern=r"(?u)\b\w+\b").fit([docs[i] for i in train])
    np.testing.assert_allclose(x, oracle.transform(docs).toarray(), atol=1e-6)  # scikit-learn, fitted on train
    assert info["vocabulary"] == 4  # red, apple, car, green: 'blue' and 'whale' occur outside training only
    assert not x[4].any()  # a document of unseen words is the zero vector
    assert np.count_nonzero(x[5]) == 1  # only 'apple' is known
    # the SVD too is fitted on the training rows: changing a test document leaves the others' rows alone
    a, _ = ML.text_features(docs, train, svd_dim=2, min_df=1)
    b, _ = ML.text_features(docs[:4] + ["red red red", "car"], train, svd_dim=2, min_df=1)
    np.testing.assert_allclose(a[:4], b[:4], atol=1e-6)
    assert a.shape == (6, 2) and a.dtype == np.float32
    with pytest.raises(ValueError, match="svd_dim"):
        ML.text_features(docs, train, svd_dim=-1)
    with pytest.raises(ValueError, match="svd_dim"):
        ML.text_features(docs, train, svd_dim=4, min_df=1)  # not below the 4-term vocabulary
    with pytest.raises(ValueError, match="min_df"):
        ML.text_features(docs, train, min_df=0)


def _synthetic_movielens(monkeypatch, tmp_path, n_movies=90, n_users=60, seed=0):
    """Monkeypatch the module's data sources with a small ratings table: users like one genre."""
    rng = np.random.default_rng(seed)
    genre = np.arange(n_movies) % len(GENRES)
    keys = np.arange(100, 100 + n_movies)
    y = np.zeros((n_movies, len(GENRES)), bool)
    y[np.arange(n_movies), genre] = True
    split = np.array(["train", "train", "train", "train", "val", "test"] * (n_movies // 6 + 1))[:n_movies]
    taste = rng.integers(0, len(GENRES), n_users)
    rows = [(u, keys[m]) for u in range(n_users) for m in range(n_movies)
            if rng.random() < (0.5 if genre[m] == taste[u] else 0.05)]
    events = pd.DataFrame(rows, columns=["user", "item"]).assign(rating=4.0)
    titles = [f"{GENRES[g].lower()} story {i}" for i, g in enumerate(genre)]
    table = pd.DataFrame({"item": keys, "title": titles, "year": 1990 + np.arange(n_movies) % 20,
                          "genres": [GENRES[g] for g in genre]})

    class Data:
        items = table

    monkeypatch.setattr(ML, "movielens_items",
                        lambda seed=0: (D.LabelledItems(keys, split, y, GENRES, rule="3 genres"), events))
    monkeypatch.setattr(ML.ml_data, "load_movielens", lambda: Data)
    monkeypatch.setattr(paths, "CACHE_DIR", tmp_path / "cache")  # item_cf_fit's cache: not the project's
    return keys, split, events


def _cf_settings():
    return D.CFSettings(ease_lams=(10.0,), ease_k=4, max_val_users=50)


def test_test_movies_are_cold_in_the_cf_fit(monkeypatch, tmp_path):
    keys, split, events = _synthetic_movielens(monkeypatch, tmp_path)
    seen = []
    real_fit = ML.item_cf_fit

    def spy(ev, item_keys, *args, **kwargs):
        seen.append(np.asarray(item_keys))
        return real_fit(ev, item_keys, *args, **kwargs)

    monkeypatch.setattr(ML, "item_cf_fit", spy)
    run = ML.movielens_run(min_ratings=1, cf_settings=_cf_settings(), svd_dim=0, min_df=1, cf2label_epochs=2)
    test_keys = set(keys[split == "test"])
    assert not test_keys & set(seen[0]), "a test movie is a column of the CF fit"
    assert set(seen[0]) == set(keys[split != "test"])  # all-but-test: training and validation movies
    n_test_ratings = int(events["item"].isin(test_keys).sum())
    assert run.info["cf_events"] == len(events) - n_test_ratings  # no test rating reached the fit
    # the target does not move when the test movies' ratings change (here: other users rated them;
    # their number, which selects the movies, is kept)
    moved = events.copy()
    at_test = moved["item"].isin(test_keys).to_numpy()
    moved.loc[at_test, "user"] = np.random.default_rng(1).integers(1000, 1100, at_test.sum())
    monkeypatch.setattr(ML, "movielens_items", lambda seed=0, f=ML.movielens_items: (f(seed)[0], moved))
    cold = ML.movielens_run(min_ratings=1, cf_settings=_cf_settings(), svd_dim=0, min_df=1, cf2label_epochs=2)
    np.testing.assert_allclose(cold.q, run.q)
    # 'train' scope: the training movies only
    run_tr = ML.movielens_run(min_ratings=1, cf_settings=_cf_settings(), svd_dim=0, min_df=1, cf2label_epochs=2,
                              cf_scope="train")
    assert set(seen[-1]) == set(keys[split == "train"])
    assert run_tr.q.shape == run.q.shape == (int((split == "train").sum()), 5)  # ease_k + log count
    assert run.gate["n_items"] == int((split == "train").sum()) and "scores" in run.gate


def test_min_ratings_keeps_the_rated_movies_only(monkeypatch, tmp_path):
    keys, _, events = _synthetic_movielens(monkeypatch, tmp_path)
    counts = events.groupby("item").size().reindex(keys, fill_value=0)
    k = int(np.median(counts))
    items, _, n, info = ML.movielens_text_items(min_ratings=k, svd_dim=0, min_df=1)
    assert set(items.keys) == set(keys[counts.to_numpy() >= k]) and (n >= k).all()
    assert info["movies"] == len(items.keys) and items.x.shape[0] == len(items.keys)
    with pytest.raises(ValueError, match="min_ratings"):
        ML.movielens_text_items(min_ratings=0)
    with pytest.raises(ValueError, match="min_ratings"):
        ML.movielens_text_items(min_ratings=10_000)


def test_movielens_run_rejects_bad_parameters(monkeypatch, tmp_path):
    _synthetic_movielens(monkeypatch, tmp_path)
    with pytest.raises(ValueError, match="cf_scope"):
        ML.movielens_run(cf_scope="everything")
    with pytest.raises(ValueError, match="cf_model"):
        ML.movielens_run(cf_model="als")


def _tiny_run(n=120, c=3, d=6, seed=0):
    """An ImageRun on random features whose labels depend on them (no data set needed)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = np.zeros((n, c), bool)
    y[np.arange(n), np.abs(x[:, :c]).argmax(1)] = True
    split = np.array(["train", "train", "train", "val", "test"] * (n // 5))
    items = D.LabelledItems(np.arange(1000, 1000 + n), split, y, [f"g{i}" for i in range(c)], x)
    tr = items.rows("train")
    q = rng.normal(size=(len(tr), 4))
    gate = {"map": 0.5, "scores": rng.normal(size=(len(tr), c))}
    return D.ImageRun(items, q, np.ones(len(tr)), gate=gate, info={"ratings": np.arange(len(tr)) % 25 + 1})


def test_label_paucity_tidy_rows_and_alpha_chosen_on_validation():
    run = _tiny_run()
    fit = collab.FitSettings(epochs=2, batch_size=32, device="cpu")
    ratios, seeds, alphas = (0.5, 1.0), (0, 1), (0.5, 2.0)
    summary, per_seed, sweep = ML.label_paucity(run, ratios, alphas, seeds, settings=fit, n_resamples=5)
    items = summary.attrs["items"]
    n_test = len(run.items.rows("test"))
    assert list(items.columns) == ["method", "seed", "label_ratio", "item", "value"]
    assert len(items) == len(ratios) * len(seeds) * 2 * n_test
    assert set(items["method"]) == {ML.TEXT_ONLY, ML.MTL}
    assert set(items["item"]) == set(run.items.keys[run.items.rows("test")])  # movie ids, not row numbers
    assert not items.duplicated(["method", "seed", "label_ratio", "item"]).any()
    # the per-movie AP is scikit-learn's sample-averaged AP of the same scores
    from sklearn.metrics import average_precision_score
    te = run.items.rows("test")
    out = D.fit_and_score(run, "image_only", "uniform", 1.0, 0, D.mask_labels(run.items.y[run.items.rows("train")],
                                                                              0.5, "items", 0), fit)
    ap = items.query("method == @ML.TEXT_ONLY and seed == 0 and label_ratio == 0.5")["value"].mean()
    assert ap == pytest.approx(average_precision_score(run.items.y[te], out["test_scores"], average="samples"))
    # alpha: each ratio's validation selection (the paper's, 2.0 on this grid, unless beaten), in the summary
    for r in ratios:
        s = sweep[sweep["label_ratio"] == r]
        assert s.loc[s["reference"], "alpha"].item() == 2.0
        chosen = s.loc[s["chosen"], "alpha"].item()
        assert (summary.loc[summary["label_ratio"] == r, "alpha"] == chosen).all()
    assert set(summary["method"]) == {ML.TEXT_ONLY, ML.MTL} and len(per_seed) == len(ratios) * len(seeds) * 2
    # Table 5 at full labels reuses the ratio-1 fits: same per-movie AP
    table, _ = ML.table5(run, float(summary.loc[summary["label_ratio"] == 1.0, "alpha"].iloc[0]), seeds,
                         settings=fit, n_resamples=5)
    t_items = table.attrs["items"]
    pd.testing.assert_frame_equal(t_items.reset_index(drop=True),
                                  items[items["label_ratio"] == 1.0].reset_index(drop=True), check_like=True)
    assert table.loc[table["method"] == ML.TEXT_ONLY, "paper_mAP (MovieLens)"].item() == 0.329
    # the gain difference rows the scarcity claim is judged on
    diff = ML.gain_difference_rows(items, 0.5, 1.0)
    w = items.pivot_table(index=["label_ratio", "seed", "item"], columns="method", values="value")
    expect = (w[ML.MTL] - w[ML.TEXT_ONLY]).loc[0.5].mean()
    assert diff[diff["method"] == "gain at ratio 0.5"]["value"].mean() == pytest.approx(expect)
    with pytest.raises(ValueError, match="label ratio 0.25"):
        ML.gain_difference_rows(items, 0.25, 1.0)


def test_paucity_and_table5_reject_bad_parameters():
    run = _tiny_run()
    with pytest.raises(ValueError, match="ratios"):
        ML.label_paucity(run, (0.0, 1.0), (1.0,))
    with pytest.raises(ValueError, match="alphas"):
        ML.label_paucity(run, (1.0,), ())
    with pytest.raises(ValueError, match="seeds"):
        ML.label_paucity(run, (1.0,), (1.0,), seeds=())
    with pytest.raises(ValueError, match="n_resamples"):
        ML.label_paucity(run, (1.0,), (1.0,), n_resamples=0)
    with pytest.raises(ValueError, match="Text-only"):
        ML.table5(run, 1.0, methods=(ML.TABLE5_METHODS[3],))


def test_gate_by_count_against_a_hand_computed_case():
    run = _tiny_run()
    table = ML.gate_by_count(run, edges=(1, 10, 20))
    assert list(table["ratings"]) == ["1-9", "10-19", "20+"]
    run.info["ratings"] = run.info["ratings"] + 10  # 11 to 35 ratings: the first group starts at 11
    assert list(ML.gate_by_count(run)["ratings"]) == ["11-19", "20+"]
    run.info["ratings"] = run.info["ratings"] - 10
    n = run.info["ratings"]
    assert table["movies"].sum() == len(n)
    y, s = run.items.y[run.items.rows("train")], run.gate["scores"]
    from sklearn.metrics import average_precision_score
    sel = n >= 20
    keep = y[sel].any(0)
    expect = np.mean([average_precision_score(y[sel][:, j], s[sel][:, j]) for j in np.flatnonzero(keep)])
    assert table["map"].iloc[-1] == pytest.approx(expect)
    assert table["prior"].iloc[-1] == pytest.approx(y[sel][:, keep].mean(0).mean())
    with pytest.raises(ValueError, match="edges"):
        ML.gate_by_count(run, edges=(5, 2))


def test_weakest_ratio_decides_the_every_ratio_claim():
    from clickvision.claims import Claim, Judgement

    c = Claim("D", "x", "", "direction", arms=("a", "b"))

    def j(lo, hi):
        return Judgement(c, "direction", "inconclusive", estimate=(lo + hi) / 2, ci_low=lo, ci_high=hi)

    # no interval below 0: the lowest lower bound decides
    assert ML.weakest_ratio({0.1: j(-0.03, 0.02), 0.5: j(-0.01, 0.01), 1.0: j(-0.02, 0.0005)}) == 0.1
    # an interval wholly below 0 decides (the claim fails there), even beside a wider one
    assert ML.weakest_ratio({0.1: j(-0.05, 0.04), 1.0: j(-0.03, -0.001), 0.5: j(-0.02, -0.0001)}) == 1.0
    with pytest.raises(ValueError, match="contrasts"):
        ML.weakest_ratio({})


def test_min_ratings_sweep_rows(monkeypatch, tmp_path):
    _synthetic_movielens(monkeypatch, tmp_path)
    fit = collab.FitSettings(epochs=2, batch_size=32, device="cpu")
    out = ML.min_ratings_sweep((1, 3), (1.0,), (0, 1), settings=fit, n_resamples=5, cf_settings=_cf_settings(),
                               svd_dim=0, min_df=1, cf2label_epochs=2)
    assert list(out["min_ratings"]) == [1, 3] and (out["movies"].diff().fillna(0) <= 0).all()
    assert {"gate_map", "alpha", "text_only_map", "mtl_map", "gain_%", "ap_diff", "ap_lo", "ap_hi"} <= set(out.columns)
    assert (out["ap_lo"] <= out["ap_diff"]).all() and (out["ap_diff"] <= out["ap_hi"]).all()
    expect = 100 * (out["mtl_map"] - out["text_only_map"]) / out["text_only_map"]
    np.testing.assert_allclose(out["gain_%"], expect, rtol=1e-9)
    with pytest.raises(ValueError, match="min_ratings"):
        ML.min_ratings_sweep((0,), (1.0,))
