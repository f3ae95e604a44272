"""The README's generated block, the claims summary and the HTML site."""
import pandas as pd
import pytest

from clickvision import paths, report


@pytest.fixture()
def committed_results(monkeypatch):
    monkeypatch.setattr(paths, "RESULTS_DIR", paths.PROJ_ROOT / "results")


def test_readme_block_is_current(committed_results):
    assert report.is_current(), "README's generated block is stale: run python -m clickvision.report"


def _ledger(rows):
    from clickvision.claims import LEDGER_COLUMNS

    return pd.DataFrame([{**{c: "" for c in LEDGER_COLUMNS}, **r} for r in rows], columns=list(LEDGER_COLUMNS))


def test_summary_counts(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "RESULTS_DIR", tmp_path)
    _ledger([
        dict(paper="A", claim_id="a1", verdict="supported", notebook="A.01"),
        dict(paper="A", claim_id="a2", verdict="inconclusive", notebook="A.01"),
        dict(paper="D", claim_id="d1", verdict="untestable", notebook="D.01"),
    ]).to_csv(tmp_path / "claims.csv", index=False)
    s = report.claims_summary()
    assert s.to_dict("records") == [
        {"paper": "A", "judged": 2, "supported": 1, "contradicted": 0, "inconclusive": 1, "untestable": 0, "structural": 0},
        {"paper": "D", "judged": 1, "supported": 0, "contradicted": 0, "inconclusive": 0, "untestable": 1, "structural": 0}]
    block = report.readme_block()
    assert "| A. MTMDD-VM | 2 | 1 | 0 | 1 | 0 | 0 |" in block and "| all | 3 | 1 | 0 | 1 | 1 | 0 |" in block


def test_update_readme_rewrites_only_the_block(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "RESULTS_DIR", tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.BEGIN}\nold\n{report.END}\ntail\n")
    assert report.update_readme(readme)
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("\ntail\n") and "old" not in text
    assert not report.update_readme(readme)
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="no generated block"):
        report.update_readme(readme)


def test_slowest_cell_reads_papermill_durations(tmp_path):
    import json

    cells = [{"cell_type": "code", "source": src, "metadata": {"papermill": {"duration": d}}, "outputs": []}
             for src, d in (["import x\n", 1.0], ["# fit\nmodel = fit(data)\n", 6.0], ["plot()", 3.0])]
    nb = tmp_path / "n.ipynb"
    nb.write_text(json.dumps({"cells": cells + [{"cell_type": "markdown", "source": "x", "metadata": {}}]}))
    line, seconds, share = report.slowest_cell(nb)
    assert (line, seconds) == ("model = fit(data)", 6.0) and share == pytest.approx(0.6)
    assert report.slowest_cell(tmp_path / "missing.ipynb") is None


def test_ledger_discussion_matches_committed_claims(committed_results):
    assert report.stale_discussions() == [], (
        "re-read the numbers and rewrite the ledger's discussion (00.03) for these papers")


def test_stale_discussions_catches_moved_counts(tmp_path):
    import json

    md = "<!-- discussion of paper B: 1 supported of 2 -->\nB text\n\n<!-- discussion of paper Z: 0 supported of 1 -->"
    nb = tmp_path / "ledger.ipynb"
    nb.write_text(json.dumps({"cells": [{"cell_type": "markdown", "source": md, "metadata": {}}]}))
    claims = _ledger([dict(paper="A", verdict="supported"), dict(paper="B", verdict="inconclusive"),
                      dict(paper="B", verdict="contradicted")])
    assert report.ledger_discussions(nb) == {"B": (1, 2), "Z": (0, 1)}
    assert report.stale_discussions(claims, nb) == [
        "paper A: no discussion", "paper B: discussion says 1 supported of 2, results say 0 of 2",
        "paper Z: discussion but no claims"]


def test_replications_compare_verdicts_claim_by_claim(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "RESULTS_DIR", tmp_path)
    here = [dict(paper="A", claim_id="a1", verdict="supported", estimate=0.03, notebook="A.01", device="cpu: X", commit="c1"),
            dict(paper="A", claim_id="a2", verdict="inconclusive", estimate=0.01, notebook="A.01", device="cpu: X",
                 commit="c1"),
            dict(paper="D", claim_id="d1", verdict="supported", estimate=0.02, notebook="D.01", device="cpu: Y",
                 commit="c1")]
    _ledger(here).to_csv(tmp_path / "claims.csv", index=False)
    assert report.load_replications().empty and "Replications" not in report.readme_block()
    there = [dict(r, verdict=v, device="cpu: Y", commit="c0") for r, v in zip(here, ["supported", "contradicted",
                                                                                    "supported"])]
    there.append(dict(paper="A", claim_id="only-there", verdict="supported", notebook="A.02", device="cpu: Y", commit="c0"))
    (tmp_path / "replications").mkdir()
    _ledger(there).to_csv(tmp_path / "replications" / "claims-cpu-y-c0.csv", index=False)
    reps = report.load_replications()
    assert set(reps["replication"]) == {"claims-cpu-y-c0"} and len(reps) == 4
    t = report.replication_table(report.load_claims(), reps)
    assert t["claim_id"].tolist() == ["a1", "a2", "d1"]  # judged in both only
    assert t["agrees"].tolist() == [True, False, True] and t["same_device"].tolist() == [False, False, True]
    assert t.loc[1, "verdict_replica"] == "contradicted"
    summary = report.replication_summary(report.load_claims(), reps)
    assert summary.to_dict("records") == [{"replication": "claims-cpu-y-c0", "device": "cpu: Y", "commit": "c0",
                                           "other": 2, "agree": 1, "differ": 1, "same_device": 1}]
    assert report.replication_summary(report.load_claims(), pd.DataFrame()).empty
    block = report.readme_block()
    assert "`claims-cpu-y-c0` (cpu: Y, commit c0): of 2 claims judged on another machine" in block
    assert "1 got the same verdict, 1 another." in block
    with pytest.raises(ValueError, match="judges a claim twice"):
        report.replication_table(report.load_claims(), pd.concat([reps, reps]))
