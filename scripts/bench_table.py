#!/usr/bin/env python3
"""Print the benchmark figures table from the JSON files benches write.

Each bench writes one file per figure into $TRADEGUARD_BENCH_DIR:
  {"id": "...", "metric": "...", "value": 1.0, "unit": "ns", "goal": "<= 60 ns"}
Usage: bench_table.py DIR  (prints a Markdown table; exits 1 when no figure was found)
"""
import json
import pathlib
import sys


def fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    root = pathlib.Path(sys.argv[1])
    rows = []
    for path in sorted(root.glob("*.json")):
        try:
            fig = json.loads(path.read_text())
            rows.append((fig["id"], fig["metric"], fmt(float(fig["value"])), fig["unit"], fig.get("goal", "")))
        except (ValueError, KeyError, TypeError) as e:
            print(f"bench_table: {path}: not a figure file ({e})", file=sys.stderr)
            return 1
    if not rows:
        print(f"bench_table: no figures in {root}", file=sys.stderr)
        return 1
    print("| id | metric | value | unit | goal |")
    print("|---|---|---:|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
