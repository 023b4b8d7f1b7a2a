#!/usr/bin/env python3
"""Turns the saved `wrk --latency` outputs of bench/http-check.sh into a markdown table.

Usage: wrk_report.py RESULTS_DIR PATHS_TSV BASELINE_LABEL

PATHS_TSV lists the measured paths in table order, one `label<TAB>description` a line;
RESULTS_DIR/<label>/run-<n>.txt holds wrk's output of each measured run. Each column of the
table is the median over the runs of that metric (so p50 and p99 may come from different runs);
the `runs` column shows every run's requests/s so the spread is visible. The ratio compares
median requests/s with the baseline's.
"""

import re
import statistics
import sys
from pathlib import Path

UNITS_US = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}


def duration_us(text: str) -> float:
    match = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", text)
    if not match:
        raise ValueError(f"unknown wrk duration {text!r}")
    return float(match.group(1)) * UNITS_US[match.group(2)]


def parse(path: Path) -> dict:
    text = path.read_text()
    rps = re.search(r"^Requests/sec:\s+([0-9.]+)", text, re.M)
    p50 = re.search(r"^\s+50%\s+(\S+)", text, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", text, re.M)
    if not (rps and p50 and p99):
        raise SystemExit(f"{path}: not a complete `wrk --latency` output:\n{text}")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    total = re.search(r"^\s+(\d+) requests in", text, re.M)
    return {
        "rps": float(rps.group(1)),
        "p50": duration_us(p50.group(1)),
        "p99": duration_us(p99.group(1)),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "sockerr": sum(int(g) for g in sock.groups()) if sock else 0,
        "requests": int(total.group(1)) if total else 0,
    }


def fmt_us(us: float) -> str:
    return f"{us / 1000:.3f} ms" if us >= 1000 else f"{us:.0f} µs"


def main() -> None:
    results_dir, paths_tsv, baseline = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    rows = []
    for line in paths_tsv.read_text().splitlines():
        label, description = line.split("\t", 1)
        runs = [parse(p) for p in sorted((results_dir / label).glob("run-*.txt"))]
        if runs:
            rows.append((label, description, runs))
    medians = {label: statistics.median(r["rps"] for r in runs) for label, _, runs in rows}
    base = medians.get(baseline)

    print("| path | requests/s | p50 | p99 | runs (requests/s) | non-2xx, socket errors | vs nginx |")
    print("|---|---:|---:|---:|---|---|---:|")
    for label, description, runs in rows:
        rps = medians[label]
        ratio = "1.00x (ceiling)" if label == baseline else (f"{rps / base:.2f}x" if base else "n/a")
        print(
            f"| {description} | {rps:,.0f} | {fmt_us(statistics.median(r['p50'] for r in runs))} "
            f"| {fmt_us(statistics.median(r['p99'] for r in runs))} "
            f"| {' / '.join(format(r['rps'], ',.0f') for r in runs)} "
            f"| {sum(r['non2xx'] for r in runs)}, {sum(r['sockerr'] for r in runs)} | {ratio} |"
        )


if __name__ == "__main__":
    main()
