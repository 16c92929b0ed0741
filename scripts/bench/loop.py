"""The loop: how long a new user and a developer wait (`scripts/bench.sh --steps loop`).

Measures, on this machine, from a clean clone of the current commit:
- cold CI: `bash .ci/run` with every cache empty (a fresh $EARSHOT_CACHE: the dev server's build, the
  venvs, the test build), and, with `--purge-apt`, the Debian packages the tests install removed first;
- warm CI: `bash .ci/run` again in the same clone with the caches kept, after a one-line change to a
  dashboard page;
- the demo after its build (`scripts/demo.sh --timings`, three runs) and `data-fetcher fetch` with
  nothing new (the demo's own measurement: five runs after each demo, their median; the median of
  the three demos' medians);
- the cold release build (`scripts/release.sh` into an empty target folder).

Writes the figures to `--out` (JSON) and, with `--report`, the table between BENCHMARKS.md's
`<!-- loop:begin -->` and `<!-- loop:end -->` markers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGETS = {
    "cold_ci": 20 * 60,
    "warm_ci": 8 * 60,
    "demo": 30,
    "fetch_nothing_new": 0.015,
    "cold_release": 20 * 60,
}
APT_PACKAGES = ["chromium", "chromium-driver", "fonts-noto-color-emoji", "cmake"]


def log(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def timed(command: list[str], cwd: Path, env: dict[str, str], out: Path) -> float:
    started = time.monotonic()
    with out.open("w") as log_file:
        completed = subprocess.run(command, cwd=cwd, env=env, stdout=log_file, stderr=subprocess.STDOUT, check=False)
    seconds = time.monotonic() - started
    if completed.returncode != 0:
        sys.exit(f"{' '.join(command)} failed (exit {completed.returncode}); its output: {out}")
    return seconds


def machine() -> dict[str, str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory = next(
        line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    rustc = subprocess.run(["rustc", "-V"], capture_output=True, text=True, check=False).stdout.strip()
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory_gib": f"{int(memory) / 1024 / 1024:.0f}",
        "kernel": platform.release(),
        "rustc": rustc,
    }


def save(args: argparse.Namespace, results: dict) -> None:
    """Keep what is measured so far (a later step that fails loses nothing before it)."""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))


def measure(args: argparse.Namespace) -> dict:
    work = Path(tempfile.mkdtemp(prefix="earshot-loop-", dir=args.work))
    clone = work / "clone"
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    # CI lays `shared/` (Spotify's material, which the contract tests read) beside the clone.
    shared = ROOT.parent / "shared"
    if shared.is_dir():
        (work / "shared").symlink_to(shared)
    env = {**os.environ, "CI": "true", "EARSHOT_CACHE": str(work / "cache")}
    env.pop("CARGO_TARGET_DIR", None)
    results: dict = {
        "commit": commit.stdout.strip(),
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "apt_purged": args.purge_apt,
    }
    if args.purge_apt:
        log(f"Removing the Debian packages the tests install: {', '.join(APT_PACKAGES)}")
        subprocess.run(["apt-get", "remove", "-y", "-qq", *APT_PACKAGES], check=True, capture_output=True)
    log("Cold CI: bash .ci/run with empty caches")
    results["cold_ci"] = timed(["bash", ".ci/run"], clone, env, work / "cold-ci.log")
    save(args, results)
    log("Warm CI: a one-line change, then bash .ci/run with the caches kept")
    page = clone / "crates/dashboard/src/pages/me.rs"
    page.write_text(page.read_text() + "\n// A one-line change (scripts/bench/loop.py).\n")
    results["warm_ci"] = timed(["bash", ".ci/run"], clone, env, work / "warm-ci.log")
    save(args, results)
    subprocess.run(["git", "checkout", "--quiet", "--", "."], cwd=clone, check=True)
    demos, fetches = [], []
    for run in range(1, 4):
        log(f"The demo, run {run} of 3")
        timings = work / f"demo-{run}.json"
        demo_env = {**env, "EARSHOT_DEMO_DIR": str(work / "demo")}
        timed(["bash", "scripts/demo.sh", "--timings", str(timings)], clone, demo_env, work / f"demo-{run}.log")
        figures = json.loads(timings.read_text())
        demos.append(figures["after_build"])
        fetches.append(figures["nothing_to_do"]["data-fetcher fetch"])
    results["demo"] = statistics.median(demos)
    results["demo_runs"] = demos
    results["fetch_nothing_new"] = statistics.median(fetches)
    results["fetch_runs"] = fetches
    save(args, results)
    if args.skip_release:
        return results
    log("Cold release build: scripts/release.sh into an empty target folder")
    release_env = {**env, "CARGO_TARGET_DIR": str(work / "release-target")}
    results["cold_release"] = timed(["bash", "scripts/release.sh"], clone, release_env, work / "release.log")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return results


def minutes(seconds: float) -> str:
    total = round(seconds)
    return f"{total // 60} min {total % 60:02d} s"


def render(results: dict) -> str:
    m = results["machine"]
    rows = [
        ("cold `bash .ci/run` (clean clone, empty caches)", "cold_ci", minutes),
        ("warm `bash .ci/run` (caches kept, a one-line change)", "warm_ci", minutes),
        ("`scripts/demo.sh` after its build (median of 3)", "demo", lambda s: f"{s:.1f} s"),
        (
            "`data-fetcher fetch` with nothing new (demo, debug build, median of 3×5)",
            "fetch_nothing_new",
            lambda s: f"{s * 1000:.0f} ms",
        ),
        ("cold release build of the nine shipped binaries", "cold_release", minutes),
    ]
    lines = [
        f"Measured on {results['date']} at commit {results['commit']}: {m['cpu']}, {m['cores']} cores, "
        f"{m['memory_gib']} GiB, Linux {m['kernel']}, {m['rustc']}; `scripts/bench.sh --steps loop` "
        "(scripts/bench/loop.py: a clean clone, a fresh `EARSHOT_CACHE`"
        + (", the Debian packages the tests install removed first" if results.get("apt_purged") else "")
        + "; the cargo registry kept).",
        "",
        "| the loop | target | today | |",
        "|---|---:|---:|---|",
    ]
    for label, key, fmt in rows:
        if key not in results:
            lines.append(f"| {label} | ≤ {fmt(TARGETS[key])} | not measured | |")
            continue
        value, target = results[key], TARGETS[key]
        verdict = "met" if value <= target else "**missed**"
        lines.append(f"| {label} | ≤ {fmt(target)} | {fmt(value)} | {verdict} |")
    return "\n".join(lines)


def report(path: Path, results: dict) -> None:
    text = path.read_text()
    begin, end = "<!-- loop:begin -->", "<!-- loop:end -->"
    block = f"{begin}\n{render(results)}\n{end}"
    if begin in text:
        before, rest = text.split(begin, 1)
        after = rest.split(end, 1)[1]
        text = before + block + after
    else:
        text = text.rstrip("\n") + "\n\n## The loop\n\n" + block + "\n"
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="the figures, as JSON")
    parser.add_argument("--work", type=Path, default=None, help="where the clone and caches go (default: /tmp)")
    parser.add_argument("--purge-apt", action="store_true", help="remove the tests' Debian packages first")
    parser.add_argument("--keep", action="store_true", help="keep the clone, caches and logs")
    parser.add_argument("--skip-release", action="store_true", help="do not measure the cold release build")
    parser.add_argument("--report", type=Path, help="render the figures into this BENCHMARKS.md")
    parser.add_argument("--render-only", action="store_true", help="render --out's figures, measure nothing")
    args = parser.parse_args()
    if args.render_only:
        results = json.loads(args.out.read_text())
    else:
        results = measure(args)
        save(args, results)
    if args.report:
        report(args.report, results)
    print(render(results))


if __name__ == "__main__":
    main()
