"""``python -m clickvision.data build [--only NAME ...] [--force] [--verify]`` and ``... status [--verify]``.

``build`` runs every embedded builder in order (see :mod:`clickvision.data.build`), prints
one line per data set with its time, and exits 1 when a source is missing (after printing
the command that gets it), keeping everything already built. Built images are checked
cheaply (existence and byte size) on every build; ``--verify`` also re-hashes them against
their index. Damaged images are rebuilt alone where the builder can ("repaired").
``status`` lists what ``data/MANIFEST.json`` records and whether each set's artifacts are
intact: STALE (an artifact changed), DAMAGED (images missing or of the wrong size; with
``--verify`` also re-hashed, so a swapped image of the same size shows), listing the
damaged files. ``status`` exits 0, ``status --verify`` exits 1 when anything recorded is
stale or damaged.
"""
from __future__ import annotations

import argparse
import sys
import time

from . import build as builders
from . import manifest

MAX_LISTED = 20  # damaged files listed per data set by ``status``


def _status(verify: bool = False) -> int:
    entries = manifest.load_manifest()
    print(f"manifest: {manifest.MANIFEST}" + ("  (re-hashing every built image)" if verify else ""))
    names = [n for n, _ in builders.BUILDERS]
    bad = 0
    for name in names + sorted(set(entries) - set(names)):  # builders may record extra entries
        entry = entries.get(name)
        if entry is None:
            extra = sorted(set(entries) - set(names))
            print(f"{name:<14} not built" + (" (or recorded under the names below)" if extra else ""))
            continue
        damaged: list[tuple[str, str]] = []
        if not manifest.is_built(name, images="none"):
            state = "STALE (artifact missing or changed: rebuild)"
        elif damaged := manifest.damaged_images(name, verify=verify):
            state = (f"DAMAGED ({len(damaged)} image(s); `python -m clickvision.data build"
                     f"{' --verify' if verify else ''}` rebuilds them)")
        else:
            state = "ok"
        bad += state != "ok"
        counts = entry.get("counts", {})
        shown = ", ".join(f"{k}={v}" for k, v in counts.items() if isinstance(v, (int, float)))[:100]
        sim = " [simulated]" if entry.get("simulated") else ""
        print(f"{name:<14} {state}{sim}  {shown}\n    source: {entry.get('source', '?')}; "
              f"licence: {entry.get('licence', '?')}")
        for path, why in damaged[:MAX_LISTED]:
            print(f"    damaged: {path}: {why}")
        if len(damaged) > MAX_LISTED:
            print(f"    ... and {len(damaged) - MAX_LISTED} more")
    return 1 if verify and bad else 0


def main(argv: list[str] | None = None) -> int:
    names = [n for n, _ in builders.BUILDERS]
    parser = argparse.ArgumentParser(prog="python -m clickvision.data", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build the embedded data sets (skips finished work)")
    b.add_argument("--only", action="append", choices=names, metavar="NAME",
                   help=f"build only this data set (repeatable): {', '.join(names)}")
    b.add_argument("--force", action="store_true", help="rebuild even when up to date")
    b.add_argument("--verify", action="store_true",
                   help="re-hash every built image against its index first; rebuild only damaged ones")
    st = sub.add_parser("status", help="what is built, from data/MANIFEST.json")
    st.add_argument("--verify", action="store_true",
                    help="re-hash every built image against its index (reads every byte); exit 1 if any is damaged")
    args = parser.parse_args(argv)
    if args.command == "status":
        return _status(verify=args.verify)
    start = time.perf_counter()
    results = builders.build_all(only=args.only, force=args.force, verify=args.verify)
    missing = [r for r in results if r.status == "missing source"]
    print(f"done in {time.perf_counter() - start:.1f} s")
    if missing:
        print("\nMISSING SOURCES (everything else was built and kept):", file=sys.stderr)
        for r in missing:
            print(f"  {r.name}: {r.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
