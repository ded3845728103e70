#!/usr/bin/env python3
"""Draws the cost of a list page against the number of keys from the
results of scripts/scale.sh, as a small SVG (no plotting library needed).

Usage: scripts/scale_plot.py OUT.svg DIR [DIR...]
  each DIR is a scripts/scale.sh output directory (SCALE_OUT/BACKEND) with
  results.tsv. One line per backend, build (new, base) and op (list,
  list-disabled): the median over the rounds of the p50 latency of a page
  of 100 keys at the run's concurrency, on log-log axes.
"""
import csv
import math
import os
import statistics
import sys
from collections import defaultdict

W, H = 720, 440
LEFT, RIGHT, TOP, BOTTOM = 70, 200, 30, 50
COLORS = {"local": "#1f77b4", "vault": "#2ca02c", "vault-transit": "#d62728"}


def load(dirs):
    series = defaultdict(dict)  # (backend, bin, op) -> {keys: ms}
    for d in dirs:
        backend = os.path.basename(os.path.normpath(d))
        rows = list(csv.DictReader(open(os.path.join(d, "results.tsv")), delimiter="\t"))
        groups = defaultdict(list)
        for r in rows:
            if r["op"] in ("list", "list-disabled") and float(r["p50_ms"]) > 0:
                groups[(r["bin"], r["op"], int(r["keys"]))].append(float(r["p50_ms"]))
        for (b, op, n), v in groups.items():
            series[(backend, b, op)][n] = statistics.median(v)
    return series


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    series = load(sys.argv[2:])
    xs = sorted({n for s in series.values() for n in s})
    ys = [v for s in series.values() for v in s.values()]
    if not xs or not ys:
        sys.exit("no list results")
    x0, x1 = math.log10(min(xs)), math.log10(max(xs))
    y0, y1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y1 = y0 + 1
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    px = lambda n: LEFT + (math.log10(n) - x0) / (x1 - x0) * pw
    py = lambda v: TOP + ph - (math.log10(v) - y0) / (y1 - y0) * ph
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{LEFT}" y="18" font-size="14">Cost of a list page of 100 keys (p50 latency, ms) against the number of keys</text>']
    for e in range(y0, y1 + 1):
        y = py(10 ** e)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + pw}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 8}" y="{y + 4:.1f}" text-anchor="end">{10 ** e:g}</text>')
    for n in xs:
        x = px(n)
        out.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + ph}" stroke="#ddd"/>')
        out.append(f'<text x="{x:.1f}" y="{TOP + ph + 18}" text-anchor="middle">{n:,}</text>')
    out.append(f'<text x="{LEFT + pw / 2}" y="{H - 10}" text-anchor="middle">keys on the server</text>')
    out.append(f'<text x="16" y="{TOP + ph / 2}" transform="rotate(-90 16 {TOP + ph / 2})" text-anchor="middle">ms per page (log)</text>')
    ly = TOP + 10
    for (backend, b, op), pts in sorted(series.items()):
        color = COLORS.get(backend, "#555")
        dash = ' stroke-dasharray="6 4"' if b != "new" else ""
        width = 2.5 if op == "list" else 1.2
        path = " ".join(f"{'M' if i == 0 else 'L'}{px(n):.1f},{py(v):.1f}" for i, (n, v) in enumerate(sorted(pts.items())))
        out.append(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="{width}"{dash}/>')
        for n, v in pts.items():
            out.append(f'<circle cx="{px(n):.1f}" cy="{py(v):.1f}" r="3" fill="{color}"/>')
        label = f"{backend} {op}" + (" (before)" if b != "new" else "")
        out.append(f'<line x1="{LEFT + pw + 12}" y1="{ly}" x2="{LEFT + pw + 36}" y2="{ly}" stroke="{color}" stroke-width="{width}"{dash}/>')
        out.append(f'<text x="{LEFT + pw + 40}" y="{ly + 4}">{label}</text>')
        ly += 18
    out.append("</svg>")
    open(sys.argv[1], "w").write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
