#!/usr/bin/env python3
"""Markdown table of bench/gateway.sh's saved `wrk --latency` outputs.

Usage: gateway_report.py RESULTS_DIR

RESULTS_DIR/<label>/run-<n>.txt for the labels `direct` (the upstream called directly),
`nginx` (nginx proxy_pass to it) and `gateway` (tollgate gateway in front of it). Each cell is
the median over the runs (p50 and p99 may come from different runs); `runs` shows every run's
requests/s. "added" is the median latency minus the direct path's; the throughput ratio is
against nginx proxy_pass.
"""

import re
import statistics
import sys
from pathlib import Path

UNITS_US = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}
PATHS = [
    ("direct", "upstream directly (nginx, fixed JSON)"),
    ("nginx", "nginx `proxy_pass` (keep-alive pool) -> upstream"),
    ("gateway", "`tollgate gateway` (key, check, meter `requests`) -> upstream"),
]


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
    return {
        "rps": float(rps.group(1)),
        "p50": duration_us(p50.group(1)),
        "p99": duration_us(p99.group(1)),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "sockerr": sum(int(g) for g in sock.groups()) if sock else 0,
    }


def fmt_us(us: float) -> str:
    return f"{us / 1000:.3f} ms" if abs(us) >= 1000 else f"{us:.0f} µs"


def signed(us: float) -> str:
    return ("+" if us >= 0 else "−") + fmt_us(abs(us))


def main() -> None:
    results = Path(sys.argv[1])
    med = {}
    rows = []
    for label, description in PATHS:
        runs = [parse(p) for p in sorted((results / label).glob("run-*.txt"))]
        if not runs:
            raise SystemExit(f"no runs for {label} in {results}")
        m = {k: statistics.median(r[k] for r in runs) for k in ("rps", "p50", "p99")}
        med[label] = m
        rows.append((label, description, runs, m))

    print("| path | requests/s | p50 | p99 | runs (requests/s) | non-2xx, socket errors "
          "| added vs direct (p50 / p99) | throughput vs nginx proxy_pass |")
    print("|---|---:|---:|---:|---|---|---:|---:|")
    for label, description, runs, m in rows:
        added = "—" if label == "direct" else (
            f"{signed(m['p50'] - med['direct']['p50'])} / {signed(m['p99'] - med['direct']['p99'])}")
        ratio = f"{m['rps'] / med['nginx']['rps']:.2f}x"
        print(
            f"| {description} | {m['rps']:,.0f} | {fmt_us(m['p50'])} | {fmt_us(m['p99'])} "
            f"| {' / '.join(format(r['rps'], ',.0f') for r in runs)} "
            f"| {sum(r['non2xx'] for r in runs)}, {sum(r['sockerr'] for r in runs)} | {added} | {ratio} |"
        )
    g, n = med["gateway"], med["nginx"]
    gateway_added_p50 = g["p50"] - med["direct"]["p50"]
    print()
    print(f"Gateway p50 added vs direct: {fmt_us(gateway_added_p50)} (aim: under 100 µs"
          f"{'; met' if gateway_added_p50 < 100 else f'; {gateway_added_p50 / 100:.1f}x the aim'}); "
          f"vs nginx proxy_pass: {fmt_us(g['p50'] - n['p50'])} more at p50.")
    ratio = g["rps"] / n["rps"]
    print(f"Gateway throughput: {ratio:.2f}x nginx proxy_pass (aim: at least 0.7x"
          f"{'; met' if ratio >= 0.7 else f'; {0.7 / ratio:.2f}x short'}).")


if __name__ == "__main__":
    main()
