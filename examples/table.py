"""Print the papers' metric columns from covtool eval's metrics.json files, one row per model.

    python examples/table.py [--columns accuracy,macro_precision,...] NAME=EVALDIR ...

Only the standard library: the Makefiles call it with whatever Python runs covtool.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DEFAULT = "accuracy,macro_precision,macro_recall,macro_f1"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--columns", default=DEFAULT, help="metrics.json keys to print")
    ap.add_argument("--title", default="")
    ap.add_argument("runs", nargs="+", metavar="NAME=EVALDIR")
    args = ap.parse_args(argv)
    cols = [c for c in args.columns.split(",") if c]
    rows = []
    for spec in args.runs:
        name, _, folder = spec.partition("=")
        metrics = json.loads((Path(folder) / "metrics.json").read_text(encoding="utf-8"))
        cells = []
        for c in cols:
            v = metrics.get(c)
            cells.append("-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v))
        rows.append([name, *cells])
    header = ["model", *cols]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    if args.title:
        print(args.title)
    for r in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
