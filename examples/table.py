"""Print the papers' metric columns from covtool eval's metrics.json files, one row per model.

    python examples/table.py [--columns KEY[:HEADER],...] [--file metrics.json] NAME=DIR_OR_JSON ...

KEY may be dotted to reach into nested objects (``per_class.covid.sensitivity``).

Only the standard library: the Makefiles call it with whatever Python runs covtool.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DEFAULT = "accuracy,macro_precision,macro_recall,macro_f1"


def lookup(data: dict, key: str):
    """``data["a"]["b"]`` for ``"a.b"``; None where a part is missing."""
    for part in key.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--columns", default=DEFAULT, help="metrics.json keys to print")
    ap.add_argument("--file", default="metrics.json", help="JSON file name inside a DIR")
    ap.add_argument("--title", default="")
    ap.add_argument("runs", nargs="+", metavar="NAME=DIR_OR_JSON")
    args = ap.parse_args(argv)
    cols = [c.partition(":") for c in args.columns.split(",") if c]
    rows = []
    for spec in args.runs:
        name, _, folder = spec.partition("=")
        path = Path(folder)
        metrics = json.loads((path / args.file if path.is_dir() else path).read_text(encoding="utf-8"))
        cells = []
        for key, _, _ in cols:
            v = lookup(metrics, key)
            cells.append("-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v))
        rows.append([name, *cells])
    header = ["model", *(label or key for key, _, label in cols)]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    if args.title:
        print(args.title)
    for r in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
