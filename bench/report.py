#!/usr/bin/env python3
"""Benchmark results: wrk's per-scenario JSON -> one result JSON, a Markdown table, an SVG chart.

  report.py build --run DIR --out PREFIX [--check]   (called by run.sh for each backend)
  report.py render RESULT.json...                    (re-draw .md and .svg of stored results)
  report.py compare --out PREFIX RESULT.json...      (one table and chart for several runs)

Only the standard library: the SVG is written by hand.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from html import escape

SCENARIOS = {
    "healthz": ("GET /healthz", "one database round trip (SELECT 1): the ceiling"),
    "get_profile": (
        "getProfile",
        "POST customerProfiles/getProfile by customerIdentification, Basic auth",
    ),
    "debit_token": (
        "debit pt:: token",
        "POST transaction/debit charging a stored instrument: one write transaction",
    ),
    "debit_register": (
        "debit withRegister (new customer)",
        "debit with a fresh ix:: card token, withRegister: new profile + instrument",
    ),
    "signed_get_profile": (
        "signed getProfile",
        "getProfile on the signing connector: X-Signature checked, response signed",
    ),
    "console_search": (
        "console profile search",
        "GET /containers/<id>?q=bench-<n> logged in as admin (HTML page)",
    ),
    "console_home": (
        "console home page",
        "GET / logged in as admin: totals, 30 days of counts, alerts, chart (HTML page)",
    ),
    "monri_customer": ("Monri GET /v2/customers/:uuid", "Monri Customers API v2"),
}

ORDER = list(SCENARIOS)
COLORS = ["#3566a8", "#d9822b", "#3f9a4b", "#a83a5b", "#6b5aa8"]


def load(path):
    with open(path) as f:
        return json.load(f)


def machine():
    info = {"cpus": os.cpu_count(), "kernel": platform.release()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    info["memory_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    for name, cmd in [("wrk", ["wrk", "-v"]), ("sqlite", ["sqlite3", "--version"])]:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=5)
            info[name] = (out.stdout or out.stderr).strip().splitlines()[0][:80]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            pass
    return info


def build(run_dir, check):
    meta = load(os.path.join(run_dir, "meta.json"))
    scenarios = []
    for name in meta["scenarios"].split(","):
        base = os.path.join(run_dir, name)
        title, what = SCENARIOS.get(name, (name, ""))
        entry = {"name": name, "title": title, "what": what}
        if os.path.exists(base + ".skip"):
            with open(base + ".skip") as f:
                entry["skipped"] = f.read().strip()
        elif os.path.exists(base + ".json"):
            w = load(base + ".json")
            secs = w["duration_us"] / 1e6
            lat = w["latency_us"]
            errs = w["errors"]
            entry.update(
                {
                    "requests": w["requests"],
                    "seconds": round(secs, 2),
                    "rps": round(w["requests"] / secs, 1) if secs else 0.0,
                    "p50_ms": lat["p50"] / 1000,
                    "p90_ms": lat["p90"] / 1000,
                    "p99_ms": lat["p99"] / 1000,
                    "max_ms": lat["max"] / 1000,
                    "mean_ms": round(lat["mean"] / 1000, 3),
                    "errors": errs,
                    "error_count": sum(errs.values()),
                }
            )
            if os.path.exists(base + ".cpu.json"):
                entry["cpu"] = load(base + ".cpu.json")
            if os.path.exists(base + ".mem.json"):
                entry["memory_after_kb"] = load(base + ".mem.json")
        else:
            entry["skipped"] = "no result (wrk failed?)"
        scenarios.append(entry)
    ceiling = next((s["rps"] for s in scenarios if s["name"] == "healthz" and "rps" in s), None)
    for s in scenarios:
        if ceiling and "rps" in s:
            s["ratio_to_healthz"] = round(s["rps"] / ceiling, 3)
    result = dict(meta)
    result["startup_ms_median"] = statistics.median(meta["startup_ms"])
    result["peak_rss_mb"] = round(meta["peak_rss_kb"] / 1024, 1)
    result["machine"] = machine()
    result["results"] = scenarios
    result["targets"] = targets(result)
    return result


def by_name(result, name):
    return next((s for s in result["results"] if s["name"] == name and "rps" in s), None)


def targets(r):
    """The issue's targets, evaluated where this run's conditions are the target's."""
    out = []
    big = r["profiles"] >= 1_000_000
    sqlite = r["backend"] == "sqlite"
    gp, dt, cs = by_name(r, "get_profile"), by_name(r, "debit_token"), by_name(r, "console_search")

    # A smoke run (seconds, small data, maybe a debug build) measures nothing: no verdicts.
    measured_run = not r.get("smoke") and r.get("build", "release") == "release"

    def add(target, measured, met, applies=True):
        ok = applies and measured_run
        out.append({"target": target, "measured": measured, "met": met if ok else None})

    if gp and "ratio_to_healthz" in gp:
        add(
            "getProfile >= 0.5 x /healthz, p99 <= 10 ms (SQLite)",
            f"{gp['ratio_to_healthz']:.2f} x, p99 {gp['p99_ms']:.1f} ms",
            gp["ratio_to_healthz"] >= 0.5 and gp["p99_ms"] <= 10,
            sqlite,
        )
    if dt and "ratio_to_healthz" in dt:
        add(
            "debit with a token >= 0.25 x /healthz",
            f"{dt['ratio_to_healthz']:.2f} x",
            dt["ratio_to_healthz"] >= 0.25,
        )
    if cs:
        add(
            "profile search page p99 <= 50 ms with 1 000 000 profiles",
            f"p99 {cs['p99_ms']:.1f} ms ({r['profiles']:,} profiles)",
            cs["p99_ms"] <= 50,
            big,
        )
    add(
        "start-up < 2 s with 1 000 000 profiles",
        f"{r['startup_ms_median']:.0f} ms ({r['profiles']:,} profiles)",
        r["startup_ms_median"] < 2000,
        big,
    )
    add("peak RSS < 150 MB", f"{r['peak_rss_mb']:.1f} MB", r["peak_rss_mb"] < 150)
    return out


def fmt_rps(v):
    return f"{v:,.0f}"


def markdown(r):
    lines = [
        f"### {r['backend']}, {r['profiles']:,} profiles, {r['concurrency']} connections"
        + (" (smoke)" if r.get("smoke") else ""),
        "",
        f"{r['date']}, commit {r['git_commit']}, wrk -t{r['threads']} -c{r['concurrency']}, "
        f"{r['warmup_s']} s warm-up + {r['duration_s']} s per scenario. "
        f"Seeding {r['seed_ms'] / 1000:.1f} s; start-up {r['startup_ms_median']:.0f} ms "
        f"(median of {', '.join(str(x) for x in r['startup_ms'])} ms); "
        f"peak RSS {r['peak_rss_mb']:.1f} MB.",
        "",
        "| scenario | req/s | × /healthz | p50 ms | p99 ms | max ms | errors | CPU s: coffer / wrk / other |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for s in r["results"]:
        if "skipped" in s:
            lines.append(f"| {s['title']} | skipped: {s['skipped']} | | | | | | |")
            continue
        c = s.get("cpu")
        cpu = f"{c['coffer_s']:.1f} / {c['wrk_s']:.1f} / {c['other_s']:.1f}" if c else ""
        lines.append(
            f"| {s['title']} | {fmt_rps(s['rps'])} | {s.get('ratio_to_healthz', 0):.2f} | "
            f"{s['p50_ms']:.2f} | {s['p99_ms']:.2f} | {s['max_ms']:.1f} | {s['error_count']} | {cpu} |"
        )
    lines += ["", "| target | measured | met |", "|---|---|---|"]
    for t in r["targets"]:
        met = {True: "yes", False: "**no**", None: "n/a (other conditions)"}[t["met"]]
        lines.append(f"| {t['target']} | {t['measured']} | {met} |")
    return "\n".join(lines) + "\n"


def label(r):
    return f"{r['backend']} {r['profiles']:,}"


def svg(runs, title):
    """Two panels of horizontal bars per scenario: throughput (req/s) and p99 (ms)."""
    names = [n for n in ORDER if any(by_name(r, n) for r in runs)]
    names += [s["name"] for r in runs for s in r["results"] if "rps" in s and s["name"] not in names]
    bar_h, gap, left, panel_w, pad = 14, 10, 210, 330, 60
    group_h = bar_h * len(runs) + gap
    top = 70
    height = top + group_h * len(names) + 40 + 18 * len(runs)
    width = left + 2 * panel_w + pad + 20
    max_rps = max((by_name(r, n) or {}).get("rps", 0) for r in runs for n in names) or 1
    max_p99 = max((by_name(r, n) or {}).get("p99_ms", 0) for r in runs for n in names) or 1
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="10" y="20" font-size="14" font-weight="bold">{escape(title)}</text>',
        f'<text x="{left}" y="52" font-weight="bold">throughput (req/s)</text>',
        f'<text x="{left + panel_w + pad}" y="52" font-weight="bold">p99 latency (ms)</text>',
    ]
    for gi, n in enumerate(names):
        y0 = top + gi * group_h
        out.append(
            f'<text x="{left - 8}" y="{y0 + group_h / 2}" text-anchor="end">'
            f"{escape(SCENARIOS.get(n, (n, ''))[0])}</text>"
        )
        for ri, r in enumerate(runs):
            s = by_name(r, n)
            if not s:
                continue
            y = y0 + ri * bar_h
            color = COLORS[ri % len(COLORS)]
            w1 = max(1.0, panel_w * 0.8 * s["rps"] / max_rps)
            w2 = max(1.0, panel_w * 0.8 * s["p99_ms"] / max_p99)
            x2 = left + panel_w + pad
            out += [
                f'<rect x="{left}" y="{y}" width="{w1:.1f}" height="{bar_h - 2}" fill="{color}"/>',
                f'<text x="{left + w1 + 4:.1f}" y="{y + bar_h - 4}">{fmt_rps(s["rps"])}</text>',
                f'<rect x="{x2}" y="{y}" width="{w2:.1f}" height="{bar_h - 2}" fill="{color}"/>',
                f'<text x="{x2 + w2 + 4:.1f}" y="{y + bar_h - 4}">{s["p99_ms"]:.1f}</text>',
            ]
    ly = top + group_h * len(names) + 20
    for ri, r in enumerate(runs):
        y = ly + ri * 18
        out += [
            f'<rect x="{left}" y="{y - 10}" width="12" height="12" fill="{COLORS[ri % len(COLORS)]}"/>',
            f'<text x="{left + 18}" y="{y}">{escape(label(r))} profiles, '
            f"{r['concurrency']} connections, {r['date'][:10]}, commit {r['git_commit']}</text>",
        ]
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write(prefix, r):
    with open(prefix + ".json", "w") as f:
        json.dump(r, f, indent=1)
        f.write("\n")
    with open(prefix + ".md", "w") as f:
        f.write(markdown(r))
    with open(prefix + ".svg", "w") as f:
        f.write(svg([r], f"Coffer: {label(r)} profiles ({r['date'][:10]})"))


def compare_table(runs):
    # Runs of one backend and size (before/after) are told apart by their commit.
    labels = [label(r) for r in runs]
    names_of = [
        f"{l} ({r['git_commit'].removeprefix('binary ')})" if labels.count(l) > 1 else l
        for l, r in zip(labels, runs)
    ]
    head = "| scenario | " + " | ".join(
        f"{n}: req/s | × /healthz | p50 ms | p99 ms" for n in names_of
    ) + " |"
    sep = "|---|" + "---:|---:|---:|---:|" * len(runs)
    rows = [head, sep]
    names = [n for n in ORDER if any(by_name(r, n) for r in runs)]
    for n in names:
        cells = []
        for r in runs:
            s = by_name(r, n)
            if s:
                cells.append(
                    f"{fmt_rps(s['rps'])} | {s.get('ratio_to_healthz', 0):.2f} | "
                    f"{s['p50_ms']:.2f} | {s['p99_ms']:.2f}"
                )
            else:
                cells.append("– | – | – | –")
        rows.append(f"| {SCENARIOS.get(n, (n, ''))[0]} | " + " | ".join(cells) + " |")
    rows.append(
        "| start-up (median) | "
        + " | ".join(f"{r['startup_ms_median']:.0f} ms | | |" for r in runs)
        + " |"
    )
    rows.append(
        "| peak RSS | " + " | ".join(f"{r['peak_rss_mb']:.1f} MB | | |" for r in runs) + " |"
    )
    return "\n".join(rows) + "\n"


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--run", required=True)
    b.add_argument("--out", required=True)
    b.add_argument("--check", action="store_true", help="fail on skipped scenarios, errors or empty scenarios")
    rd = sub.add_parser("render")
    rd.add_argument("results", nargs="+")
    c = sub.add_parser("compare")
    c.add_argument("--out", required=True)
    c.add_argument("results", nargs="+")
    a = ap.parse_args()

    if a.cmd == "build":
        r = build(a.run, a.check)
        write(a.out, r)
        print(markdown(r))
        if a.check:
            bad = [
                s["name"]
                for s in r["results"]
                if "skipped" in s or s["requests"] == 0 or s["error_count"] > 0
            ]
            if bad:
                print(f"FAILED: scenarios skipped, with errors or without requests: {', '.join(bad)}")
                sys.exit(1)
            print(f"bench smoke ({r['backend']}): {len(r['results'])} scenarios answered, 0 failed")
    elif a.cmd == "render":
        for path in a.results:
            r = load(path)
            r["targets"] = targets(r)
            write(path[: -len(".json")], r)
    else:
        runs = [load(p) for p in a.results]
        with open(a.out + ".md", "w") as f:
            f.write(compare_table(runs))
        with open(a.out + ".svg", "w") as f:
            f.write(svg(runs, "Coffer benchmark: throughput and p99 per scenario"))
        print(compare_table(runs))


if __name__ == "__main__":
    main()
