"""Tests of the SIMULATED click log, Dev set and their build (tiny synthetic image sets)."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from clickvision.click import build as click_build
from clickvision.click import simulator as sim
from clickvision.click.interactions import InteractionSimConfig, simulate_interactions
from clickvision.click.log import iter_click_log
from clickvision.data import manifest
from clickvision.data.base import DataError, ImageSet, MissingSourceError

QUIET = dict(label_noise_rate=0.0, junk_click_rate=0.0)


def synthetic_images(n_per_class: int = 30, n_classes: int = 4, seed: int = 0) -> pd.DataFrame:
    """Classes with their own words plus shared generic words; splits train/train/val/test."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n_classes):
        words = [f"c{c}w{k}" for k in range(12)]
        for i in range(n_per_class):
            name = " ".join(rng.choice(words, 2, replace=False))
            kws = [*rng.choice(words, 3, replace=False), rng.choice(["icon", "symbol", "cute", "round"])]
            rows.append(dict(key=f"k{c}_{i}", path="", label=f"class{c}", group=f"g{c // 2}",
                             split=["train", "train", "val", "test"][i % 4], text=f"{name} | {', '.join(kws)}"))
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def images() -> pd.DataFrame:
    return synthetic_images()


def _log(images, **kw) -> pd.DataFrame:
    seed = kw.pop("seed", 0)
    return pd.DataFrame(sim.simulate_click_log(images, sim.ClickSimConfig(**kw), seed))


def test_query_candidates_hand_checked():
    grams, pairs = sim.query_candidates("Face with Tears of Joy | smile, happy face", max_words=3)
    # n-grams by length within a phrase; none starts or ends with a stop word ("with", "of")
    assert grams == ["face", "tears", "joy", "face with tears", "tears of joy", "smile", "happy", "happy face"]
    assert pairs == ["face smile", "tears smile", "joy smile", "face happy", "tears happy", "tears face",
                     "joy happy", "joy face", "smile happy", "smile face"]
    assert sim.text_phrases("A|a|  ") == [("a",)]


def test_same_seed_same_bytes_other_seed_other_log(images, tmp_path):
    paths = [tmp_path / f"{i}.tsv" for i in range(3)]
    for path, seed in zip(paths, (7, 7, 8)):
        sim.write_simulated_click_log(images, path, seed=seed)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()
    assert list(iter_click_log(paths[0])) == list(sim.simulate_click_log(images, seed=7))


def test_log_rows_are_valid_triads_from_train_queries(images):
    log = _log(images)
    assert len(log) > 0 and (log["clicks"] >= 1).all() and log["clicks"].dtype.kind == "i"
    assert not log.duplicated(["query", "key"]).any()
    assert set(log["key"]) <= set(images["key"])
    train_queries = set()
    for text in images.loc[images["split"] == "train", "text"]:
        grams, pairs = sim.query_candidates(text)
        train_queries |= set(grams) | set(pairs)
    assert set(log["query"]) <= train_queries
    assert log["key"].isin(images.loc[images["split"] != "train", "key"]).any()  # every image is searchable


def test_without_noise_every_click_shares_a_word_with_the_image(images):
    log = _log(images, **QUIET)
    words = {k: set(t.replace("|", " ").replace(",", " ").split()) for k, t in zip(images["key"], images["text"])}
    assert all(set(q.split()) & words[k] for q, k in zip(log["query"], log["key"]))


def test_label_noise_images_get_the_donor_class_queries(images):
    cfg = sim.ClickSimConfig(label_noise_rate=0.25, junk_click_rate=0.0)
    noise = sim.assign_label_noise(images, cfg, seed=3)
    assert noise["noisy"].sum() == round(0.25 * len(images))
    noisy = noise[noise["noisy"]]
    assert (noisy["click_label"] != noisy["label"]).all()
    label_of = dict(zip(images["key"], images["label"]))
    assert [label_of[d] for d in noisy["donor_key"]] == noisy["click_label"].tolist()
    log = pd.DataFrame(sim.simulate_click_log(images, cfg, seed=3))
    donor_words = {r.key: set(images.set_index("key").loc[r.donor_key, "text"].replace("|", " ").replace(",", " ").split())
                   for r in noisy.itertuples()}
    noisy_rows = log[log["key"].isin(donor_words)]
    assert len(noisy_rows) > 0
    assert all(set(q.split()) & donor_words[k] for q, k in zip(noisy_rows["query"], noisy_rows["key"]))


def test_junk_clicks_add_text_unrelated_triads(images):
    words = {k: set(t.replace("|", " ").replace(",", " ").split()) for k, t in zip(images["key"], images["text"])}
    log = _log(images, label_noise_rate=0.0, junk_click_rate=0.5)
    unrelated = sum(not (set(q.split()) & words[k]) for q, k in zip(log["query"], log["key"]))
    assert unrelated > 0.05 * len(log)


def _click_probe_accuracy(images, informativeness: float) -> float:
    """Paper A's leakage check: predict the label from an image's clicked query words."""
    log = _log(images, informativeness=informativeness, **QUIET)
    doc = log.assign(q=(log["query"] + " ") * log["clicks"]).groupby("key")["q"].sum()
    table = images.set_index("key").join(doc).fillna({"q": ""})
    x = CountVectorizer(token_pattern=r"\S+").fit_transform(table["q"])
    return cross_val_score(LogisticRegression(max_iter=2000), x, table["label"], cv=4).mean()


def test_informativeness_controls_how_much_clicks_tell_the_label(images):
    assert _click_probe_accuracy(images, 1.0) > 0.9
    assert _click_probe_accuracy(images, 0.0) < 0.45  # chance is 0.25 (4 balanced classes)


def test_position_bias_clicks_fall_as_rank_to_the_minus_eta():
    same = pd.DataFrame({"key": [f"k{i}" for i in range(8)], "label": "x", "text": "red apple"})
    cfg = sim.ClickSimConfig(engine_noise=0.0, sessions_per_query=3000, query_splits=None, dev_queries=0, **QUIET)
    clicks = pd.DataFrame(sim.simulate_click_log(same, cfg, 0)).groupby("key")["clicks"].sum()
    ratio = clicks["k0"] / clicks[[f"k{i}" for i in range(8)]]  # equal texts: ties keep index order
    np.testing.assert_allclose(ratio.to_numpy(), np.arange(1, 9), rtol=0.15)


def test_zipf_popularity_makes_a_long_tail(images):
    stats = sim.click_log_stats(_log(images, sessions_per_query=5.0))
    assert stats["triads_per_query_max"] >= 5 * stats["triads_per_query_median"]


def test_click_log_stats_hand_checked():
    recs = [sim.ClickRecord("a", "k1", 1), sim.ClickRecord("a", "k2", 3), sim.ClickRecord("b", "k1", 2)]
    s = sim.click_log_stats(recs)
    assert (s["triads"], s["queries"], s["images"], s["clicks"]) == (3, 2, 2, 6)
    assert s["triads_per_image"] == 1.5 and s["triads_per_query"] == 1.5
    assert s["triads_per_image_max"] == 2 and s["clicks_max"] == 3
    assert s["single_click_share"] == pytest.approx(1 / 3)
    assert sim.click_log_stats(pd.DataFrame(recs))["clicks_q50"] == 2.0
    with pytest.raises(DataError):
        sim.click_log_stats([])


def _dev_images() -> pd.DataFrame:
    rows = [("t1", "fruit", "food", "train", "banana"), ("t2", "vehicle", "transport", "train", "truck"),
            ("A", "fruit", "food", "test", "red apple"), ("B", "fruit", "food", "test", "green apple"),
            ("C", "vehicle", "transport", "test", "red car"), ("D", "fruit", "food", "test", "banana"),
            ("E", "fruit", "food", "test", "big red apple"), ("F", "vegetable", "food", "test", "red pepper")]
    return pd.DataFrame(rows, columns=["key", "label", "group", "split", "text"])


def test_dev_set_grades_hand_checked():
    cfg = sim.ClickSimConfig(label_noise_rate=0.0, dev_queries=100)
    dev = sim.simulate_dev_set(_dev_images(), cfg, seed=0)
    grade = {(q, k): r for q, k, r in dev.itertuples(index=False)}
    # Every list holds all six test images (short lists are padded). "big red apple" comes from
    # E (fruit, food): E has every word (3); A, B, D are fruit (2); F shares "red" and the
    # group food (2); C shares only "red" and is a vehicle (0).
    assert {k: r for (q, k), r in grade.items() if q == "big red apple"} == {"E": 3, "A": 2, "B": 2, "D": 2,
                                                                             "F": 2, "C": 0}
    # "red" comes from A, C, E, F: they have it (3); B and D are fruit without it (2).
    assert {k: r for (q, k), r in grade.items() if q == "red"} == {"A": 3, "C": 3, "E": 3, "F": 3, "B": 2, "D": 2}
    assert {k: r for (q, k), r in grade.items() if q == "car"} == {"C": 3, "A": 0, "B": 0, "D": 0, "E": 0, "F": 0}
    # "banana" comes from D; t1 (train) has it too but is not a candidate; F is food but lacks it.
    assert {k: r for (q, k), r in grade.items() if q == "banana"} == {"D": 3, "A": 2, "B": 2, "E": 2, "C": 0, "F": 0}
    assert dev.groupby("query").size().eq(6).all()
    log = pd.DataFrame(sim.simulate_click_log(_dev_images(), cfg, seed=0))
    assert not set(log["query"]) & set(dev["query"])  # no Dev query is in the log
    assert set(dev["relevance"]) <= {0, 2, 3}


def test_dev_set_holds_out_log_queries_and_respects_sizes(images):
    cfg = sim.ClickSimConfig(dev_queries=20, dev_candidates=10)
    dev = sim.simulate_dev_set(images, cfg, seed=0)
    log = _log(images)
    assert dev["query"].nunique() <= 20 and dev.groupby("query").size().max() <= 10
    assert not set(dev["query"]) & set(log["query"])
    assert set(dev["key"]) <= set(images.loc[images["split"].isin(["val", "test"]), "key"])
    assert (dev.groupby("query")["relevance"].max() > 0).all()
    pd.testing.assert_frame_equal(dev, sim.simulate_dev_set(images, cfg, seed=0))


def test_write_dev_set_reads_back_as_clickture_dev(tmp_path):
    from clickvision.data.originals.clickture import read_dev

    dev = sim.simulate_dev_set(_dev_images(), sim.ClickSimConfig(label_noise_rate=0.0), seed=0)
    back = read_dev(sim.write_dev_set(dev, tmp_path / "dev.tsv"))
    pd.testing.assert_frame_equal(back[["query", "key", "relevance"]], dev)
    assert set(back["judgment"]) <= {"Excellent", "Good", "Bad"}


def test_synthetic_scale_log_exact_rows_bounded_chunks():
    rows = list(sim.synthetic_scale_log(n_rows=50_000, n_images=3_000, seed=1, chunk_queries=5_000))
    df = pd.DataFrame(rows)
    assert len(df) == 50_000 and not df.duplicated(["query", "key"]).any() and (df["clicks"] >= 1).all()
    stats = sim.click_log_stats(df)
    assert 1.5 < stats["triads_per_query"] < 2.6  # Clickture-Lite: 1.97
    assert stats["images"] > 0.9 * 3_000
    first = list(itertools.islice(sim.synthetic_scale_log(n_rows=10**9, n_images=10, chunk_queries=100), 5))
    assert len(first) == 5  # lazy: a huge log is not materialised
    assert rows[:100] == list(itertools.islice(sim.synthetic_scale_log(50_000, 3_000, 1, 5_000), 100))


def test_bad_input_names_the_problem_and_writes_nothing(images, tmp_path):
    with pytest.raises(ValueError, match="label_noise_rate"):
        sim.ClickSimConfig(label_noise_rate=1.5)
    with pytest.raises(ValueError, match="page_size"):
        sim.ClickSimConfig(page_size=0)
    with pytest.raises(DataError, match="text"):
        sim.simulate_click_log(images.drop(columns="text"))
    with pytest.raises(DataError, match="splits"):
        sim.simulate_click_log(images.assign(split="test"))
    only_train = images.assign(split="train")  # no val/test: nothing to hold out, the log still works
    assert len(list(sim.simulate_click_log(only_train))) > 0
    with pytest.raises(DataError, match=r"no image in splits \[.val., .test.\] for dev"):
        sim.simulate_dev_set(only_train)
    out = tmp_path / "log.tsv"
    with pytest.raises(DataError, match="duplicate key"):
        sim.write_simulated_click_log(pd.concat([images, images.head(1)]), out)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_build_records_simulated_entries_skips_finished_work_and_reads_back(images, tmp_path, monkeypatch):
    monkeypatch.setattr(manifest, "MANIFEST", tmp_path / "MANIFEST.json")
    monkeypatch.setattr(click_build, "CLICKS_DIR", tmp_path / "clicks")
    monkeypatch.setattr(click_build, "INTERACTIONS_DIR", tmp_path / "inter")
    imageset = ImageSet("synthetic", images)
    entry = click_build.build_click_data("synthetic", imageset)
    assert entry["simulated"] is True and entry["counts"]["dev_queries"] > 0
    assert entry["counts"]["noisy_images"] == round(0.2 * len(images))
    log = click_build.click_log_path("synthetic")
    assert entry["counts"]["triads"] == sum(1 for _ in iter_click_log(log))
    mtime = log.stat().st_mtime_ns
    click_build.build_click_data("synthetic", imageset)
    assert log.stat().st_mtime_ns == mtime  # second run does nothing
    dev = click_build.load_dev_set("synthetic")
    pd.testing.assert_frame_equal(dev[["query", "key", "relevance"]], sim.simulate_dev_set(images, seed=click_build.SEED))
    pd.testing.assert_frame_equal(click_build.load_label_noise("synthetic"),
                                  sim.assign_label_noise(images, seed=click_build.SEED), check_dtype=False)
    small = InteractionSimConfig(interactions_per_item=10.0, density=0.05)
    inter = click_build.build_interactions("synthetic", imageset, small)
    assert inter["simulated"] is True and inter["counts"]["events"] > 0
    back = click_build.load_simulated_interactions("synthetic")
    pd.testing.assert_frame_equal(back.events, simulate_interactions(images, small, click_build.SEED).events)
    assert back.meta["simulated"] is True
    assert set(manifest.load_manifest()) == {"clicks-synthetic", "interactions-synthetic"}
    with pytest.raises(MissingSourceError, match="not built"):
        click_build.load_dev_set("nothing")


def test_build_without_embedded_sets_says_how_to_build(tmp_path, monkeypatch):
    monkeypatch.setattr(manifest, "MANIFEST", tmp_path / "MANIFEST.json")
    with pytest.raises(MissingSourceError, match="python -m clickvision.data build"):
        click_build.build()


# --- hidden mode (paper B, issue #19): grades and clicks from the full text, the engine from a noisier one ---

def test_shared_mode_config_dict_is_unchanged_and_bad_mode_is_named():
    d = sim.ClickSimConfig().to_dict()
    assert "mode" not in d and "index_keep" not in d  # data/MANIFEST.json params stay as recorded
    assert sim.ClickSimConfig(mode="hidden").to_dict()["mode"] == "hidden"
    with pytest.raises(ValueError, match="mode"):
        sim.ClickSimConfig(mode="other")
    with pytest.raises(ValueError, match="index_keep"):
        sim.ClickSimConfig(index_keep=1.5)


def test_hidden_mode_indexes_a_noisier_text(images):
    cfg = sim.ClickSimConfig(mode="hidden", label_noise_rate=0.0)
    idx = sim.indexed_texts(images, cfg, 0)["indexed_text"]
    full = images["text"]
    for t, f in zip(idx, full):
        kept, every = sim.text_phrases(t), sim.text_phrases(f)
        assert kept[0] == every[0] and set(kept) <= set(every)  # the first phrase always, a subset of the rest
    dropped = 1 - sum(len(sim.text_phrases(t)) - 1 for t in idx) / sum(len(sim.text_phrases(f)) - 1 for f in full)
    assert 0.3 < dropped < 0.7  # index_keep = 0.5
    shared = sim.indexed_texts(images, sim.ClickSimConfig(label_noise_rate=0.0), 0)["indexed_text"]
    assert shared.tolist() == full.tolist()


def test_hidden_mode_clicks_follow_the_grade_not_the_indexed_text(images):
    """Users click what is relevant (full text, label), so clicks land on relevant images whose
    indexed text lacks the query's words, and grade-0 results are clicked less than relevant ones."""
    cfg = sim.ClickSimConfig(mode="hidden", **QUIET)
    log = _log(images, mode="hidden", **QUIET)
    idx = dict(zip(images["key"], sim.indexed_texts(images, cfg, 0)["indexed_text"]))
    label = dict(zip(images["key"], images["label"]))
    origin = {}
    for t, lab in zip(images["text"], images["label"]):
        g, p = sim.query_candidates(t)
        for q in g + p:
            origin.setdefault(q, set()).add(lab)
    words = {k: set(sim._TOKEN.findall(t.lower())) for k, t in idx.items()}
    unseen = [(q, k) for q, k in zip(log["query"], log["key"]) if not set(q.split()) <= words[k]]
    relevant = np.mean([label[k] in origin[q] for q, k in unseen])
    assert len(unseen) > 50 and relevant > 0.8
    shared = _log(images, **QUIET)
    assert np.mean([label[k] in origin[q] for q, k in zip(log["query"], log["key"])]) > 0.8
    assert len(log) != len(shared)
