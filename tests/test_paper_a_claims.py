"""Paper A claim checks: hand-made result rows where the answer is known, both ways."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clickvision.experiments import paper_a as A
from clickvision.experiments import paper_a_claims as AC
from clickvision.experiments import paper_a_joint as J


def _rows(values: dict, column: str, seeds=(0, 1), representation: str = "C") -> pd.DataFrame:
    """values[column value][metric] = mean; seed 1 adds +-0.01 so the sd is not zero."""
    out = []
    for key, metrics in values.items():
        for seed in seeds:
            for m, v in metrics.items():
                out.append({column: key, "seed": seed, "metric": m, "representation": representation,
                            "value": v + (0.01 if seed else -0.01)})
    return pd.DataFrame(out)


def test_summarize_and_accuracy_table():
    rows = _rows({"FC": {"acc_s": 0.5, "acc_t": 0.4}}, "embedding")
    summ = A.summarize(rows, ["embedding"])
    got = summ.set_index("metric").loc["acc_s"]
    assert got["mean"] == pytest.approx(0.5) and got["std"] == pytest.approx(0.01414, abs=1e-4) and got["seeds"] == 2
    table = A.accuracy_table(summ, "embedding", ["FC"], A.PAPER_TABLE_III)
    assert table.loc["Acc-S (%) ours", "FC"] == pytest.approx(50.0)
    assert table.loc["Acc-T (%) paper", "FC"] == 44.2


@pytest.mark.parametrize("best,held", [("CONV+biFC", True), ("FC", False)])
def test_table_iii_claims(best, held):
    names = ["FC", "biFC", "CONV+FC", "CONV+biFC"]
    values = {n: {"acc_s": 0.5, "acc_t": 0.4} for n in names}
    values[best] = {"acc_s": 0.7, "acc_t": 0.6}
    values["FC"] = values["FC"] if best == "FC" else {"acc_s": 0.3, "acc_t": 0.2}
    claims = {c["claim_id"]: c["held"] for c in AC.claims_table_iii(_rows(values, "embedding"), None)}
    assert claims["III-conv-bifc-best"] is held
    assert claims["III-nonlinear-beats-linear"] is held


def test_table_iv_claims_ratio_and_collapse():
    values = {b: {"acc_s": 0.6, "acc_t": 0.5, "ratio": r} for b, r in
              [(10.0, 0.5), (1.0, 0.34), (0.1, 0.04), (0.01, 0.004), (0.001, 0.0004)]}
    values[1e-4] = {"acc_s": 0.01, "acc_t": 0.02, "ratio": 0.00004}
    rows = _rows(values, "B")
    claims = {c["claim_id"]: c["held"] for c in AC.claims_table_iv(rows, None)}
    assert claims == {"IV-flat-B-0.01-to-1": True, "IV-collapse-at-1e-4": True, "IV-ratio-grows-with-B": True}
    values[0.1]["ratio"] = 0.9  # not monotone any more
    claims = {c["claim_id"]: c["held"] for c in AC.claims_table_iv(_rows(values, "B"), None)}
    assert claims["IV-ratio-grows-with-B"] is False


def test_table_v_claims():
    values = {0.0: {"acc_s": 0.60, "acc_t": 0.50, "val_acc_t": 0.5, "position_error": 600},
              0.05: {"acc_s": 0.70, "acc_t": 0.70, "val_acc_t": 0.4},  # best on test, not chosen on validation
              0.1: {"acc_s": 0.62, "acc_t": 0.52, "val_acc_t": 0.6, "gd_ratio": 1.1, "position_error": 500},
              1.0: {"acc_s": 0.10, "acc_t": 0.10, "val_acc_t": 0.1}}
    assert AC.best_small_tau(_rows(values, "tau")) == 0.1
    claims = {c["claim_id"]: c["held"] for c in AC.claims_table_v(_rows(values, "tau"), 0.1)}
    assert claims == {"V-small-tau-beats-count": True, "V-position-alone-far-worse": True,
                      "V-gd-ratio-one-at-0.1": True, "Fig10-position-loss-closer": True}
    values[0.1]["gd_ratio"] = 0.2
    claims = {c["claim_id"]: c["held"] for c in AC.claims_table_v(_rows(values, "tau"), 0.1)}
    assert claims["V-gd-ratio-one-at-0.1"] is False


def test_table_vii_claims_and_mdd_vm():
    rows = []
    for shared in (False, True):
        for lam, acc_t, acc_s, rmse in ((0.4, 0.62, 0.6, 1.3), (0.0, 0.61, 0.6, 1.4), (1.0, 0.55, 0.02, 1.2)):
            for seed in (0, 1):
                for m, v in (("acc_t", acc_t + 0.01 * shared), ("acc_s", acc_s), ("rmse_s", rmse)):
                    rows.append({"shared": shared, "lam": lam, "seed": seed, "metric": m, "value": v})
    rows = pd.DataFrame(rows)
    base = rows[(rows.lam == 1.0) & (rows.metric == "acc_t")].set_index(["seed", "shared"])["value"]
    d = rows[(rows.metric == "acc_t") & (rows.lam < 1)].copy()
    d["value"] -= base.loc[list(zip(d["seed"], d["shared"]))].to_numpy()
    d["metric"] = "dacc_t"
    claims = {c["claim_id"]: c["held"] for c in J.claims_table_vii(pd.concat([rows, d]), chance=0.025)}
    assert claims["VII-multitask-beats-lambda1"] and claims["VII-lambda1-lowest-rmse"]
    assert claims["VII-mddvm-source-chance"]
    assert claims["VII-shared-gains-more"] is False  # equal gains: not larger
    # shared gains more on average, but seed 1 reverses it: the paired gap is within 1 sd -> not held
    noisy = pd.concat([rows, d]).reset_index(drop=True)
    bump = (noisy.metric == "dacc_t") & noisy.shared
    noisy.loc[bump, "value"] += np.where(noisy.loc[bump, "seed"] == 0, 0.05, -0.03)
    claims = {c["claim_id"]: c["held"] for c in J.claims_table_vii(noisy, chance=0.025)}
    assert claims["VII-shared-gains-more"] is False
    noisy.loc[bump, "value"] += 0.05  # both seeds now gain more with the shared classifier
    claims = {c["claim_id"]: c["held"] for c in J.claims_table_vii(noisy, chance=0.025)}
    assert claims["VII-shared-gains-more"] is True


def test_fig12_claims():
    rows = []
    for model, accs in (("MTTDL", {0.1: 0.5, 1.0: 0.5}), ("MTMDD-VM", {0.1: 0.7, 1.0: 0.6}),
                        ("MTMDD-VM*", {0.1: 0.72, 1.0: 0.65})):
        for mu, v in accs.items():
            rows.append({"model": model, "mu": mu, "seed": 0, "metric": "acc_t", "value": v})
    claims = {c["claim_id"]: c["held"] for c in J.claims_fig12(pd.DataFrame(rows))}
    assert claims == {"Fig12-two-domain-beats-mttdl": True, "Fig12-smaller-mu-better": True,
                      "Fig12-shared-slightly-better": True}


def test_fig11_late_ratio_and_claim():
    from clickvision.experiments import paper_a_grad as G

    rows = []
    for step in range(1, 11):
        for layer in ("CONV1", "FC2"):
            count = 1.0 / step
            late = step > 3
            rows += [{"run": "Count", "tau": 0.0, "step": step, "layer": layer, "grad_norm": count},
                     {"run": "Combined", "tau": 0.1, "step": step, "layer": layer,
                      "grad_norm": count * (1.2 if late else 5.0)},
                     {"run": "Position", "tau": 1.0, "step": step, "layer": layer, "grad_norm": 3.0}]
    ratios = G.late_ratio(pd.DataFrame(rows), late_from=0.3)
    assert ratios.loc["CONV1", "late median Combined/Count"] == pytest.approx(1.2)
    assert ratios.loc["FC2", "early median Combined/Count"] == pytest.approx(5.0)
    assert ratios.loc["CONV1", "cv Position"] == pytest.approx(0.0)
    assert G.claims_fig11(ratios, ["CONV1", "FC2"])[0]["held"] is True
    assert G.claims_fig11(ratios, ["CONV1"], low=0.5, high=1.1)[0]["held"] is False


def test_paired_gap_and_gap_text():
    rows = _rows({"a": {"acc_t": 0.6}, "b": {"acc_t": 0.5}}, "model", seeds=(0, 1, 2))
    mean, sd, n = AC.paired_gap(rows, "model", "a", "b", "acc_t")
    assert mean == pytest.approx(0.1) and sd == pytest.approx(0.0, abs=1e-12) and n == 3
    assert AC.gap_text(mean, sd, n) == "+10.0 +- 0.0 over 3 seeds"
    assert "not resolved" in AC.gap_text(0.01, 0.02, 3)
    assert AC.gap_text(0.01, float("nan"), 1) == "+1.0 (1 seed)"


def test_click_feature_claim_with_paired_interval():
    ceiling = pd.DataFrame({"features": ["V", "C (ground truth)", "V + C (ground truth)"], "test images": "all",
                            "accuracy": [0.5, 0.3, 0.75]})
    correct = pd.DataFrame({"V": [1, 0, 0, 1] * 5, "V + C (ground truth)": [1, 1, 0, 1] * 5}, dtype=float)
    (c,) = AC.claims_click_feature(ceiling, correct)
    assert c["held"] is True and "paired bootstrap" in c["evidence"] and "+25.0 points" in c["evidence"]


def test_fig11_position_and_fluctuation_claims():
    from clickvision.experiments import paper_a_grad as G

    rows = []
    for step in range(1, 21):
        for layer in ("CONV1", "FC2"):
            wobble = 3.0 if step % 2 else 0.5
            rows += [{"run": "Count", "tau": 0.0, "step": step, "layer": layer, "grad_norm": 1.0},
                     {"run": "Combined", "tau": 0.1, "step": step, "layer": layer, "grad_norm": 1.1},
                     {"run": "Position", "tau": 1.0, "step": step, "layer": layer, "grad_norm": wobble}]
    frame = pd.DataFrame(rows)
    ratios, position = G.late_ratio(frame), G.late_ratio(frame, a="Position")
    claims = {c["claim_id"]: c["held"] for c in G.claims_fig11(ratios, ["CONV1", "FC2"], position=position)}
    # late median Position/Count = median of {3, 0.5} alternating = 1.75: within [0.5, 2]
    assert claims == {"Fig11-combined-tracks-count": True, "Fig11-position-converges-late": True,
                      "Fig11-position-fluctuates-more": True}
    claims = {c["claim_id"]: c["held"] for c in G.claims_fig11(ratios, ["CONV1"], high=1.5, position=position)}
    assert claims["Fig11-position-converges-late"] is False


def test_resolved_positive_needs_the_gap_outside_one_sd():
    assert AC.resolved_positive(1.5, 1.0, 3)
    assert not AC.resolved_positive(1.5, 2.9, 3)   # positive mean, within noise
    assert not AC.resolved_positive(-2.0, 0.5, 3)
    assert AC.resolved_positive(0.2, float("nan"), 1)  # one seed: the sign only
