#!/usr/bin/env python3
"""Markdown table of bench/gateway.sh's fixed-rate phase (`oha --output-format json` results).

Usage: gateway_rate_report.py RESULTS_DIR RATE...

RESULTS_DIR/<label>/rate-<rate>-run-<n>.json for the labels `direct`, `nginx` and `gateway`.
oha ran with `-q RATE --latency-correction`: each latency is counted from when the request was
due, so a stall shows instead of lowering the rate. Each cell is the median over the rounds;
"added" is the path's median p50 (p99) minus the direct path's at the same rate.
"""

import json
import statistics
import sys
from pathlib import Path

PATHS = [
    ("direct", "upstream directly"),
    ("nginx", "nginx `proxy_pass`"),
    ("gateway", "`tollgate gateway`"),
]


def parse(path: Path) -> dict:
    d = json.loads(path.read_text())
    pct = d["latencyPercentiles"]
    codes = d["statusCodeDistribution"]
    return {
        "rps": d["summary"]["requestsPerSec"],
        "p50": pct["p50"] * 1e6,
        "p99": pct["p99"] * 1e6,
        "ok": sum(n for c, n in codes.items() if c.startswith("2")),
        "other": sum(n for c, n in codes.items() if not c.startswith("2"))
        + sum(d["errorDistribution"].values()),
    }


def fmt_us(us: float) -> str:
    return f"{us / 1000:.3f} ms" if abs(us) >= 1000 else f"{us:.0f} µs"


def signed(us: float) -> str:
    return ("+" if us >= 0 else "−") + fmt_us(abs(us))


def main() -> None:
    results = Path(sys.argv[1])
    print("| rate | path | achieved requests/s | p50 | p99 | runs (p50) | non-2xx + errors "
          "| added vs direct (p50 / p99) |")
    print("|---:|---|---:|---:|---:|---|---:|---:|")
    summary = []
    for rate in sys.argv[2:]:
        med = {}
        for label, description in PATHS:
            runs = [parse(p) for p in sorted((results / label).glob(f"rate-{rate}-run-*.json"))]
            if not runs:
                raise SystemExit(f"no fixed-rate runs for {label} at {rate}/s in {results}")
            m = {k: statistics.median(r[k] for r in runs) for k in ("rps", "p50", "p99")}
            med[label] = m
            added = "—" if label == "direct" else (
                f"{signed(m['p50'] - med['direct']['p50'])} / {signed(m['p99'] - med['direct']['p99'])}")
            print(f"| {int(rate):,}/s | {description} | {m['rps']:,.0f} | {fmt_us(m['p50'])} "
                  f"| {fmt_us(m['p99'])} | {' / '.join(fmt_us(r['p50']) for r in runs)} "
                  f"| {sum(r['other'] for r in runs)} | {added} |")
        g = med["gateway"]["p50"] - med["direct"]["p50"]
        n = med["nginx"]["p50"] - med["direct"]["p50"]
        summary.append(f"At {int(rate):,}/s: gateway p50 added {signed(g)} (aim: under 100 µs"
                       f"{'; met' if g < 100 else f'; {g / 100:.1f}x the aim'}); "
                       f"nginx proxy_pass adds {signed(n)}.")
    print()
    for line in summary:
        print(line)


if __name__ == "__main__":
    main()
