"""``python -m clickvision.data build [--only NAME ...] [--force]`` and ``... status``.

``build`` runs every embedded builder in order (see :mod:`clickvision.data.build`), prints
one line per data set with its time, and exits 1 when a source is missing (after printing
the command that gets it), keeping everything already built. ``status`` lists what
``data/MANIFEST.json`` records and whether each set's artifacts are intact.
"""
from __future__ import annotations

import argparse
import sys
import time

from . import build as builders
from . import manifest


def _status() -> int:
    entries = manifest.load_manifest()
    print(f"manifest: {manifest.MANIFEST}")
    names = [n for n, _ in builders.BUILDERS]
    for name in names + sorted(set(entries) - set(names)):  # builders may record extra entries
        entry = entries.get(name)
        if entry is None:
            extra = sorted(set(entries) - set(names))
            print(f"{name:<14} not built" + (" (or recorded under the names below)" if extra else ""))
            continue
        state = "ok" if manifest.is_built(name) else "STALE (artifact missing or changed: rebuild)"
        counts = entry.get("counts", {})
        shown = ", ".join(f"{k}={v}" for k, v in counts.items() if isinstance(v, (int, float)))[:100]
        sim = " [simulated]" if entry.get("simulated") else ""
        print(f"{name:<14} {state}{sim}  {shown}\n    source: {entry.get('source', '?')}; "
              f"licence: {entry.get('licence', '?')}")
    return 0


def main(argv: list[str] | None = None) -> int:
    names = [n for n, _ in builders.BUILDERS]
    parser = argparse.ArgumentParser(prog="python -m clickvision.data", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build the embedded data sets (skips finished work)")
    b.add_argument("--only", action="append", choices=names, metavar="NAME",
                   help=f"build only this data set (repeatable): {', '.join(names)}")
    b.add_argument("--force", action="store_true", help="rebuild even when up to date")
    sub.add_parser("status", help="what is built, from data/MANIFEST.json")
    args = parser.parse_args(argv)
    if args.command == "status":
        return _status()
    start = time.perf_counter()
    results = builders.build_all(only=args.only, force=args.force)
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
