"""Run the workspace's tests side by side: `scripts/test.sh`'s runner.

`cargo test` runs its test binaries one after another, and most of their time is spent waiting on
other processes (the dev MongoDB-wire server, Spark's JVM, Chromium, the pipeline's binaries), so on a
2-core machine one binary at a time leaves the cores idle. This builds every test binary once
(`cargo test --no-run`), then runs them, the doctests and any extra job (the Airflow tests) as a pool of
`--jobs` workers, longest first (the durations of the last run, kept in the cache), each from its
package's folder as `cargo test` runs it. A fresh cache orders them by `--default-durations` (a file
the repository keeps, scripts/test-durations.json), so that the long jobs start first on a new machine
too. Each job's output is printed whole when it ends; the run fails when any job fails, and the summary
names them.

A long job can be cut so that the pool packs the two cores better:
- `--split "JOB=FILTER"` runs a test binary's tests matching FILTER (a module path such as `parity::`)
  as a job of their own, and the rest of the binary with `--skip FILTER`; several filters may cut one
  binary. Not when test arguments are given (they choose the tests themselves).

usage: parallel_tests.py [--jobs N] [--durations FILE] [--job NAME=COMMAND]... [--split JOB=FILTER]...
                         [CARGO ARGS] [-- TEST ARGS]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

# An unknown job is scheduled as if it took this long: early, since it may be long.
UNKNOWN_SECONDS = 120.0


@dataclass
class Job:
    name: str
    command: list[str]
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    # The test binary's own arguments (a filter, `--skip`), before any given on the command line.
    args: list[str] = field(default_factory=list)


def cut(jobs: list[Job], splits: list[str]) -> list[Job]:
    """Cut each test binary named in `splits` (`JOB=FILTER`) into a job per filter and one for the rest."""
    filters: dict[str, list[str]] = {}
    for entry in splits:
        name, _, test_filter = entry.partition("=")
        filters.setdefault(name, []).append(test_filter)
    # A binary not built (`scripts/test.sh -p other-crate`) is not cut.
    cut: list[Job] = []
    for job in jobs:
        chosen = filters.get(job.name)
        if not chosen:
            cut.append(job)
            continue
        for test_filter in chosen:
            cut.append(Job(f"{job.name} {test_filter}", job.command, job.cwd, job.env, [test_filter]))
        rest = [arg for test_filter in chosen for arg in ("--skip", test_filter)]
        cut.append(Job(f"{job.name} (the rest)", job.command, job.cwd, job.env, rest))
    return cut


def build(cargo_args: list[str]) -> list[Job]:
    """Build every test binary; a job per executable, run from its package's folder."""
    command = ["cargo", "test", "--no-run", "--message-format=json-render-diagnostics", *cargo_args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    jobs: list[Job] = []
    assert process.stdout is not None
    for line in process.stdout:
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            continue
        if message.get("reason") != "compiler-artifact" or not message.get("executable"):
            continue
        if not message.get("profile", {}).get("test"):
            continue
        target = message["target"]
        manifest = Path(message["manifest_path"])
        package = manifest.parent.name if manifest.parent.name != "." else "workspace"
        kind = target["kind"][0]
        name = f"{package} {kind} {target['name']}"
        env = {"CARGO_MANIFEST_DIR": str(manifest.parent), "CARGO_CRATE_NAME": target["name"].replace("-", "_")}
        jobs.append(Job(name, [message["executable"]], manifest.parent, env))
    if process.wait() != 0:
        sys.exit(process.returncode)
    return jobs


def run(job: Job, test_args: list[str], lock: threading.Lock, results: dict[str, tuple[bool, float, float]]) -> None:
    started = time.monotonic()
    with tempfile.TemporaryFile(mode="w+") as out:
        process = subprocess.Popen(
            [*job.command, *job.args, *test_args] if not job.name.startswith("job ") else job.command,
            cwd=job.cwd,
            env={**os.environ, **job.env},
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
        # wait4: the job's CPU time, with that of the processes it waited for (its dev servers, Spark's
        # JVM, Chromium, the pipeline's binaries): what it cost the machine, beside how long it took.
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    elapsed = time.monotonic() - started
    cpu = usage.ru_utime + usage.ru_stime
    passed = process.returncode == 0
    with lock:
        results[job.name] = (passed, elapsed, cpu)
        verdict = "ok" if passed else f"FAILED (exit {process.returncode})"
        print(f"\n--- {job.name}: {verdict} in {elapsed:.1f} s ({cpu:.1f} s of CPU)", flush=True)
        print(text, end="" if text.endswith("\n") else "\n", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=3, help="jobs at once (default 3)")
    parser.add_argument("--durations", type=Path, help="where the last run's durations are kept")
    parser.add_argument(
        "--default-durations",
        type=Path,
        help="durations to order by when --durations has none (a committed file, for a fresh cache)",
    )
    parser.add_argument(
        "--job", action="append", default=[], metavar="NAME=COMMAND", help="another job (run from the root)"
    )
    parser.add_argument(
        "--split", action="append", default=[], metavar="JOB=FILTER", help="run a test binary's FILTER tests apart"
    )
    args, rest = parser.parse_known_args()
    if "--" in rest:
        split = rest.index("--")
        cargo_args, test_args = rest[:split], rest[split + 1 :]
    else:
        cargo_args, test_args = rest, []

    started = time.monotonic()
    jobs = build(cargo_args)
    print(f"==> {len(jobs)} test binaries built in {time.monotonic() - started:.0f} s", flush=True)
    if not test_args:
        jobs = cut(jobs, args.split)
    for extra in args.job:
        name, _, command = extra.partition("=")
        jobs.append(Job(f"job {name}", ["bash", "-c", command], Path.cwd()))

    known: dict[str, float] = {}
    for source in (args.default_durations, args.durations):
        if source and source.is_file():
            known.update(json.loads(source.read_text()))
    jobs.sort(key=lambda j: known.get(j.name, UNKNOWN_SECONDS), reverse=True)

    lock = threading.Lock()
    results: dict[str, tuple[bool, float, float]] = {}
    running = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for done in [pool.submit(run, job, test_args, lock, results) for job in jobs]:
            done.result()
    wall = time.monotonic() - running

    if args.durations:
        args.durations.parent.mkdir(parents=True, exist_ok=True)
        known.update({name: round(seconds, 1) for name, (_, seconds, _) in results.items()})
        args.durations.write_text(json.dumps(known, indent=1, sort_keys=True))
    longest = sorted(results.items(), key=lambda r: r[1][1], reverse=True)[:8]
    cpu = sum(c for _, _, c in results.values())
    print(f"\n==> {len(results)} jobs in {wall:.0f} s with {args.jobs} at once, {cpu:.0f} s of CPU; the longest:")
    for name, (_, seconds, cpu) in longest:
        print(f"    {seconds:7.1f} s  {cpu:7.1f} s of CPU  {name}")
    failed = [name for name, (passed, _, _) in results.items() if not passed]
    if failed:
        print(f"==> FAILED: {', '.join(shlex.quote(f) for f in failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
