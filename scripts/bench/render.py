"""Rendering results into BENCHMARKS.md's tables."""

import json
import sys

from common import CLUSTER_STEP, HISTORY, SCALED, SIZES, median, roundtrip_step


def demo_timings(work):
    """The `scripts/demo.sh --timings` files bench.sh wrote (one per run)."""
    return [json.loads(p.read_text()) for p in sorted(work.glob("demo-*.json"))]


def render_hourly(work):
    """The figures of issues #23 and #42 from one `--steps hourly` run, each beside its target."""
    results = {}
    for size in ("10k", "1M"):
        path = work / f"results-{size}.json"
        if path.exists():
            results[size] = json.loads(path.read_text())
    if "1M" not in results:
        sys.exit(f"bench: no 1M hourly results in {work}")
    big, small = results["1M"], results.get("10k")
    m = big["machine"]

    def sec(r, step):
        e = r["steps"].get(step) if r else None
        return median(e["seconds"]) if e else None

    def fmt(value):
        return f"{value:.2f} s" if value is not None else "–"

    def met(ok):
        return "met" if ok else "**missed**"

    checks = big["checks"]
    hour, hour10 = sec(big, "hour: convert + upload + build"), sec(small, "hour: convert + upload + build")
    build = sec(big, "hour: create-collections")
    first = sec(big, "create-collections")
    rss = checks.get("dev server peak RSS during the first build (MiB)")
    erase = sec(big, "erase one member")
    failed = big.get("failed", {})
    lines = [
        (
            f"Measured on {m['date']} at commit {m['commit']}: {m['cpu']}, {m['cores']} cores, "
            f"{m['memory_gib']} GiB, Linux {m['kernel']}, {m['rustc']}; release binaries on the dev server "
            f"(`scripts/bench.sh --sizes 10k,1M --steps hourly`). Medians of n runs."
        ),
        "",
        "| figure | target | measured | |",
        "|---|---|---|---|",
    ]
    n = len(big["steps"]["hour: convert + upload + build"]["seconds"])
    ratio = hour / hour10 if hour and hour10 else None
    lines.append(
        f"| the hour at 1M, end to end (n={n}) | ≤ 2 s, ≤ 1.5× the hour at 10k | {fmt(hour)}, "
        f"{ratio:.2f}× the hour at 10k ({fmt(hour10)}) | {met(hour <= 2 and ratio <= 1.5)} |"
    )

    def read(check):
        r = checks.get(check)
        if not r:
            return "not recorded"
        return f"{r['days']} days, {r['plays']:,} plays and {r['partials']:,} partials"

    parts = ", ".join(f"{s} {fmt(sec(big, 'hour: ' + s))}" for s in ("convert", "upload", "create-collections"))
    lines.append(
        f"| the hour's build: its share, what it read | report | {parts}: the build is {build / hour:.0%}; "
        f"read: {read('hour: days, plays and partials its build read')} (of the entities and days the hour's "
        "ledger entries name) | |"
    )
    peak = f"peak RSS {rss:,} MiB" if rss else "peak RSS not recorded"
    lines.append(
        f"| the first build at 1M (`create-collections all --rebuild`) | ≤ 120 s, dev server peak RSS ≤ 2 GiB | "
        f"{fmt(first)}, {peak} | {met(first <= 120 and (rss or 0) <= 2048)} |"
    )
    export = sec(big, "gcs-export")
    export_rss = checks.get("dev server peak RSS during the export (MiB)")
    if export is not None:
        lines.append(
            f"| gcs-export of the 1M group (every collection, one Parquet snapshot) | ≤ 60 s | {fmt(export)}"
            + (f", dev server peak RSS {export_rss:,} MiB" if export_rss else "")
            + f" | {met(export <= 60)} |"
        )
    steps = ("data-fetcher import", "convert", "upload", "create-collections")
    days_after = checks.get("import: days with plays in the group after it")
    lines.append(
        "| an import of 150k history plays into the 1M group | report | "
        + ", ".join(f"{s} {fmt(sec(big, 'import: ' + s))}" for s in steps)
        + f"; its build read: {read('import: days, plays and partials its build read')}"
        + (f" (of {days_after} days with plays)" if days_after else "")
        + " | |"
    )
    after = sec(big, "hour after the import: convert + upload + build")
    after_parts = ", ".join(
        f"{s} {fmt(sec(big, 'hour after the import: ' + s))}" for s in ("convert", "upload", "create-collections")
    )
    lines.append(f"| the next hour | report | {fmt(after)} ({after_parts}) | |")
    if erase is not None:
        lines.append(
            f"| an erase at 1M (`members erase`) | ≤ 60 s | {fmt(erase)}, "
            f"{erase / first:.2f}× the first build | {met(erase <= 60)} |"
        )
    else:
        lines.append(
            "| an erase at 1M (`members erase`) | ≤ 60 s | did not finish: "
            f"{failed.get('erase one member', 'not run')} | **missed** |"
        )
    server = {
        check.removeprefix("dev server peak RSS during ").removesuffix(" (MiB)"): value
        for check, value in checks.items()
        if check.startswith("dev server peak RSS during ") and value
    }
    if server:
        phase, top = max(server.items(), key=lambda kv: kv[1])
        lines.append(
            f"| the dev server's peak RSS at 1M, over every phase measured | ≤ 2 GiB | {top:,} MiB, during {phase} "
            "(" + ", ".join(f"{p} {v:,}" for p, v in server.items()) + ") | "
            f"{met(top <= 2048)} |"
        )
    processes = [(step, max(e["rss_mib"])) for step, e in big["steps"].items() if e.get("rss_mib")]
    if processes:
        step, top = max(processes, key=lambda sv: sv[1])
        lines.append(
            f"| each Earshot process's peak RSS at 1M | ≤ 1 GiB | {top:,.0f} MiB at most, in {step} | "
            f"{met(top <= 1024)} |"
        )
    demos = demo_timings(work)
    if demos:
        after_build = median([d["after_build"] for d in demos])
        lines.append(
            f"| the demo after the build (`scripts/demo.sh --timings`, n={len(demos)}) | ≤ 30 s | "
            f"{after_build:.2f} s | {met(after_build <= 30)} |"
        )
        idle = {k: median([d["nothing_to_do"][k] for d in demos]) for k in demos[0]["nothing_to_do"]}
        lines.append(
            "| a step's fixed cost in the demo (debug), run once more with nothing new | report | "
            + ", ".join(f"{k} {v:.2f} s" for k, v in idle.items())
            + " | |"
        )
    for size, r in results.items():
        idle = [(s, sec(r, "nothing new: " + s)) for s in ("convert", "upload", "create-collections")]
        if any(v for _, v in idle):
            lines.append(
                f"| a step's fixed cost at {size} (release), run once more with nothing new | report | "
                + ", ".join(f"{s} {fmt(v)}" for s, v in idle)
                + " | |"
            )
    if demos:
        lines += ["", "The demo's parts (median seconds of the runs):", ""]
        for part in demos[0]["parts"]:
            lines.append(f"- {part}: {median([d['parts'].get(part, 0) for d in demos]):.2f} s")
    lines += ["", "Checks made during the run:", ""]
    for size, r in results.items():
        for check, value in r["checks"].items():
            lines.append(f"- {size}: {check}: {value}")
        for step, message in r.get("failed", {}).items():
            lines.append(f"- {size}: **{step} failed**: {message}")
    return "\n".join(lines) + "\n"


def render_history(work):
    """The streaming-history import rows, if measured."""
    lines = []
    for name in HISTORY:
        path = work / f"results-{name}.json"
        if not path.exists():
            continue
        r = json.loads(path.read_text())
        s, steps = r["set"], r["steps"]
        total = steps["import + convert"]
        wall = median(total["seconds"])
        rss = max(median(steps["import"]["rss_mib"]), median(steps["convert streaming-history"]["rss_mib"]))
        lines += [
            "",
            "### Streaming-history import (one member, ten years)",
            "",
            (
                f"Set: {s['plays']:,} plays asked for, {s['entries']:,} entries in {s['pages']} files "
                f"({s['bytes'] / 1e6:,.0f} MB of JSON), measured {r['machine']['date']} at commit {r['machine']['commit']}."
            ),
            "",
            "| step | n | median wall | peak RSS |",
            "|---|---:|---:|---:|",
        ]
        for step in ["import", "convert streaming-history", "import + convert"]:
            e = steps[step]
            rss_cell = f"{median(e['rss_mib']):,.0f} MiB" if step != "import + convert" else "–"
            lines.append(f"| {step} | {len(e['seconds'])} | {median(e['seconds']):.2f} s | {rss_cell} |")
        plays = r["checks"]["plays imported (distinct)"]
        lines += [
            "",
            (
                f"- {plays:,} plays through import up to records ready for upload: **{plays / wall:,.0f} plays/s** "
                f"(target ≥ 50,000), peak RSS {rss:,.0f} MiB with files of "
                f"{s['bytes'] / s['pages'] / 1e6:,.1f} MB on average (target: bounded by one file)."
            ),
        ]
        lines += [f"- {check}: {value:,}" for check, value in r["checks"].items()]
    return lines


def render(work):
    results = []
    for size in [*SIZES, *SCALED]:
        path = work / f"results-{size}.json"
        if path.exists():
            results.append(json.loads(path.read_text()))
    if not results:
        sys.exit(f"bench: no results in {work}")
    lines = []
    m = results[0]["machine"]
    lines += [
        (
            f"Measured on {m['date']} at commit {m['commit']}: {m['cpu']}, {m['cores']} cores, "
            f"{m['memory_gib']} GiB, Linux {m['kernel']}, {m['rustc']}, Python {m['python']}. "
            "Each figure is the median of the runs shown (n); RSS is peak resident memory."
        ),
        "",
        "### Sets",
        "",
        "| set | members | days | plays | raw pages | raw JSON | generated in |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        s = r["set"]
        if "note" in s:
            lines.append(f"| {r['size']} | {s['members']} | {s['days']} | {s['plays']:,} | {s['note']} | | |")
            continue
        lines.append(
            f"| {r['size']} | {s['members']} | {s['days']} | {s['plays']:,} | {s['pages']:,} | "
            f"{s['bytes'] / 1e6:,.0f} MB | {s['generate_seconds']} s |"
        )

    def cell(r, step):
        e = r["steps"].get(step)
        if not e:
            return None
        return median(e["seconds"]), median(e["rss_mib"]), len(e["seconds"]), median(e["cpu_seconds"])

    def comparison(title, base, rivals, unit):
        out = ["", f"### {title}", ""]
        out.append(f"| set | step | n | median wall | {unit} | wall vs {base} | CPU (user+sys) | peak RSS |")
        out.append("|---|---|---:|---:|---:|---:|---:|---:|")
        if not any(cell(r, base) for r in results):
            return []
        for r in results:
            ours = cell(r, base)
            if not ours:
                continue
            plays, mb = r["set"]["plays"], r["set"]["bytes"] / 1e6
            for step in [base, *rivals]:
                c = cell(r, step)
                if not c:
                    continue
                rate = f"{mb / c[0]:,.0f} MB/s" if unit == "raw JSON" else f"{plays / c[0]:,.0f} plays/s"
                ratio = "1" if step == base else f"{c[0] / ours[0]:.2f}×"
                out.append(
                    f"| {r['size']} | {step} | {c[2]} | {c[0]:.2f} s | {rate} | {ratio} | {c[3]:.2f} s | {c[1]:,.0f} MiB |"
                )
        return out

    cores = results[0]["machine"]["cores"]
    lines += comparison(
        "json-converter",
        "convert",
        ["convert (Python)", roundtrip_step(1), *([roundtrip_step(cores)] if cores > 1 else [])],
        "raw JSON",
    )
    lines += comparison("data-upload", "upload", ["upload recently played (pymongo)"], "plays")
    hourly = [r for r in results if cell(r, "hour: convert + upload + build")]
    if hourly:
        lines += ["", "### One more hour on top of a history (hourly scenario)", ""]
        lines.append("| history | n | convert | upload | create-collections | the hour, end to end |")
        lines.append("|---|---:|---:|---:|---:|---:|")
        for r in hourly:
            parts = [cell(r, f"hour: {s}") for s in ("convert", "upload", "create-collections")]
            total = cell(r, "hour: convert + upload + build")
            lines.append(
                f"| {r['size']} ({r['set']['plays']:,} plays) | {total[2]} | "
                + " | ".join(f"{c[0]:.2f} s" for c in parts)
                + f" | {total[0]:.2f} s |"
            )
    late = [r for r in results if cell(r, "erase one member")]
    if late:
        lines += ["", "### Late data and erases on top of a history", ""]
        lines.append(
            "| history | first build (`--rebuild`) | the hour | import of 150k history plays: its build |"
            " the hour after the import | erase one member |"
        )
        lines.append("|---|---:|---:|---:|---:|---:|")
        for r in late:
            row = [
                cell(r, "create-collections"),
                cell(r, "hour: convert + upload + build"),
                cell(r, "import: create-collections"),
                cell(r, "hour after the import: convert + upload + build"),
                cell(r, "erase one member"),
            ]
            lines.append(
                f"| {r['size']} ({r['set']['plays']:,} plays) | "
                + " | ".join(f"{c[0]:.2f} s" if c else "–" for c in row)
                + " |"
            )
    lines += comparison(
        "analytics",
        "analytics polars",
        [
            "analytics DuckDB (SQL only)",
            "analytics Spark job (SQL only)",
            CLUSTER_STEP,
            "analytics --engine spark (with ALS)",
        ],
        "plays",
    )
    steps = [
        "convert",
        "convert top-tracks",
        "convert top-artists",
        "upload",
        "upload again (no changes)",
        "create-collections",
        "create-collections again",
        "gcs-export",
        "analytics polars",
        "analytics --engine spark (with ALS)",
    ]
    lines += ["", "### How each step grows with plays", ""]
    lines.append("| step | " + " | ".join(r["size"] for r in results) + " | peak RSS at " + results[-1]["size"] + " |")
    lines.append("|---|" + "---:|" * (len(results) + 1))
    for step in steps:
        cells = [cell(r, step) for r in results]
        if not any(cells):
            continue
        text = [
            f"{c[0]:.2f} s" if c else ("failed" if step in r.get("failed", {}) else "–")
            for c, r in zip(cells, results, strict=True)
        ]
        text.append(f"{cells[-1][1]:,.0f} MiB" if cells[-1] else "–")
        lines.append(f"| {step} | " + " | ".join(text) + " |")
    earlier = [
        f"{r['size']} {step}: {when}" for r in results for step, when in sorted(r.get("measured_at", {}).items())
    ]
    if earlier:
        lines += ["", "Rows kept from an earlier run (`--steps convert` re-measures the converter alone):", ""]
        lines += [f"- {row}" for row in earlier]
    lines += render_history(work)
    lines += ["", "### Checks made during the run", ""]
    for r in results:
        for check, value in r["checks"].items():
            lines.append(f"- {r['size']}: {check}: {value}")
        for step, message in r.get("failed", {}).items():
            lines.append(f"- {r['size']}: **{step} failed**: {message} (the steps after it did not run)")
    return "\n".join(lines) + "\n"
