"""Paper A claims on the verdict engine: hand-made per-image rows where the verdict is known."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from clickvision import claims as CE
from clickvision.experiments.paper_a import core as A
from clickvision.experiments.paper_a import claims as AC
from clickvision.experiments.paper_a import joint as J

N_ITEMS = 80


def _correct(acc: float, seed: int, n: int = N_ITEMS) -> np.ndarray:
    """n images, the first round(acc * n) right, shifted by the seed (so seeds differ a little)."""
    k = int(round(acc * n))
    return np.roll((np.arange(n) < k).astype(float), seed)


def _rows(values: dict, column: str, seeds=(0, 1, 2), representation: str = "C", **extra) -> pd.DataFrame:
    """values[column value] = {metric: value}; acc_s / acc_t also give per-image correct_s / correct_t."""
    out = []
    for key, metrics in values.items():
        for seed in seeds:
            for m, v in metrics.items():
                out.append({column: key, "seed": seed, "metric": m, "representation": representation,
                            "value": v + (0.001 * seed if m.startswith(("rmse", "gd", "position")) else 0), **extra})
                if m in ("acc_s", "acc_t"):
                    out += [{column: key, "seed": seed, "metric": f"correct_{m[-1]}", "item": f"{m[-1]}{i}",
                             "representation": representation, "value": c, **extra}
                            for i, c in enumerate(_correct(v, seed))]
    return pd.DataFrame(out)


def verdicts(pairs) -> dict[str, str]:
    return {c.claim_id: CE.judge(c, d, n_resamples=400).verdict for c, d in pairs}


def test_summarize_and_accuracy_table():
    rows = _rows({"FC": {"acc_s": 0.5, "acc_t": 0.4}}, "embedding", seeds=(0, 1))
    rows.loc[(rows.metric == "acc_s") & (rows.seed == 1), "value"] += 0.02
    summ = A.summarize(rows, ["embedding"])
    got = summ.set_index("metric").loc["acc_s"]
    assert got["mean"] == pytest.approx(0.51) and got["std"] == pytest.approx(0.01414, abs=1e-4) and got["seeds"] == 2
    table = A.accuracy_table(summ, "embedding", ["FC"], A.PAPER_TABLE_III)
    assert table.loc["Acc-S (%) ours", "FC"] == pytest.approx(51.0)
    assert table.loc["Acc-T (%) paper", "FC"] == 44.2


def test_scores_per_item_and_per_seed():
    rows = _rows({"a": {"acc_t": 0.6, "rmse_s": 1.0}, "b": {"acc_t": 0.5, "rmse_s": 1.2}}, "model")
    d = AC.scores(rows, "correct_t", {"A": {"model": "a"}, "B": {"model": "b"}})
    assert list(d.columns) == ["method", "seed", "item", "value"] and len(d) == 2 * 3 * N_ITEMS
    assert d[d.method == "A"]["value"].mean() == pytest.approx(0.6)
    s = AC.scores(rows, "rmse_s", {"A": {"model": "a"}})
    assert list(s.columns) == ["method", "seed", "value"] and len(s) == 3
    both = AC.scores(rows, "correct_t", {"AB": {"model": ["a", "b"]}})  # a list averages the settings per item
    assert both["value"].mean() == pytest.approx(0.55)
    with pytest.raises(ValueError, match="no 'correct_t' rows"):
        AC.scores(rows, "correct_t", {"C": {"model": "c"}})


def test_acc_scores_falls_back_to_per_seed_when_items_do_not_pair():
    rows = _rows({"a": {"acc_t": 0.6}, "b": {"acc_t": 0.5}}, "model")
    assert "item" in AC.acc_scores(rows, "t", {"a": {"model": "a"}, "b": {"model": "b"}}).columns
    no_items = rows[~((rows.model == "b") & (rows.metric == "correct_t"))]
    d = AC.acc_scores(no_items, "t", {"a": {"model": "a"}, "b": {"model": "b"}})
    assert "item" not in d.columns and len(d) == 6


@pytest.mark.parametrize("best,verdict", [("CONV+biFC", "supported"), ("FC", "contradicted")])
def test_table_iii_claims(best, verdict):
    names = ["FC", "biFC", "CONV+FC", "CONV+biFC"]
    values = {n: {"acc_s": 0.5, "acc_t": 0.4} for n in names}
    values[best] = {"acc_s": 0.8, "acc_t": 0.75}
    if best != "FC":
        values["FC"] = {"acc_s": 0.2, "acc_t": 0.1}
    got = verdicts(AC.claims_table_iii(_rows(values, "embedding"), None))
    assert got["III-conv-bifc-best-Acc-S"] == got["III-conv-bifc-best-Acc-T"] == verdict
    assert got["III-nonlinear-beats-linear-Acc-T"] == verdict


def test_table_iii_kernel_trend():
    grid = _rows({1: {"acc_s": 0.3, "acc_t": 0.2}, 3: {"acc_s": 0.7, "acc_t": 0.6}}, "kernel_size", kernels=16)
    rows = _rows({n: {"acc_s": 0.5, "acc_t": 0.4} for n in ["FC", "biFC", "CONV+FC", "CONV+biFC"]}, "embedding")
    pairs = AC.claims_table_iii(rows, grid)
    c, d = pairs[-1]
    assert c.kind == "trend" and c.settings == (1.0, 3.0)
    j = CE.judge(c, d, n_resamples=400)
    assert j.verdict == "supported" and j.estimate == pytest.approx(0.4)


def test_table_iv_claims_flat_collapse_ratio_structural():
    values = {b: {"acc_s": 0.6, "acc_t": 0.5, "ratio": 0.1} for b in (10.0, 1.0, 0.1, 0.01, 0.001)}
    values[1e-4] = {"acc_s": 0.01, "acc_t": 0.02, "ratio": 0.0}
    t_rows = _rows({0.1: {"acc_t": 0.5}, 0.3: {"acc_t": 0.5}}, "T")
    pairs = AC.claims_table_iv(_rows(values, "B"), t_rows)
    got = verdicts(pairs)
    assert got["IV-flat-B-0.01-to-1-Acc-S"] == "supported" and got["IV-T-little-impact"] == "supported"
    assert got["IV-collapse-at-1e-4-Acc-T"] == "supported"
    assert got["IV-ratio-grows-with-B"] == "structural"
    (claim,) = [c for c, _ in pairs if c.claim_id == "IV-flat-B-0.01-to-1-Acc-T"]
    assert claim.kind == "equivalence" and claim.margin == 0.02
    values[0.1] = {"acc_s": 0.9, "acc_t": 0.9, "ratio": 0.1}  # 30-40 points apart: not flat
    got = verdicts(AC.claims_table_iv(_rows(values, "B"), None))
    assert got["IV-flat-B-0.01-to-1-Acc-T"] == "contradicted"


def test_table_v_claims():
    values = {0.0: {"acc_s": 0.60, "acc_t": 0.50, "val_acc_t": 0.5},
              0.05: {"acc_s": 0.90, "acc_t": 0.90, "val_acc_t": 0.4},  # best on test, not chosen on validation
              0.1: {"acc_s": 0.85, "acc_t": 0.80, "val_acc_t": 0.6},
              1.0: {"acc_s": 0.10, "acc_t": 0.10, "val_acc_t": 0.1}}
    # Fig. 10 reads eq. (9) on the binarised prediction (position_error_bin) and precision@|A|; the raw
    # count (position_error) points the other way here and must not decide
    click = {0.0: {"position_error_bin": 600.0, "position_error": 400.0, "precision_at_a": 0.20},
             0.1: {"position_error_bin": 500.0, "position_error": 450.0, "precision_at_a": 0.30, "gd_ratio": 1.1}}
    rows = pd.concat([_rows(values, "tau"), _rows(click, "tau", representation="click")], ignore_index=True)
    assert AC.best_small_tau(rows) == 0.1
    got = verdicts(AC.claims_table_v(rows, 0.1))
    assert got == {"V-small-tau-beats-count-Acc-S": "supported", "V-small-tau-beats-count-Acc-T": "supported",
                   "V-position-alone-far-worse-Acc-S": "supported", "V-position-alone-far-worse-Acc-T": "supported",
                   "V-gd-ratio-one-at-0.1": "supported", "Fig10-position-loss-closer": "supported",
                   "Fig10-position-loss-precision": "supported"}
    swapped = rows.copy()
    m = swapped["metric"] == "precision_at_a"
    swapped.loc[m, "value"] = 0.5 - swapped.loc[m, "value"]  # tau = 0.1 now ranks the clicked words lower
    assert verdicts(AC.claims_table_v(swapped, 0.1))["Fig10-position-loss-precision"] == "contradicted"
    rows.loc[rows.metric == "gd_ratio", "value"] = [0.2, 0.21, 0.19]  # a factor 5 below 1
    assert verdicts(AC.claims_table_v(rows, 0.1))["V-gd-ratio-one-at-0.1"] == "contradicted"


def test_table_vi_orderings_pair_by_pair():
    values = {"V": {"acc_s": 0.5, "acc_t": 0.5}, "C": {"acc_s": 0.7, "acc_t": 0.6},
              "C_E": {"acc_s": 0.5, "acc_t": 0.4}, "C[7]": {"acc_s": 0.3, "acc_t": 0.2},
              "V+C": {"acc_s": 0.9, "acc_t": 0.8}, "V+C_E": {"acc_s": 0.9, "acc_t": 0.8},
              "V+C[7]": {"acc_s": 0.5, "acc_t": 0.4}}
    pairs = AC.claims_table_vi(_rows(values, "features", representation="V"))
    got = verdicts(pairs)
    assert got["VI-combined-beats-single-Acc-T"] == "supported"
    assert got["VI-C-beats-CE-beats-C7-Acc-S"] == "supported"
    # V+C and V+C_E score the same on every seed and image: that link has no contrast, so the claim is
    # untestable (the engine's rule), not a weak "inconclusive"
    assert got["VI-order-holds-with-V-Acc-T"] == "untestable"
    (c,) = [c for c, _ in pairs if c.claim_id == "VI-order-holds-with-V-Acc-T"]
    assert c.kind == "ordering" and c.arms == ("V+C", "V+C_E", "V+C[7]")


def _vii_rows(gain_shared: float = 0.0) -> pd.DataFrame:
    frames = []
    for shared in (False, True):
        for lam, acc_t, acc_s, rmse in ((0.8, 0.62, 0.6, 1.3), (0.4, 0.62, 0.6, 1.35), (0.0, 0.61, 0.6, 1.4),
                                        (1.0, 0.40, 0.0, 1.2)):
            t = acc_t + (gain_shared if shared and lam < 1 else 0.0)
            frames.append(_rows({lam: {"acc_t": t, "acc_s": acc_s, "rmse_s": rmse, "rmse_s_caffe": rmse ** 2 / 2}},
                                "lam", representation="x", shared=shared, model=J.model_name(shared, lam)))
    return pd.concat(frames, ignore_index=True)


def test_table_vii_claims():
    got = verdicts(J.claims_table_vii(_vii_rows(), chance=0.025))
    assert got["VII-multitask-beats-lambda1-MTMDD-VM-Acc-T"] == "supported"
    assert got["VII-lambda1-lowest-rmse-MTMDD-VM*"] == "supported"
    assert got["VII-mddvm-source-chance"] == "structural"  # no gradient reaches it: chance by construction
    assert got["VII-lambda-little-impact"] == "supported"
    assert got["VII-shared-gains-more"] == "untestable"  # the same gain on every image: no contrast
    assert verdicts(J.claims_table_vii(_vii_rows(0.3), chance=0.025))["VII-shared-gains-more"] == "supported"


def test_table_vii_rmse_claims_read_reading_2():
    """The RMSE-S claims are judged on rmse_s_caffe (reading 2, the paper's unit), not rmse_s."""
    rows = _vii_rows()
    pairs = {c.claim_id: (c, d) for c, d in J.claims_table_vii(rows, chance=0.025)}
    c, d = pairs["VII-lambda1-lowest-rmse-MTMDD-VM"]
    assert "reading 2" in c.claim and c.alternative == "less"
    # per seed, lambda = 0.8's reading 2 (1.3^2 / 2 + seed jitter) and lambda = 1's (1.2^2 / 2 + jitter)
    got = d.groupby("method")["value"].mean()
    assert got["MTMDD-VM lambda=0.8"] == pytest.approx(1.3 ** 2 / 2 + 0.001)
    assert got["MDD-VM"] == pytest.approx(1.2 ** 2 / 2 + 0.001)
    # the paper's effect is on its printed (reading 2) values: 81.8 - 81.7 (x 1e-2)
    assert c.paper_effect == pytest.approx((81.8 - 81.7) / 100)
    # reading 1 reversed, reading 2 kept: the verdict follows reading 2
    flipped = rows.copy()
    m = flipped["metric"] == "rmse_s"
    flipped.loc[m, "value"] = 3.0 - flipped.loc[m, "value"]
    assert verdicts(J.claims_table_vii(flipped, chance=0.025))["VII-lambda1-lowest-rmse-MTMDD-VM"] == "supported"
    flipped.loc[flipped["metric"] == "rmse_s_caffe", "value"] *= -1  # now lambda = 1 has the larger reading 2
    assert verdicts(J.claims_table_vii(flipped, chance=0.025))["VII-lambda1-lowest-rmse-MTMDD-VM"] == "contradicted"


def test_fig12_claims():
    frames = [_rows({mu: {"acc_t": v}}, "mu", representation="x", model=model)
              for model, accs in (("MTTDL", {0.1: 0.4, 0.5: 0.4, 1.0: 0.4}), ("MTMDD-VM", {0.1: 0.8, 0.5: 0.7, 1.0: 0.6}),
                                  ("MTMDD-VM*", {0.1: 0.9, 0.5: 0.8, 1.0: 0.7}))
              for mu, v in accs.items()]
    pairs = J.claims_fig12(pd.concat(frames, ignore_index=True))
    got = verdicts(pairs)
    assert set(got.values()) == {"supported"} and len(got) == 5
    (c,) = [c for c, _ in pairs if c.claim_id == "Fig12-smaller-mu-better-MTMDD-VM"]
    assert c.kind == "trend" and c.alternative == "less" and c.settings == (0.1, 0.5, 1.0)


def _grad_frame(position: float | list = 3.0, steps: int = 10) -> pd.DataFrame:
    rows = []
    for step in range(1, steps + 1):
        for layer in ("CONV1", "FC2"):
            count = 1.0 / step
            pos = position[step % len(position)] if isinstance(position, list) else position
            rows += [{"run": "Count", "tau": 0.0, "step": step, "layer": layer, "grad_norm": count},
                     {"run": "Combined", "tau": 0.1, "step": step, "layer": layer,
                      "grad_norm": count * (1.2 if step > 3 else 5.0)},
                     {"run": "Position", "tau": 1.0, "step": step, "layer": layer, "grad_norm": pos * count}]
    return pd.DataFrame(rows)


def test_fig11_late_ratio_and_claims():
    from clickvision.experiments.paper_a import grad as G

    frame = _grad_frame()
    ratios = G.late_ratio(frame, late_from=0.3)
    assert ratios.loc["CONV1", "late median Combined/Count"] == pytest.approx(1.2)
    assert ratios.loc["FC2", "early median Combined/Count"] == pytest.approx(5.0)
    pairs = G.claims_fig11(ratios, ["CONV1", "FC2"], position=G.late_ratio(frame, a="Position"))
    kinds = {c.claim_id: c.kind for c, _ in pairs}
    assert kinds == {"Fig11-combined-tracks-count": "structural", "Fig11-position-converges-late": "equivalence",
                     "Fig11-position-fluctuates-more": "direction"}
    assert "0.9 x the count loss" in pairs[0][0].reason
    frame = _grad_frame(position=[1.0, 1.2, 0.9])  # Position tracks Count (ratio ~1) on both panels
    frame.loc[(frame.run == "Position") & (frame.layer == "CONV1"), "grad_norm"] *= 1.05
    got = verdicts(G.claims_fig11(G.late_ratio(frame), ["CONV1", "FC2"], position=G.late_ratio(frame, a="Position")))
    assert got["Fig11-position-converges-late"] == "supported"


def test_judge_all_records_and_makes_single_seed_aggregates_untestable(tmp_path, monkeypatch):
    rows = _rows({"a": {"acc_t": 0.9, "rmse_s": 1.0}, "b": {"acc_t": 0.1, "rmse_s": 1.2}}, "model", seeds=(0,))
    pairs = [(AC.A("x-acc", "a beats b", "direction", arms=("a", "b")),
              AC.scores(rows, "correct_t", {"a": {"model": "a"}, "b": {"model": "b"}})),
             (AC.A("x-rmse", "a has lower RMSE", "direction", arms=("a", "b"), alternative="less"),
              AC.scores(rows, "rmse_s", {"a": {"model": "a"}, "b": {"model": "b"}}))]
    led = AC.judge_all(CE.Ledger("A.99-Test", {"profile": "smoke"}, n_resamples=200), pairs)
    assert [j.verdict for j in led.judgements] == ["supported", "untestable"]
    assert "one seed" in led.judgements[1].reason


def test_paired_gap_and_gap_text():
    rows = _rows({"a": {"acc_t": 0.6}, "b": {"acc_t": 0.5}}, "model")
    mean, sd, n = AC.paired_gap(rows, "model", "a", "b", "acc_t")
    assert mean == pytest.approx(0.1) and sd == pytest.approx(0.0, abs=1e-12) and n == 3
    assert AC.gap_text(mean, sd, n) == "+10.0 +- 0.0 over 3 seeds"
    assert AC.gap_text(0.01, float("nan"), 1) == "+1.0 (1 seed)"


def test_click_feature_claim_per_image():
    correct = pd.DataFrame({"V": [1, 0, 0, 1] * 20, "V + C (ground truth)": [1, 1, 0, 1] * 20}, dtype=float)
    ((c, d),) = AC.claims_click_feature(correct)
    j = CE.judge(c, d, n_resamples=400)
    assert j.verdict == "supported" and j.estimate == pytest.approx(0.25) and j.n_items == 80 and j.n_seeds == 1


def test_seed_sd_is_the_largest_group_spread():
    rows = _rows({"a": {"acc_t": 0.6}, "b": {"acc_t": 0.5}}, "model")
    rows.loc[(rows.model == "b") & (rows.metric == "acc_t"), "value"] = [0.4, 0.5, 0.6]
    assert AC.seed_sd(rows, ["model"], ("acc_t",)) == pytest.approx(0.1)


def test_paper_effects_come_from_the_paper_tables():
    """paper_effect: the claim's contrast on the paper's printed numbers, in fractions (oracle: hand-read cells)."""
    from clickvision.experiments.paper_a import claims as AC
    from clickvision.experiments.paper_a import joint as J

    assert AC.paper_diff(AC.PAPER_TABLE_III, "Acc-T (%)", "CONV+biFC", "FC") == pytest.approx((57.3 - 44.2) / 100)
    assert AC.paper_diff(AC.PAPER_TABLE_IV, "Acc-S (%)", 1, 0.01) == pytest.approx((70.7 - 71.5) / 100)
    assert np.isnan(AC.paper_diff(AC.PAPER_TABLE_V, "Acc-T (%)", 0.3, 0))  # a value the paper did not print
    assert AC.paper_weakest_link(AC.PAPER_TABLE_VI, "Acc-T (%)", ("V+C", "V+C_E", "V+C[7]")) == pytest.approx(0.003)
    assert J.paper_vii("Acc-T (%)", False, [0.8, 0.4]) == pytest.approx((73.1 + 73.3) / 200)
    assert J.paper_vii("Acc-T (%)", True, [1.0]) == pytest.approx(0.635)  # lambda = 1: MDD-VM*
    assert np.isnan(J.paper_vii("Acc-T (%)", True, [0.3]))


def test_table_ix_paper_effects_follow_the_claims_rule():
    import pandas as pd
    from clickvision.experiments.paper_a import unseen as U

    rows = pd.DataFrame([{"target": t, "method": m, "scenario": sc, "seed": 0, "metric": "acc_t", "value": 0.5}
                         for t in ("a", "b") for m in U.TABLE_IX_METHODS for sc in ("Single", "Cross")])
    claims = {c.claim_id: c for c, _ in U.claims_table_ix(rows)}
    assert claims["TableIX-cross-close-to-single"].paper_effect == pytest.approx(-0.031)  # Bird OURS 70.7 - 73.8
    assert claims["TableIX-ours-beats-baselines"].paper_effect == pytest.approx(0.004)  # Bird Cross 70.7 - 70.3
