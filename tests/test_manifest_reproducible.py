"""The data build is deterministic: a fresh build reproduces the committed MANIFEST's digests."""
import json
import subprocess

import pytest

from clickvision import paths
from clickvision.data import manifest


def _committed() -> dict:
    try:
        out = subprocess.run(["git", "show", "HEAD:data/MANIFEST.json"], cwd=paths.PROJ_ROOT,
                             capture_output=True, text=True, check=True).stdout
    except (subprocess.CalledProcessError, FileNotFoundError):
        pytest.skip("no committed data/MANIFEST.json to compare with")
    return json.loads(out)


def test_built_artifacts_match_committed_manifest():
    built = manifest.load_manifest()
    if not built:
        pytest.skip("data not built (run python -m clickvision.data build)")
    committed = _committed()
    for name, entry in committed.items():
        if name not in built:
            continue
        for rel, digest in entry["artifacts"].items():
            assert built[name]["artifacts"].get(rel) == digest, (
                f"{name}: {rel} differs from the committed MANIFEST (non-deterministic build, "
                f"or a builder changed without committing the rebuilt MANIFEST)")
        assert built[name].get("counts") == entry.get("counts"), f"{name}: counts differ"


def test_every_recorded_artifact_is_present_and_intact():
    built = manifest.load_manifest()
    if not built:
        pytest.skip("data not built")
    stale = [n for n in built if not manifest.is_built(n)]
    assert not stale, f"artifacts missing or changed since the build: {stale}"
