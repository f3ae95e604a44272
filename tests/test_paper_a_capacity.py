"""A.03's Table III at matched capacity (#18 item 4, "Capacity"): parameter counts against built modules,
the width search, the capacity-matched runner and its claims."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from clickvision import claims as CE
from clickvision.experiments.paper_a import claims as AC
from clickvision.experiments.paper_a import core as A
from clickvision.experiments.paper_a import train as T
from clickvision.models.mtmdd import EMBEDDINGS, WordEmbedding, embedding_parameter_count
from test_paper_a_claims import _rows
from test_paper_a_models import CFG, tiny_data

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# the default profile's shapes: pooled vector 1,280, K = 1,000 words, a 128-channel conv map
DEFAULT_DATA = SimpleNamespace(feature_dim=1280, k=1000, map_channels=128)


def built(module) -> int:
    """The oracle: trainable parameters of a built module."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


@pytest.mark.parametrize("kind", EMBEDDINGS)
@pytest.mark.parametrize("sizes", [dict(in_channels=1280, vocab_size=1000, hidden=256, conv_kernels=64,
                                        map_channels=128),
                                   dict(in_channels=7, vocab_size=11, hidden=5, conv_kernels=3, conv_size=2, pool=3,
                                        map_channels=4),
                                   dict(in_channels=6, vocab_size=9, hidden=4, conv_kernels=2, conv_size=1, pool=1)])
def test_parameter_count_is_the_built_modules(kind, sizes):
    module = WordEmbedding(kind, **sizes)
    assert embedding_parameter_count(kind, **sizes) == built(module)
    with pytest.raises(ValueError, match="kind must be one of"):
        embedding_parameter_count("conv", 4, 5)


@pytest.mark.parametrize("kind", EMBEDDINGS)
def test_embedding_parameters_at_the_default_profile(kind):
    cfg = A.head_config("default")
    assert A.embedding_parameters(cfg, DEFAULT_DATA, kind) == built(T.make_embedding(cfg, DEFAULT_DATA, kind))
    want = {"fc": 1_281_000, "bifc": 584_936, "conv_fc": 330_792, "conv_bifc": 396_584}[kind]
    assert A.embedding_parameters(cfg, DEFAULT_DATA, kind) == want


@pytest.mark.parametrize("kind", ["bifc", "conv_fc", "conv_bifc"])
def test_matched_config_is_the_closest_width(kind):
    cfg = A.head_config("default")
    budget = A.embedding_parameters(cfg, DEFAULT_DATA, "fc")
    c = A.matched_config(cfg, DEFAULT_DATA, kind, budget)
    n = built(T.make_embedding(c, DEFAULT_DATA, kind))
    assert n == A.embedding_parameters(c, DEFAULT_DATA, kind)
    assert abs(n - budget) / budget < 0.005
    step = {"bifc": dict(hidden=1), "conv_fc": dict(conv_kernels=1), "conv_bifc": dict(conv_kernels=1)}[kind]
    for sign in (-1, 1):  # one width more or less is no closer
        w = {k: getattr(c, k) + sign * v for k, v in step.items()}
        if kind == "conv_bifc":
            w["hidden"] = round(cfg.hidden / cfg.conv_kernels * w["conv_kernels"])
        assert abs(A.embedding_parameters(c.scaled(**w), DEFAULT_DATA, kind) - budget) >= abs(n - budget)
    changed = {f for f in ("hidden", "conv_kernels") if getattr(c, f) != getattr(cfg, f)}
    assert changed == {"bifc": {"hidden"}, "conv_fc": {"conv_kernels"}, "conv_bifc": {"hidden", "conv_kernels"}}[kind]
    assert c.scaled(hidden=cfg.hidden, conv_kernels=cfg.conv_kernels) == cfg  # nothing else moved
    if kind == "conv_bifc":  # both widths scaled together at the profile's ratio (256 / 64 = 4)
        assert c.hidden == round(4 * c.conv_kernels)


def test_matched_config_fc_and_edges():
    cfg = A.head_config("default")
    assert A.matched_config(cfg, DEFAULT_DATA, "fc", 10) is cfg  # FC has no width
    tiny = A.matched_config(cfg, DEFAULT_DATA, "bifc", 1)  # below any width's count: the narrowest
    assert tiny.hidden == 1
    same = A.matched_config(cfg, DEFAULT_DATA, "bifc", A.embedding_parameters(cfg, DEFAULT_DATA, "bifc"))
    assert same == cfg  # the profile's own count gives the profile's width back
    with pytest.raises(ValueError, match="budget"):
        A.matched_config(cfg, DEFAULT_DATA, "bifc", 0)


def test_capacity_table_and_matched_ablation_on_tiny_data():
    data = tiny_data()
    budget = A.embedding_parameters(CFG, data, "fc")
    configs = {k: A.matched_config(CFG, data, k, budget) for k in A.EMBEDDING_NAMES}
    table = A.capacity_table(data, CFG, configs)
    assert list(table.index) == ["FC", "biFC", "CONV+FC", "CONV+biFC"]
    for kind, c in configs.items():
        row = table.loc[A.EMBEDDING_NAMES[kind]]
        assert row["parameters (matched)"] == built(T.make_embedding(c, data, kind))
        assert row["parameters (profile)"] == built(T.make_embedding(CFG, data, kind))
    assert table.loc["FC", "matched / FC"] == 1.0
    base = A.embedding_ablation(data, CFG, ["fc"], [0, 1])
    rows = A.matched_ablation(data, CFG, configs, [0, 1], reuse=base)
    assert set(rows["embedding"]) == set(A.EMBEDDING_NAMES.values()) and set(rows["seed"]) == {0, 1}
    fc = rows[rows["embedding"] == "FC"]
    pd_cols = ["seed", "representation", "metric", "value"]
    assert fc[pd_cols].reset_index(drop=True).equals(base[pd_cols].reset_index(drop=True))  # FC's rows reused
    assert (rows.groupby("embedding")["parameters"].nunique() == 1).all()
    assert rows.groupby("embedding")["parameters"].first()["biFC"] == table.loc["biFC", "parameters (matched)"]
    again = A.matched_ablation(data, CFG, {"bifc": configs["bifc"]}, [1])  # trained, not reused: same seeds agree
    b = rows[(rows["embedding"] == "biFC") & (rows["seed"] == 1)]
    assert again[pd_cols].reset_index(drop=True).equals(b[pd_cols].reset_index(drop=True))


@pytest.mark.parametrize("best,verdict", [("CONV+biFC", "supported"), ("FC", "contradicted")])
def test_matched_claims_mirror_table_iii(best, verdict):
    names = ["FC", "biFC", "CONV+FC", "CONV+biFC"]
    values = {n: {"acc_s": 0.5, "acc_t": 0.4} for n in names}
    values[best] = {"acc_s": 0.8, "acc_t": 0.75}
    if best != "FC":
        values["FC"] = {"acc_s": 0.2, "acc_t": 0.1}
    rows = _rows(values, "embedding")
    original, matched = AC.claims_table_iii(rows, None), AC.claims_table_iii_matched(rows)
    assert [c.claim_id + "-matched" for c, _ in original] == [c.claim_id for c, _ in matched]
    for (a, da), (b, db) in zip(original, matched):
        assert (a.kind, a.arms, a.alternative, a.paper_effect) == (b.kind, b.arms, b.alternative, b.paper_effect)
        assert b.claim.startswith("At matched capacity") and b.claim.endswith(a.claim)
        assert da.equals(db)
        assert CE.judge(b, db, n_resamples=400).verdict == verdict
