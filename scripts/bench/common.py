"""Shared by every scenario: sizes and step names, the step runner and its measurements, the machine, the dev server."""

import functools
import json
import os
import platform
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


SIZES = {
    # name: (members, days, mean plays per member per day)
    "10k": (10, 20, 50),
    "1M": (100, 200, 50),
    "10M": (400, 500, 50),
    # Pages as apps outside development mode get them: every track and album lists 185 markets.
    "1M-markets": (100, 200, 50),
}


MARKET_HEAVY = {"1M-markets"}


# What --steps runs: every step, or the converter rows alone (merged into the size's earlier results).
STEPS = ("all", "convert", "hourly", "export")


# Analytics only, on copies of a smaller set's snapshot: name -> (base set, copies).
SCALED = {"10kx100": ("10k", 100), "10kx1000": ("10k", 1000), "10kx10000": ("10k", 10000)}


# Spark local[2] takes minutes at 10M plays; past that it is the Dataproc engine, not measured here.
SPARK_LIMIT = {"10k", "1M", "10M", "10kx100", "10kx1000"}


# The Spark job also on a standalone cluster (a master and two one-core workers on loopback, each its own
# JVM, as crates/testkit/src/spark_cluster.rs starts for the cluster test).
SPARK_CLUSTER = {"10kx1000", "10kx10000"}


CLUSTER_STEP = "analytics Spark job on a standalone cluster (SQL only)"


# A streaming-history import of one member: name -> plays over ten years (about ten files).
HISTORY = {"history150k": 150_000}


BASELINE_LIMIT = {"10k", "1M", "1M-markets"}  # the Python baselines take hours at 10M: run only the Rust side there


def env(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"bench: ${name} is not set (run scripts/bench.sh)")
    return value


class StepFailed(Exception):
    """A measured command failed; the message holds its stderr's tail."""


def measure(command):
    """Run `command`; return (seconds, peak RSS in MiB, CPU seconds, stdout). Raises StepFailed."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as timing:
        full = ["/usr/bin/time", "-f", "%M %U %S", "-o", timing.name, *command]
        started = time.perf_counter()
        done = subprocess.run(
            full,
            check=False,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise StepFailed(f"`{shlex.join(command)}` failed ({done.returncode}):\n{done.stderr[-3000:]}")
        rss_kib, user, system = timing.read().strip().splitlines()[-1].split()
    return seconds, int(rss_kib) / 1024, float(user) + float(system), done.stdout


def roundtrip_step(threads):
    """The name of the serde_json Value round trip's row on `threads` threads."""
    return f"convert (serde_json Value round trip, {threads} thread{'s' if threads > 1 else ''})"


def merge_earlier(results, path):
    """Keep the rows of an earlier run of this size that this run did not measure, each marked with the
    commit and date it was measured at."""
    if not path.exists():
        return results
    earlier = json.loads(path.read_text())
    measured_then = earlier.get("measured_at", {})
    then = f"{earlier['machine']['commit']} on {earlier['machine']['date']}"
    for step, entry in earlier["steps"].items():
        if step not in results["steps"]:
            results["steps"][step] = entry
            results.setdefault("measured_at", {})[step] = measured_then.get(step, then)
    for check, value in earlier.get("checks", {}).items():
        results["checks"].setdefault(check, value)
    for step, message in earlier.get("failed", {}).items():
        results.setdefault("failed", {}).setdefault(step, message)
    return results


class Run:
    """The measurements of one size."""

    def __init__(self, size, work, repeats):
        self.size = size
        self.dir = work / size
        self.repeats = repeats
        self.results = {"size": size, "steps": {}, "checks": {}}

    def record(self, step, seconds, rss, cpu):
        entry = self.results["steps"].setdefault(step, {"seconds": [], "rss_mib": [], "cpu_seconds": []})
        entry["seconds"].append(round(seconds, 3))
        entry["rss_mib"].append(round(rss, 1))
        entry["cpu_seconds"].append(round(cpu, 2))
        print(f"  {self.size:>4} {step:<36} {seconds:9.2f} s {cpu:9.2f} s CPU {rss:9.1f} MiB", flush=True)

    def timed(self, step, command):
        try:
            seconds, rss, cpu, out = measure(command)
        except StepFailed as error:
            # What was measured before a failed (or stopped) step is kept; the run still stops.
            self.failed(step, error)
            self.save(self.dir.parent / f"results-{self.size}.partial.json")
            raise
        self.record(step, seconds, rss, cpu)
        return out

    def save(self, path):
        path.write_text(json.dumps({**self.results, "machine": machine(), "repeats": self.repeats}, indent=1))

    def failed(self, step, error):
        """Record that `step` failed; the steps that need its output are skipped."""
        message = str(error).strip().splitlines()[-1]
        self.results.setdefault("failed", {})[step] = message
        print(f"  {self.size:>4} {step:<36} FAILED: {message}", flush=True)


def drop_database(uri, database):
    from pymongo import MongoClient

    MongoClient(uri).drop_database(database)


def count_rows(parquet_glob):
    import duckdb

    return duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{parquet_glob}')").fetchone()[0]


def jsonl_records(folder):
    records = {}
    for path in sorted(Path(folder).rglob("*.jsonl")):
        with open(path, encoding="utf-8") as f:
            for line in f:
                record = json.loads(line)
                records[record["_id"]] = record
    return records


def peak_rss_mib(pid):
    """Peak resident memory of a running process (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)
    return None


def reset_peak_rss(pid):
    """Start a process's peak resident memory (VmHWM) afresh, so that it measures what follows."""
    if pid is not None:
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@functools.cache
def machine():
    """The machine and the commit measured (read once, when the run starts: the commit the binaries
    were built from, whatever is committed while it runs; `+changes` when the tree had uncommitted
    changes)."""
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "?")
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem = next(line.split()[1] for line in meminfo if line.startswith("MemTotal"))
    rustc = subprocess.run(["rustc", "--version"], check=True, capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], check=True, capture_output=True, text=True
    )
    changed = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(int(mem) / 1024 / 1024),
        "kernel": platform.release(),
        "rustc": rustc,
        "python": platform.python_version(),
        "commit": commit.stdout.strip() + ("+changes" if changed else ""),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
    }


def start_devdb(work):
    data = work / "devdb"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    with open(work / "devdb.log", "w") as log:
        server = subprocess.Popen(
            [env("EARSHOT_DEVDB_BIN"), "--dbpath", str(data)], stdout=subprocess.PIPE, stderr=log, text=True
        )
    uri = server.stdout.readline().strip()
    if not uri.startswith("mongodb://"):
        server.kill()
        sys.exit(f"bench: the dev server did not start (see {work / 'devdb.log'})")
    return server, uri


def median(values):
    return statistics.median(values)
