"""A notebook's Ledger: verdict rows with provenance, evidence kept, recomputable; only the
committed run writes results/claims.csv."""
import numpy as np
import pandas as pd
import pytest

from clickvision import claims as C
from clickvision import paths


@pytest.fixture()
def results_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "RESULTS_DIR", tmp_path / "results")
    return tmp_path / "results"


def _data(effect=0.03, n=400, seeds=3):
    rng = np.random.default_rng(0)
    rows = []
    for s in range(seeds):
        base = rng.random(n) < 0.5
        better = np.where(rng.random(n) < effect * 4, True, base)
        rows += [{"method": "A", "seed": s, "item": i, "value": float(better[i])} for i in range(n)]
        rows += [{"method": "B", "seed": s, "item": i, "value": float(base[i])} for i in range(n)]
    return pd.DataFrame(rows)


def _ledger(params):
    led = C.Ledger("X.01-Test", params, n_resamples=400)
    led.judge(C.Claim("A", "a-beats-b", "A beats B", "direction", arms=("A", "B"), paper_effect=0.02), _data())
    led.judge(C.Claim("A", "same", "A and B alike", "equivalence", arms=("A", "B"), margin=0.2), _data())
    led.judge(C.Claim("A", "nope", "needs real clicks", "untestable", reason="simulated clicks only"))
    return led


def test_committed_run_writes_claims_and_evidence(results_dir, monkeypatch):
    monkeypatch.setattr("clickvision.provenance.is_committed_run", lambda nb, p: True)
    rows = _ledger({"profile": "default"}).record()
    table = C.load_ledger()
    assert list(table.columns) == list(C.LEDGER_COLUMNS)
    assert set(table["verdict"]) <= set(C.VERDICTS) and len(table) == 3
    assert table["commit"].notna().all() and table["device"].str.len().gt(0).all()
    ev = C.load_evidence("X.01-Test")
    assert set(ev["claim_id"]) == {"a-beats-b", "same"}
    for r in table.to_dict("records"):  # every verdict recomputes from results/ alone
        again = C.rejudge(r, ev, n_resamples=400)
        assert again.verdict == r["verdict"]
        if r["kind"] != "untestable":
            assert again.estimate == pytest.approx(r["estimate"])
    assert rows["verdict"].iloc[2] == "untestable"


def test_other_runs_never_overwrite_committed_verdicts(results_dir, monkeypatch, capsys):
    monkeypatch.setattr("clickvision.provenance.is_committed_run", lambda nb, p: p["profile"] == "default")
    _ledger({"profile": "default"}).record()
    before = (results_dir / "claims.csv").read_bytes()
    _ledger({"profile": "smoke"}).record()
    assert (results_dir / "claims.csv").read_bytes() == before
    assert list((results_dir / "runs" / "claims").glob("X.01-Test.*.csv"))
    assert "results/claims.csv untouched" in capsys.readouterr().out


def test_counts_and_duplicate_claim():
    led = _ledger({"profile": "smoke"})
    assert led.counts().sum() == 3 and list(led.counts().index) == list(C.VERDICTS)
    with pytest.raises(ValueError, match="judged twice"):
        led.judge(C.Claim("A", "nope", "again", "untestable", reason="x"))


def test_old_ledger_named(tmp_path):
    p = tmp_path / "claims.csv"
    pd.DataFrame([{"paper": "A", "claim_id": "x", "held": True}]).to_csv(p, index=False)
    with pytest.raises(ValueError, match="held"):
        C.load_ledger(p)


def test_is_committed_run_compares_with_the_parameters_cell():
    from clickvision import provenance

    nb = "00.01-Workbook-Tour"
    from clickvision.nbrun import notebook_parameters

    declared = notebook_parameters(provenance.notebook_file(nb))
    assert provenance.is_committed_run(nb, declared)
    assert not provenance.is_committed_run(nb, {**declared, "profile": "smoke"})
    other = {**declared, "seed": declared.get("seed", 0) + 1}
    assert not provenance.is_committed_run(nb, other)


def test_a_notebooks_rows_are_replaced_and_papers_checked(results_dir, monkeypatch):
    monkeypatch.setattr("clickvision.provenance.is_committed_run", lambda nb, p: True)
    _ledger({"profile": "default"}).record()
    other = C.Ledger("Y.01-Other", {"profile": "default"})
    other.judge(C.Claim("B", "b1", "x", "structural", reason="by construction"))
    other.record()
    again = C.Ledger("X.01-Test", {"profile": "default"})
    again.judge(C.Claim("A", "only", "y", "untestable", reason="no data"))
    again.record()
    t = C.load_ledger()
    assert sorted(zip(t.notebook, t.claim_id)) == [("X.01-Test", "only"), ("Y.01-Other", "b1")]
    with pytest.raises(ValueError, match="paper must be one of"):
        C.Claim("Z", "z", "x", "untestable", reason="r")
