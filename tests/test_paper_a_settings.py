"""Paper A's settings carried forward from the validation selections of A.04 / A.07 / A.08 (selected_settings)."""
from __future__ import annotations

import pandas as pd
import pytest
from clickvision import paths, results
from clickvision.experiments.paper_a import methods as M


@pytest.fixture()
def results_dir(tmp_path, monkeypatch):
    d = tmp_path / "results"
    d.mkdir()
    monkeypatch.setattr(paths, "RESULTS_DIR", d)
    return d


def _record_selections(profile: str = "default", lam=(0.8, 0.6), mu=(1.0, 0.5), tau=0.05, b=0.001, t=0.1):
    results.record("A.04-position-loss", {"best_B": b, "best_T": t, "best_tau": tau, "acc_s_tau0": 0.5},
                   params={"profile": profile, "n_seeds": 0}, seed=0)
    results.record("A.07-multitask", {"best_lambda_MTMDD-VM": lam[0], "best_lambda_MTMDD-VM*": lam[1],
                                      "acc_t_MDD-VM": 0.5}, params={"profile": profile}, seed=0)
    results.record("A.08-multidomain", {"best_mu_MTMDD-VM": mu[0], "best_mu_MTMDD-VM*": mu[1]},
                   params={"profile": profile}, seed=0)


def test_selections_are_read_per_variant_with_their_source(results_dir):
    _record_selections()
    s = M.selected_settings("default")
    assert s.mu == {"MTMDD-VM": 1.0, "MTMDD-VM*": 0.5}
    assert s.lam == {"MTTDL": 0.8, "MTMDD-VM": 0.8, "MTMDD-VM*": 0.6}
    assert (s.click.tau, s.click.bandwidth, s.click.threshold) == (0.05, 0.001, 0.1)
    assert "A.08-Multidomain" in s.source["mu[MTMDD-VM*]"] and "A.07-Multitask" in s.source["lam[MTMDD-VM]"]
    assert "A.04-Position-Loss" in s.source["bandwidth"] and not M.fallbacks(s)
    # each variant trains at its own values; MTTDL is eq. (14), the count loss alone
    assert (s.joint("MTMDD-VM").mu, s.joint("MTMDD-VM*").mu, s.joint("MTMDD-VM*").shared) == (1.0, 0.5, True)
    assert s.joint("MTMDD-VM*").lam == 0.6 and s.joint("MTTDL").click.tau == 0.0 and not s.joint("MTTDL").two_domain
    table = s.table(["TDL", "MTTDL", "MTMDD-VM*"]).set_index(["method", "setting"])
    assert table.loc[("MTMDD-VM*", "mu"), "value"] == 0.5 and table.loc[("TDL", "B"), "value"] == 0.001


def test_latest_run_of_the_profile_wins_and_default_serves_other_profiles(results_dir):
    _record_selections("default", mu=(1.0, 1.0))
    assert M.selected_settings("smoke").mu == {"MTMDD-VM": 1.0, "MTMDD-VM*": 1.0}  # no smoke run: the default one
    assert "default-profile" in M.selected_settings("smoke").source["mu[MTMDD-VM]"]
    _record_selections("smoke", mu=(0.1, 0.5))
    assert M.selected_settings("smoke").mu == {"MTMDD-VM": 0.1, "MTMDD-VM*": 0.5}
    assert M.selected_settings("default").mu == {"MTMDD-VM": 1.0, "MTMDD-VM*": 1.0}


def test_empty_results_folder_falls_back_on_the_paper_and_says_so(results_dir):
    s = M.selected_settings("smoke")
    assert s.mu == M.PAPER_SETTINGS["mu"] and s.lam["MTMDD-VM"] == M.PAPER_SETTINGS["lam"]
    assert s.click.threshold == M.PAPER_SETTINGS["threshold"]
    assert set(M.fallbacks(s)) >= {"tau", "bandwidth", "threshold", "mu[MTMDD-VM]", "mu[MTMDD-VM*]", "lam[MTMDD-VM]"}
    assert all("FALLBACK" in s.source[k] for k in M.fallbacks(s))


def test_overrides_replace_the_selection_and_are_recorded(results_dir):
    _record_selections()
    s = M.selected_settings("default", mu=0.3, mu_shared=None, lam=0.2)
    assert s.mu == {"MTMDD-VM": 0.3, "MTMDD-VM*": 0.5} and set(s.lam.values()) == {0.2}
    assert "parameter mu" in s.source["mu[MTMDD-VM]"] and "A.08" in s.source["mu[MTMDD-VM*]"]
    with pytest.raises(ValueError, match="unknown override"):
        M.selected_settings("default", nu=1.0)


@pytest.mark.parametrize("value", ["abc", "nan", ""])
def test_malformed_selection_rows_name_the_file_and_metric(results_dir, value):
    _record_selections()
    path = results_dir / "A.08-multidomain.csv"
    frame = pd.read_csv(path)
    frame["value"] = frame["value"].astype(object)
    frame.loc[frame["metric"] == "best_mu_MTMDD-VM*", "value"] = value
    frame.to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"A\.08-multidomain\.csv.*best_mu_MTMDD-VM\*"):
        M.selected_settings("default")


def test_a_results_file_without_its_columns_is_an_error(results_dir):
    (results_dir / "A.04-position-loss.csv").write_text("metric,value\nbest_tau,0.1\n")
    with pytest.raises(ValueError, match=r"A\.04-position-loss\.csv lacks column"):
        M.selected_settings("default")


def test_out_of_range_selection_is_rejected(results_dir):
    _record_selections(mu=(0.0, 1.0))
    with pytest.raises(ValueError, match="mu"):
        M.selected_settings("default")


def test_plain_numbers_still_mean_every_variant():
    s = M.MethodSettings(lam=0.4, mu=0.1)
    assert s.mu == {"MTMDD-VM": 0.1, "MTMDD-VM*": 0.1} and s.lam["MTTDL"] == 0.4
    with pytest.raises(ValueError, match="no value for"):
        M.MethodSettings(mu={"MTMDD-VM": 0.1})
    with pytest.raises(ValueError, match="variant must be one of"):
        s.joint("TDL")
