"""Paper B, hidden simulator mode (issue #19): no method reads the text that defines the Dev grades.

The pipeline (``fit_methods`` + ``score_dev``) runs on a tiny SIMULATED data set while every
entry point of ``clickvision.models.click_cf`` that receives text is spied on. In hidden mode the
test fails if any method's input holds an image's grade-defining (full) text, or a per-image text
with a phrase the engine did not index for that image. The same spy run on the shared mode (where
the content-only methods read the grade-defining text by design) must detect it: the check can fail.
"""
from __future__ import annotations

from dataclasses import replace as dataclass_replace

import numpy as np
import pandas as pd
import pytest
from clickvision.click import simulator as sim
from clickvision.data.base import ImageSet
from clickvision.experiments.paper_b import core as B
from clickvision.models import click_cf


def toy_images(n_per_class: int = 24, n_classes: int = 4, seed: int = 0) -> pd.DataFrame:
    """Classes with their own words; each image has a name, keywords and a phrase of its own."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n_classes):
        words = [f"c{c}w{k}" for k in range(10)]
        for i in range(n_per_class):
            name = " ".join(rng.choice(words, 2, replace=False))
            kws = ", ".join(rng.choice(words, 4, replace=False))
            rows.append({"key": f"k{c}_{i}", "path": "", "label": f"class{c}", "group": f"g{c // 2}",
                         "split": ["train", "train", "val", "test"][i % 4],
                         "text": f"{name} | {kws} | own{c}x{i} extra, {rng.choice(['icon', 'cute'])}"})
    return pd.DataFrame(rows)


def _strings(x, out: list) -> None:
    if isinstance(x, str):
        out.append(x)
    elif isinstance(x, pd.DataFrame):
        for col in x.columns:
            if x[col].dtype == object or pd.api.types.is_string_dtype(x[col]):
                out.extend(str(v) for v in x[col])
    elif isinstance(x, (pd.Series, pd.Index, np.ndarray)) and (x.dtype == object or pd.api.types.is_string_dtype(x)):
        out.extend(str(v) for v in x)
    elif isinstance(x, (list, tuple, set, frozenset)):
        for v in x:
            _strings(v, out)
    elif isinstance(x, dict):
        for v in x.values():
            _strings(v, out)


def _phrases(text: str) -> set[tuple[str, ...]]:
    return set(sim.text_phrases(text))


def run_spied(mode: str, monkeypatch) -> tuple[pd.DataFrame, B.ClickData, list[str], list[tuple[str, str]]]:
    """Run every paper-B method on a toy SIMULATED set; return the images, data, every string any
    click_cf entry point received, and the (key, text) pairs handed over as an image's text."""
    frame = toy_images()
    images = ImageSet("toy", frame)
    cfg = sim.ClickSimConfig(mode=mode, dev_queries=40, dev_candidates=20, queries_per_image=6.0)
    log = pd.DataFrame(sim.simulate_click_log(images, cfg, 0))
    dev = sim.simulate_dev_set(images, cfg, 0)
    dev = dev.assign(judgment=dev["relevance"].map(sim.RELEVANCE_NAMES))
    feats = np.random.default_rng(1).normal(size=(len(frame), 12))
    data = B.assemble_click_data("toy", images, feats, log, dev, sim.indexed_texts(images, cfg, 0), mode,
                                 feature_pcs=8)
    seen: list[str] = []
    per_image: list[tuple[str, str]] = []

    def spy(fn, keyed=False):
        def wrapped(*args, **kwargs):
            _strings(list(args) + list(kwargs.values()), seen)
            if keyed:  # (keys, texts, ...) or (vocab, keys, texts=...)
                keys = args[0] if fn is click_cf.annotation_pseudo_log else args[1]
                texts = args[1] if fn is click_cf.annotation_pseudo_log else kwargs.get("texts")
                if texts is not None:
                    per_image.extend(zip(list(keys), list(texts)))
            return fn(*args, **kwargs)
        return wrapped

    for name, keyed in (("fit_click_cf", False), ("fit_cross_view_pls", False), ("annotation_pseudo_log", True),
                        ("word_bags", True), ("visual_neighbour_mix", False), ("knn_word_profiles", False),
                        ("bag_cosines", False)):
        monkeypatch.setattr(click_cf, name, spy(getattr(click_cf, name), keyed))
    from_queries = click_cf.WordVocabulary.from_queries.__func__
    monkeypatch.setattr(click_cf.WordVocabulary, "from_queries",
                        classmethod(lambda cls, q, *a, **k: (_strings(list(q), seen),
                                                             from_queries(cls, q, *a, **k))[1]))
    fitted = B.fit_methods(data, dim=4, epochs=1, max_k=5, seed=0)
    scored = B.score_dev(data, fitted, ks=(1, 3), bow_ks=(3,), seed=0)
    assert {B.PLAIN, B.TEXT_MODEL, B.CLICK_TEXT, f"{B.CF}[dev+own]@3", f"{B.BOW_TEXT}@3"} <= set(scored.columns)
    assert any(c.startswith(f"{B.CCL}@") for c in scored.columns)
    return frame, data, seen, per_image


def _violations(frame: pd.DataFrame, mode: str, seen: list[str], per_image: list[tuple[str, str]]) -> list[str]:
    indexed = sim.indexed_texts(frame, sim.ClickSimConfig(mode=mode), 0).set_index("key")["indexed_text"]
    full = frame.set_index("key")["text"]
    grade_only = {t for k, t in full.items() if t != indexed[k]}
    bad = [f"grade text given to a method: {t!r}" for t in set(seen) & grade_only]
    for key, text in per_image:
        extra = _phrases(text) - _phrases(indexed[key])
        if extra:
            bad.append(f"{key}: phrases {sorted(extra)[:2]} not indexed by the engine")
    return bad


def test_hidden_mode_no_method_reads_the_grade_defining_text(monkeypatch):
    frame, data, seen, per_image = run_spied("hidden", monkeypatch)
    assert per_image, "the spy saw no per-image text: the content-only methods did not run"
    indexed = sim.indexed_texts(frame, sim.ClickSimConfig(mode="hidden"), 0)
    assert data.images.items["text"].tolist() == indexed["indexed_text"].tolist()
    assert (indexed["indexed_text"] != frame["text"]).mean() > 0.5  # the engine's text is noisier
    assert _violations(frame, "hidden", seen, per_image) == []


def test_the_check_catches_a_method_reading_the_grade_text(monkeypatch):
    """Shared mode: the content-only methods read the text the grades come from; the check must say so."""
    frame, _, seen, per_image = run_spied("shared", monkeypatch)
    assert any("grade text given" in v for v in _violations(frame, "shared", seen, per_image))


def test_withheld_dev_strings_are_withheld_from_every_method(monkeypatch):
    _, data, _, _ = run_spied("hidden", monkeypatch)
    pseudo = B.annotation_log(data)
    assert data.withheld and not set(pseudo["query"]) & data.withheld
    assert not set(data.log["query"]) & data.withheld
    keys = data.images.items["key"].tolist()
    for text in B.method_texts(data, keys):
        assert not {" ".join(p) for p in sim.text_phrases(text)} & data.withheld


def test_cf_readings_blend_and_dev_query_profiles():
    """The CF step's readings: the +own blend is the stated mix, and eq. (3) over other queries
    changes the neighbours (tested on hand-made vectors)."""
    rng = np.random.default_rng(0)
    v, q_train, q_dev = rng.normal(size=(15, 3)), rng.normal(size=(30, 3)), rng.normal(size=(8, 3))
    from clickvision import retrieval
    pred = q_dev @ v.T
    w = retrieval.neighbour_weights(retrieval.top_k_neighbours(retrieval.low_rank_profiles(q_train, v), 3), 15)
    base = retrieval.cf_scores(pred, w)
    blend = (1 - B.CF_BLEND) * base + B.CF_BLEND * pred
    assert np.allclose(blend, 0.5 * base + 0.5 * pred)
    assert B.cf_reading("train", False, 3) == f"{B.CF}@3" and B.cf_reading("dev", True, 1) == f"{B.CF}[dev+own]@1"
    assert B.cf_reading("train", True, 2) == f"{B.CF}[own]@2"
    pq = pd.DataFrame({"method": [f"{B.CF}@3", f"{B.CF}[dev]@1", f"{B.CF}@1"] * 2,
                       "part": ["val"] * 3 + ["test"] * 3, "query": ["a"] * 3 + ["b"] * 3,
                       "dcg": [1.0, 2.0, 2.0, 5.0, 0.0, 1.0]})
    assert B.select_k(pq) == f"{B.CF}@1"  # a tie goes to the pinned reading
    fin = B.finalize(pq, f"{B.CF}[dev]@1")
    assert set(fin["method"]) == {B.CF} and fin.loc[fin["part"] == "test", "dcg"].item() == 0.0


def test_claims_in_hidden_mode_test_the_content_claim():
    claims = {c.claim_id: c for c in B.claim_list("toy", mode="hidden", content_only=B.BOW_TEXT)}
    c = claims["B.02-cf-beats-content-only-toy"]
    assert c.kind == "direction" and c.arms == (B.CF, B.BOW_TEXT)
    assert B.claim_list("toy", mode="shared")[0].kind == "untestable"
    with pytest.raises(ValueError, match="mode"):
        B.claim_list("toy", mode="other")


def test_hidden_logs_are_cached_by_config_and_never_touch_the_shared_logs(tmp_path, monkeypatch):
    monkeypatch.setattr(B, "SIM_CACHE", tmp_path)
    images = ImageSet("toy", toy_images(n_per_class=8))
    cfg = sim.ClickSimConfig(mode="hidden", dev_queries=10, dev_candidates=10)
    log_a, dev_a, text_a = B.simulated_click_files("toy", cfg, images)
    stamp = log_a.stat().st_mtime_ns
    log_b, _, text_b = B.simulated_click_files("toy", cfg, images)
    assert log_a == log_b and log_b.stat().st_mtime_ns == stamp and text_a.equals(text_b)  # read, not rebuilt
    assert log_a.parent.parent == tmp_path and dev_a.exists()
    other = B.simulated_click_files("toy", sim.ClickSimConfig(mode="hidden", informativeness=0.0, dev_queries=10,
                                                              dev_candidates=10), images)[0]
    assert other.parent != log_a.parent
    with pytest.raises(ValueError, match="mode"):
        B.sim_config("other")


def test_subsets_families_and_val_choice_of_the_content_rival():
    pq = pd.DataFrame({"method": [B.CF] * 4 + [B.TEXT_MODEL] * 4 + [B.BOW_TEXT] * 4,
                       "query": ["a", "b", "c", "d"] * 3, "part": ["test", "test", "val", "val"] * 3,
                       "dcg": [1.0, 3.0, 0.0, 0.0, 2.0, 2.0, 1.0, 1.0, 0.0, 8.0, 2.0, 0.0]})
    t = B.dcg_by_subset(pq, {"ab": {"a", "b"}, "a": {"a"}}, n_resamples=50)
    got = t.set_index(["queries", "method"])["DCG@25"]
    assert got[("ab", B.CF)] == pytest.approx(2.0) and got[("a", B.BOW_TEXT)] == pytest.approx(0.0)
    assert t.set_index(["queries", "method"]).loc[("ab", B.CF), "n"] == 2
    assert B.best_content_only(pq.assign(dcg=pq["dcg"] + (pq["method"] == B.BOW_TEXT) * 1.0)) == B.BOW_TEXT
    assert B.best_content_only(pq.assign(dcg=pq["dcg"] + (pq["method"] == B.TEXT_MODEL) * 1.0)) == B.TEXT_MODEL
    items = pd.DataFrame({"key": ["m", "w", "p", "x"], "concept": ["1F3C3-200D-2642", "1F3C3-200D-2640", "1F3C3",
                                                                      "1F600"],
                          "split": ["train", "test", "test", "test"], "label": "l", "text": "t", "path": ""})
    dev = pd.DataFrame({"query": ["q1", "q1", "q2"], "key": ["w", "x", "x"], "relevance": [2, 0, 3],
                        "part": "test"})
    data = B.ClickData("emoji-google", ImageSet("toy", items), np.zeros((4, 2)), pd.DataFrame(), pd.DataFrame(), dev,
                       (np.zeros(2), np.eye(2)))
    assert B.family_split_queries(data) == {"q1"}  # w's sibling m is in train; x has no sibling
    assert B.family_split_queries(dataclass_replace(data, name="openclipart")) == set()
