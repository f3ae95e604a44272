"""The README's generated block, the claims summary and the HTML site."""
import pandas as pd
import pytest

from clickvision import paths, report


@pytest.fixture()
def committed_results(monkeypatch):
    monkeypatch.setattr(paths, "RESULTS_DIR", paths.PROJ_ROOT / "results")


def test_readme_block_is_current(committed_results):
    assert report.is_current(), "README's generated block is stale: run python -m clickvision.report"


def test_summary_counts(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "RESULTS_DIR", tmp_path)
    pd.DataFrame([
        dict(paper="A", claim_id="a1", claim="x", evidence="e", held=True, notebook="A.01"),
        dict(paper="A", claim_id="a2", claim="y", evidence="e", held=False, notebook="A.01"),
        dict(paper="D", claim_id="d1", claim="z", evidence="e", held=False, notebook="D.01"),
    ]).to_csv(tmp_path / "claims.csv", index=False)
    s = report.claims_summary()
    assert s.to_dict("records") == [{"paper": "A", "checked": 2, "held": 1, "not held": 1},
                                    {"paper": "D", "checked": 1, "held": 0, "not held": 1}]
    block = report.readme_block()
    assert "| A. MTMDD-VM | 2 | 1 | 1 |" in block and "| all | 3 | 1 | 2 |" in block


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


def test_site_has_index_and_pages(tmp_path):
    index = report.build_site(tmp_path / "site")
    text = index.read_text()
    assert "00.01 Workbook tour" in text
    assert (tmp_path / "site" / "00-workbook" / "00.01-Workbook-Tour.html").exists()


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

    md = "<!-- discussion of paper B: 1 of 2 held -->\nB text\n\n<!-- discussion of paper Z: 0 of 1 held -->"
    nb = tmp_path / "ledger.ipynb"
    nb.write_text(json.dumps({"cells": [{"cell_type": "markdown", "source": md, "metadata": {}}]}))
    claims = pd.DataFrame({"paper": ["A", "B", "B"], "held": [True, False, False]})
    assert report.ledger_discussions(nb) == {"B": (1, 2), "Z": (0, 1)}
    assert report.stale_discussions(claims, nb) == [
        "paper A: no discussion", "paper B: discussion says 1 of 2 held, results say 0 of 2",
        "paper Z: discussion but no claims"]
