"""Paper A's concept-grouped K-fold views and the domain choice from 00.02's measured gaps."""
import numpy as np
import pandas as pd
import pytest

from clickvision.experiments.paper_a import data as PD


def _with_concepts(data, n_concepts):
    """Synthetic paper A data whose i-th source and i-th target image draw one concept (i mod n)."""
    for d in (data.source, data.target):
        d.items = d.items.assign(concept=[f"c{i % n_concepts}" for i in range(len(d.items))])
    return data


def _full(data):
    """The synthetic word click matrix with every source image counted as clicked-on training data."""
    from clickvision.click.features import WordClickMatrix

    wc = data.word_clicks
    return WordClickMatrix(wc.counts, wc.keys, wc.vocabulary, wc.word_clicks, np.ones(len(wc.keys), bool),
                           {"train_words": len(wc.vocabulary)})


def test_every_image_tested_once_and_concepts_never_cross(paper_a_synth):
    data = _with_concepts(paper_a_synth(n_classes=3, per_class=20), 15)
    views = list(PD.kfold_views(data, k=5, seed=0, full=_full(data)))
    assert [f for f, _ in views] == list(range(5))
    seen = {"source": [], "target": []}
    for f, v in views:
        for d in (v.source, v.target):
            seen[d.name] += d.items["key"][d.split == "test"].tolist()
            assert (d.items["split"].to_numpy() == d.split).all()
        parts = {s: set(v.source.items["concept"][v.source.split == s]) | set(v.target.items["concept"][v.target.split == s])
                 for s in ("train", "val", "test")}
        assert not (parts["test"] & parts["train"]) and not (parts["test"] & parts["val"])
        assert not (parts["val"] & parts["train"])
        assert len(parts["test"]) == len(parts["val"]) == 3 and len(parts["train"]) == 9  # 60 / 20 / 20
        assert v.meta["fold"] == f and v.meta["folds"] == 5
    for name, d in (("source", data.source), ("target", data.target)):
        assert sorted(seen[name]) == sorted(d.items["key"])  # each image a test item exactly once


def test_vocabulary_and_idf_come_from_the_views_training_images_only(paper_a_synth):
    data = _with_concepts(paper_a_synth(n_classes=3, per_class=20), 15)
    full = _full(data)
    for _, v in PD.kfold_views(data, k=5, seed=1, full=full):
        train = v.source.split == "train"
        assert (v.word_clicks.train == train).all()
        clicked = np.asarray(full.counts[train].sum(axis=0)).ravel()
        ranked = sorted(np.flatnonzero(clicked > 0), key=lambda j: (-clicked[j], full.vocabulary[j]))[:data.k]
        assert v.vocabulary == [full.vocabulary[j] for j in ranked]
        assert v.source.clicks.shape == (len(v.source.items), v.k)
    # the original data are untouched
    assert (data.source.split == data.source.items["split"].to_numpy()).all()


def test_folds_are_reproducible_and_bad_input_is_named(paper_a_synth):
    data = _with_concepts(paper_a_synth(), 15)
    a = [v.source.split.tolist() for _, v in PD.kfold_views(data, 5, 3, full=_full(data))]
    b = [v.source.split.tolist() for _, v in PD.kfold_views(data, 5, 3, full=_full(data))]
    assert a == b
    with pytest.raises(ValueError, match="k must be an int >= 3"):
        PD.kfold_views(data, 2, full=_full(data))
    with pytest.raises(ValueError, match="no 'concept' column"):
        PD.kfold_views(paper_a_synth(), 5)
    with pytest.raises(ValueError, match="row-aligned"):
        from clickvision.click.features import reselect_vocabulary

        PD.kfold_views(data, 5, full=reselect_vocabulary(_full(data), np.arange(10), 3))


def test_over_folds_tags_rows_and_k1_is_the_data_sets_split(paper_a_synth):
    data = _with_concepts(paper_a_synth(), 15)
    full = _full(data)
    calls = []

    def run(view):
        calls.append(view)
        return [{"metric": "n_test", "value": float((view.source.split == "test").sum())}]

    one = PD.over_folds(data, 1, 0, run)
    assert calls[-1] is data and one["fold"].tolist() == [0]
    import clickvision.experiments.paper_a.data as mod
    orig = mod._source_word_clicks
    mod._source_word_clicks = lambda d, vocabulary_keys: full
    try:
        five = PD.over_folds(data, 5, 0, run)
    finally:
        mod._source_word_clicks = orig
    assert five["fold"].tolist() == [0, 1, 2, 3, 4] and five["value"].sum() == len(data.source.items)


def _gap_results(tmp_path, rows):
    base = {"experiment": PD.GAP_EXPERIMENT, "profile": "default", "seed": 0, "time": "2026-12-01T00:00:00"}
    frame = pd.DataFrame([{**base, "run_id": r[0], "metric": r[1], "value": r[2]} for r in rows])
    frame.to_csv(tmp_path / f"{PD.GAP_EXPERIMENT}.csv", index=False)
    return tmp_path


def test_choose_domains_ranks_by_the_lower_end_of_the_gap(tmp_path):
    stats = {  # vendor: gap, lo, hi, paired
        "near": (0.05, 0.03, 0.08, 239), "far": (0.40, 0.34, 0.46, 231), "wide": (0.45, 0.20, 0.70, 200),
        "small": (0.60, 0.50, 0.70, 40)}
    rows = [("r1", f"{s} google->{v}", val) for v, t in stats.items()
            for s, val in zip(("gap", "gap_lo", "gap_hi", "n_paired"), t)]
    rows.append(("r1", "acc google->google", 0.63))
    choice = PD.choose_domains("google", n_targets=2, results_dir=_gap_results(tmp_path, rows))
    assert choice.targets == ("far", "wide")  # 'small' shares too few concepts; 'wide' is less sure than 'far'
    assert not choice.candidates.loc["small", "eligible"] and choice.candidates.loc["far", "rank"] == 1
    assert "far (gap 40.0 points" in choice.reason and "SIMULATED" in choice.reason
    with pytest.raises(ValueError, match="only 3 vendor"):
        PD.choose_domains("google", n_targets=4, results_dir=tmp_path)
    with pytest.raises(ValueError, match="no measured gaps from source 'twitter'.*00.02"):
        PD.choose_domains("twitter", results_dir=tmp_path)
    with pytest.raises(ValueError, match="n_targets"):
        PD.choose_domains("google", n_targets=0, results_dir=tmp_path)


def test_choose_domains_reads_the_latest_run_only(tmp_path):
    old = [("old", f"{s} google->a", v) for s, v in (("gap", 0.9), ("gap_lo", 0.8), ("gap_hi", 1.0), ("n_paired", 200))]
    new = [("new", f"{s} google->b", v) for s, v in (("gap", 0.3), ("gap_lo", 0.2), ("gap_hi", 0.4), ("n_paired", 200))]
    d = _gap_results(tmp_path, old + new)
    f = pd.read_csv(d / f"{PD.GAP_EXPERIMENT}.csv")
    f.loc[f["run_id"] == "new", "time"] = "2026-12-02T00:00:00"
    f.to_csv(d / f"{PD.GAP_EXPERIMENT}.csv", index=False)
    assert PD.choose_domains("google", results_dir=d).targets == ("b",)


def test_summarize_pools_the_folds_of_each_seed_before_the_sd_over_seeds():
    from clickvision.experiments.paper_a.core import summarize

    rows = pd.DataFrame({"features": "V", "metric": "acc_s", "seed": [0, 0, 1, 1], "fold": [0, 1, 0, 1],
                         "value": [0.5, 0.7, 0.6, 0.8]})
    s = summarize(rows, ["features"]).iloc[0]
    assert s["mean"] == pytest.approx(0.65) and s["seeds"] == 2
    assert s["std"] == pytest.approx(np.std([0.6, 0.7], ddof=1))


def test_choose_domains_falls_back_to_the_committed_table(tmp_path, monkeypatch):
    from clickvision import paths

    committed = tmp_path / "repo"
    (committed / "results").mkdir(parents=True)
    rows = [("r1", f"{s} google->far", v) for s, v in (("gap", 0.4), ("gap_lo", 0.3), ("gap_hi", 0.5), ("n_paired", 200))]
    _gap_results(committed / "results", rows)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(paths, "RESULTS_DIR", scratch)  # a smoke run's empty results folder
    monkeypatch.setattr(paths, "PROJ_ROOT", committed)
    choice = PD.choose_domains("google")
    assert choice.targets == ("far",) and "the committed table" in choice.reason
    with pytest.raises(ValueError, match="no measured gaps from source 'google'"):
        PD.choose_domains("google", results_dir=scratch)  # an explicit folder is the only one read
