"""Earshot's benchmark suite (run by scripts/bench.sh, which builds and sets the environment).

    python scripts/bench/run.py --sizes 10k,1M [--repeats N] [--work DIR]
    python scripts/bench/run.py --report BENCHMARKS.md

For each size it writes a synthetic group with `earshot-fixtures --raw` (kept between runs), then runs
every pipeline step on it, each several times, side by side with its baseline in the same run:

- json-converter vs the Python converter (crates/json-converter/benches/original_converter.py) vs a
  serde_json parse into `Value` and write of the same pages, on one thread and on every core, no fsync
  (crates/json-converter/benches/serde_roundtrip.rs);
- data-upload vs pymongo upserts one at a time (scripts/bench/pymongo_upload.py), same server;
- create-collections, gcs-export;
- analytics on polars vs the Spark job in local[2] (SQL only, and the whole `--engine spark` run with
  ALS) vs DuckDB running the same SQL files (scripts/bench/duckdb_metrics.py), same Parquet snapshot.

Wall time comes from the harness's clock, peak memory (max RSS of the command and the children it
waited for) from GNU time. Runs of a step and its baseline alternate, so drift hits both. Results go
to WORK/results-<size>.json; `--report` renders every results file into BENCHMARKS.md between the
`<!-- bench:begin -->` and `<!-- bench:end -->` markers.
"""

import argparse
import contextlib
import datetime
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

from scaled import copy_scaled

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
# JVM, as crates/testkit/src/spark.rs starts for the cluster test).
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


# The per-day partials the collections that sum over plays are folded from: (collection, raw key field).
PARTIALS = {
    "Tracks_by_day": "track_id",
    "Albums_by_day": "album_id",
    "Artists_by_day": "artist_ids",
    "Images_by_day": "album_id",
    "members_by_day": "user_id",
}
# The sizes whose hourly scenario also measures late data: a history import into old days, then an erase.
LATE_DATA = {"1M"}


def build_reads(client, db, entry_ids):
    """What a build of the ledger entries `entry_ids` reads: the plays of the entities they name on the
    days they name (the partials rebuilt), and the partials of those entities (the fold). Counted by
    the harness after the run, not timed."""
    entries = list(client[db]["upload_ledger"].find({"_id": {"$in": list(entry_ids)}}))
    days = sorted({d for e in entries for d in e.get("keys", {}).get("day", [])})
    plays = partials = 0
    for name, key in PARTIALS.items():
        values = sorted({v for e in entries for v in e.get("keys", {}).get(key, [])})
        if not values or not days:
            continue
        for chunk in range(0, len(values), 5000):
            part = values[chunk : chunk + 5000]
            partials += client[db][name].count_documents({"e": {"$in": part}})
            for day_chunk in range(0, len(days), 31):
                ds = days[day_chunk : day_chunk + 31]
                plays += client[db]["rawdata_recentlyplayed"].count_documents(
                    {
                        "local_day": {"$gte": ds[0], "$lte": ds[-1]},
                        key: {"$in": part},
                    }
                )
    return {"days": len(days), "plays": plays, "partials": partials}


def hourly_scenario(run, storage, group, uri, db, repeats, label="hour", shift_days=800):
    """One more hour on top of the loaded and built history: five members, one new page each, through
    convert, upload and create-collections, as the hourly DAG runs them."""
    from pymongo import MongoClient

    client = MongoClient(uri)
    bins = Path(env("EARSHOT_RELEASE_BIN"))
    raw = storage / "raw" / "recently_played"
    # The set gains these pages (and, at 1M, a history and loses a member): the next run generates it
    # afresh, so that its hours are new again.
    (storage.parent / "set.json").unlink(missing_ok=True)
    members = sorted(p for p in raw.iterdir() if p.is_dir())[:5]
    newest = {m: max(m.glob("*.json")) for m in members}
    for attempt in range(repeats):
        shift = datetime.timedelta(days=shift_days + attempt)
        for folder, page_path in newest.items():
            page = json.loads(page_path.read_text())
            for item in page["items"]:
                at = datetime.datetime.fromisoformat(item["played_at"]) + shift
                item["played_at"] = at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
            stamp = datetime.datetime.strptime(page_path.stem, "%Y%m%dT%H%M%S.%fZ") + shift
            (folder / (stamp.strftime("%Y%m%dT%H%M%S.") + f"{stamp.microsecond // 1000:03d}Z.json")).write_text(
                json.dumps(page)
            )
        before = set(client[db]["upload_ledger"].distinct("_id"))
        started = time.perf_counter()
        run.timed(
            f"{label}: convert",
            [str(bins / "json-converter"), "recently-played", "--storage", str(storage), "--group-config", str(group)],
        )
        run.timed(
            f"{label}: upload",
            [
                str(bins / "data-upload"),
                "recently-played",
                "--storage",
                str(storage),
                "--mongodb-uri",
                uri,
                "--database",
                db,
            ],
        )
        run.timed(
            f"{label}: create-collections",
            [str(bins / "create-collections"), "recently-played", "--mongodb-uri", uri, "--database", db]
            + ["--group-config", str(group)],
        )
        run.record(f"{label}: convert + upload + build", time.perf_counter() - started, 0, 0)
        new = set(client[db]["upload_ledger"].distinct("_id")) - before
        reads = build_reads(client, db, new)
        run.results["checks"][f"{label}: days, plays and partials its build read"] = reads
    if label != "hour":
        return
    # Each step once more with nothing new (no new page, no new file, no new ledger entry): its fixed cost.
    for _ in range(repeats):
        for step, command in [
            ("convert", ["json-converter", "recently-played", "--storage", str(storage), "--group-config", str(group)]),
            (
                "upload",
                ["data-upload", "recently-played", "--storage", str(storage), "--mongodb-uri", uri, "--database", db],
            ),
            (
                "create-collections",
                ["create-collections", "recently-played", "--mongodb-uri", uri, "--database", db]
                + ["--group-config", str(group)],
            ),
        ]:
            run.timed(f"nothing new: {step}", [str(bins / command[0]), *command[1:]])


def import_scenario(run, work, storage, group, uri, db):
    """A member's ten-year streaming history (the history150k set) imported into the group, converted,
    uploaded and built: the build must read only the days the import touched."""
    from pymongo import MongoClient

    bins = Path(env("EARSHOT_RELEASE_BIN"))
    history = work / "history150k"
    summary_file = history / "set.json"
    if not summary_file.exists():
        shutil.rmtree(history, ignore_errors=True)
        history.mkdir(parents=True)
        seconds, _, _, out = measure([str(bins / "earshot-fixtures"), str(history), "--history-plays", "150000"])
        summary_file.write_text(json.dumps({"plays": 150000, "summary": json.loads(out), "seconds": seconds}))
    member = json.loads(summary_file.read_text())["summary"]["member"]
    client = MongoClient(uri)
    before = set(client[db]["upload_ledger"].distinct("_id"))
    run.timed(
        "import: data-fetcher import",
        [str(bins / "data-fetcher"), "import", "--member", member, str(history / "export"), "--storage", str(storage)]
        + ["--group-config", str(group)],
    )
    run.timed(
        "import: convert",
        [str(bins / "json-converter"), "streaming-history", "--storage", str(storage), "--group-config", str(group)],
    )
    run.timed(
        "import: upload",
        [str(bins / "data-upload"), "recently-played", "--storage", str(storage), "--mongodb-uri", uri]
        + ["--database", db],
    )
    run.timed(
        "import: create-collections",
        [str(bins / "create-collections"), "recently-played", "--mongodb-uri", uri, "--database", db]
        + ["--group-config", str(group)],
    )
    new = set(client[db]["upload_ledger"].distinct("_id")) - before
    reads = build_reads(client, db, new)
    all_days = len(client[db]["members_by_day"].distinct("d"))
    run.results["checks"]["import: days, plays and partials its build read"] = reads
    run.results["checks"]["import: days with plays in the group after it"] = all_days


def erase_scenario(run, storage, group, uri, db):
    """`members erase` of one member (the group's second) at this size."""
    text = group.read_text()
    blocks = text.split("[[members]]")
    member = blocks[2].split('id = "', 1)[1].split('"', 1)[0]
    without = group.with_name("group-without.toml")
    without.write_text("[[members]]".join(blocks[:2] + blocks[3:]))
    bins = Path(env("EARSHOT_RELEASE_BIN"))
    run.timed(
        "erase one member",
        [str(bins / "members"), "erase", "--member", member, "--yes", "--storage", str(storage)]
        + ["--group-config", str(without), "--mongodb-uri", uri, "--database", db],
    )
    run.results["checks"]["erase: the member erased"] = member
    # The set lost a member and gained a history: the next run generates it afresh.
    (storage.parent / "set.json").unlink(missing_ok=True)


def convert_once(storage, group):
    """Convert every kind (not measured): what the scenarios after the converter start from."""
    bins = Path(env("EARSHOT_RELEASE_BIN"))
    for kind in ["recently-played", "top-tracks", "top-artists"]:
        measure([str(bins / "json-converter"), kind, "--storage", str(storage), "--group-config", str(group)])


def bench_size(size, work, repeats, uri, steps, server_pid=None):
    bins = Path(env("EARSHOT_RELEASE_BIN"))
    members, days, per_day = SIZES[size]
    run = Run(size, work, repeats)
    d = run.dir
    storage, group = d / "storage", d / "group.toml"
    params = {"members": members, "days": days, "plays_per_day": per_day, "market_heavy": size in MARKET_HEAVY}
    set_file = d / "set.json"
    if not set_file.exists() or json.loads(set_file.read_text()).get("params") != params:
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        print(f"== {size}: generating {members} members x {days} days x ~{per_day} plays", flush=True)
        seconds, _, _, out = measure(
            [
                str(bins / "earshot-fixtures"),
                str(d),
                "--raw",
                "--members",
                str(members),
                "--days",
                str(days),
                "--plays-per-day",
                str(per_day),
                *(["--market-heavy"] if size in MARKET_HEAVY else []),
            ]
        )
        set_file.write_text(json.dumps({"params": params, "summary": json.loads(out), "seconds": seconds}))
    the_set = json.loads(set_file.read_text())
    run.results["set"] = {**the_set["summary"], **params, "generate_seconds": round(the_set["seconds"], 1)}
    plays = the_set["summary"]["plays"]
    print(f"== {size}: {plays} plays, {the_set['summary']['bytes'] / 1e9:.2f} GB of raw pages", flush=True)
    baselines = size in BASELINE_LIMIT and steps not in ("hourly", "export")
    # Loading into the dev server is the slow part (one pymongo upsert a play: about 1k a second), so
    # past 10k plays upload and create-collections run once.
    server_repeats = repeats if size == "10k" else 1
    converted = storage / "converted" / "recently_played"
    py_out, roundtrip_out = d / "python-converted", d / "roundtrip-out"
    cores = os.cpu_count() or 1

    if steps in ("hourly", "export"):
        convert_once(storage, group)
    else:
        # json-converter, the Python converter, serde_json Value round trips on one thread and on every core.
        for _ in range(repeats):
            shutil.rmtree(converted, ignore_errors=True)
            run.timed(
                "convert",
                [
                    str(bins / "json-converter"),
                    "recently-played",
                    "--storage",
                    str(storage),
                    "--group-config",
                    str(group),
                ],
            )
            if baselines:
                shutil.rmtree(py_out, ignore_errors=True)
                run.timed(
                    "convert (Python)",
                    [
                        sys.executable,
                        str(ROOT / "crates/json-converter/benches/original_converter.py"),
                        str(storage),
                        str(group),
                        str(py_out),
                    ],
                )
                for threads in sorted({1, cores}):
                    shutil.rmtree(roundtrip_out, ignore_errors=True)
                    run.timed(
                        roundtrip_step(threads),
                        [env("EARSHOT_ROUNDTRIP_BIN"), str(storage), str(roundtrip_out), "--threads", str(threads)],
                    )
        if baselines:
            # Same input, same output: the Python converter must write the records json-converter wrote.
            ours, theirs = jsonl_records(converted), jsonl_records(py_out)
            same = ours == theirs
            run.results["checks"]["python converter output equals json-converter's"] = same
            if not same:
                sys.exit(f"bench: the Python converter's records differ from json-converter's ({size})")
            shutil.rmtree(py_out)
            shutil.rmtree(roundtrip_out)
        for kind in ["top-tracks", "top-artists"]:
            shutil.rmtree(storage / "converted" / kind.replace("-", "_"), ignore_errors=True)
            run.timed(
                f"convert {kind}",
                [str(bins / "json-converter"), kind, "--storage", str(storage), "--group-config", str(group)],
            )
    if steps == "convert":
        return run.results

    # data-upload and the pymongo baseline, each into its own database on the same server.
    db, py_db = f"bench_{size}", f"bench_{size}_pymongo"
    upload = [str(bins / "data-upload"), "all", "--storage", str(storage), "--mongodb-uri", uri]
    for _ in range(server_repeats):
        drop_database(uri, db)
        run.timed("upload", [*upload, "--database", db])
        if baselines:
            drop_database(uri, py_db)
            # The same indexes as data-upload's collection: data-upload creates them (no records).
            measure(
                [
                    str(bins / "data-upload"),
                    "recently-played",
                    "--input",
                    "-",
                    "--mongodb-uri",
                    uri,
                    "--database",
                    py_db,
                ]
            )
            out = run.timed(
                "upload recently played (pymongo)",
                [sys.executable, str(ROOT / "scripts/bench/pymongo_upload.py"), str(converted), uri, py_db],
            )
            assert json.loads(out)["records"] == plays, out
    if baselines:
        drop_database(uri, py_db)
    out = run.timed("upload again (no changes)", [*upload, "--database", db])
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    run.results["checks"]["upload re-run changed nothing"] = all(
        line.get("inserted", 0) == 0 and line.get("modified", 0) == 0 for line in lines
    )

    # create-collections (from scratch each time, then once more with nothing new).
    from pymongo import MongoClient

    client = MongoClient(uri)
    derived = ["Tracks", "Albums", "Artists", "ArtistTrackLink", "Images", "members"]
    derived += ["t50_Tracks", "t50_Artists", "t50_Images", "t50_TopArtists"]
    create = [str(bins / "create-collections"), "all", "--mongodb-uri", uri, "--database", db]
    create += ["--group-config", str(group)]
    try:
        for _ in range(server_repeats):
            for name in derived:
                client[db].drop_collection(name)
            reset_peak_rss(server_pid)
            run.timed("create-collections", [*create, "--rebuild"])
    except StepFailed as error:
        # Seen before builds ran in batches: the dev server held a $group over 1M plays and was killed.
        run.failed("create-collections", error)
        return run.results
    if server_pid is not None:
        run.results["checks"]["dev server peak RSS during the first build (MiB)"] = peak_rss_mib(server_pid)
    run.results["checks"]["per-day partials after the first build"] = sum(
        client[db][name].estimated_document_count() for name in PARTIALS
    )
    run.timed("create-collections again", create)
    run.results["checks"]["ArtistTrackLink rows"] = client[db]["ArtistTrackLink"].estimated_document_count()
    if steps != "export":
        hourly_scenario(run, storage, group, uri, db, repeats)
    if size in LATE_DATA and steps != "export":
        import_scenario(run, work, storage, group, uri, db)
        hourly_scenario(run, storage, group, uri, db, 1, label="hour after the import", shift_days=900)
        erase_scenario(run, storage, group, uri, db)
    if steps == "hourly":
        return run.results

    # gcs-export to the local folder.
    exports = storage / "exports"
    for _ in range(repeats):
        shutil.rmtree(exports, ignore_errors=True)
        run.timed(
            "gcs-export",
            [str(bins / "gcs-export"), "--storage", str(storage), "--mongodb-uri", uri, "--database", db]
            + ["--snapshot", "bench"],
        )
    run.results["checks"]["exported plays"] = count_rows(f"{exports}/rawdata_recentlyplayed/snapshot=bench/*.parquet")
    if steps == "export":
        return run.results

    # analytics: polars, the Spark job (SQL only; and the whole --engine spark run with ALS), DuckDB.
    analytics_steps(run, storage, d, repeats)
    return run.results


def bench_history(name, plays, work, repeats):
    """`data-fetcher import` then `json-converter streaming-history` of one member's export, into a fresh
    storage each time: plays per second up to records ready for upload, peak memory, and the exact count."""
    bins = Path(env("EARSHOT_RELEASE_BIN"))
    run = Run(name, work, repeats)
    d = run.dir
    summary_file = d / "set.json"
    if not summary_file.exists() or json.loads(summary_file.read_text()).get("plays") != plays:
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        seconds, _, _, out = measure([str(bins / "earshot-fixtures"), str(d), "--history-plays", str(plays)])
        summary_file.write_text(json.dumps({"plays": plays, "summary": json.loads(out), "seconds": seconds}))
    the_set = json.loads(summary_file.read_text())
    member, export = the_set["summary"]["member"], d / "export"
    size = sum(f.stat().st_size for f in export.iterdir())
    run.results["set"] = {
        "members": 1,
        "days": 3650,
        "plays": plays,
        "pages": the_set["summary"]["files"],
        "bytes": size,
        "entries": the_set["summary"]["entries"],
        "generate_seconds": round(the_set["seconds"], 1),
    }
    storage, group = d / "storage", d / "group.toml"
    for _ in range(repeats):
        shutil.rmtree(storage, ignore_errors=True)
        started = time.perf_counter()
        out = run.timed(
            "import",
            [str(bins / "data-fetcher"), "import", "--member", member, str(export), "--storage", str(storage)]
            + ["--group-config", str(group)],
        )
        report = json.loads(out.strip().splitlines()[-1])
        run.timed(
            "convert streaming-history",
            [
                str(bins / "json-converter"),
                "streaming-history",
                "--storage",
                str(storage),
                "--group-config",
                str(group),
            ],
        )
        run.record("import + convert", time.perf_counter() - started, 0, 0)
        records = sum(1 for f in (storage / "converted" / "streaming_history").rglob("*.jsonl") for _ in f.open())
        ids = {
            json.loads(line)["_id"]
            for f in (storage / "converted" / "streaming_history").rglob("*.jsonl")
            for line in f.open()
        }
        run.results["checks"]["plays imported (distinct)"] = report["plays"]
        run.results["checks"]["records ready for upload (distinct ids)"] = len(ids)
        run.results["checks"]["records written (an entry the export repeats across files is in two files)"] = records
        run.results["checks"]["entries set aside"] = sum(report["set_aside"].values())
        run.results["checks"]["enrichment requests needed (distinct tracks: one GET /v1/tracks/{id} each)"] = report[
            "tracks"
        ]
        if len(ids) != report["plays"]:
            sys.exit(f"bench: {len(ids)} distinct records for {report['plays']} plays imported")
    return run.results


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def spark_cluster(work, workers=2, memory="6g"):
    """A standalone Spark cluster on loopback: one master and `workers` workers (one core and `memory`
    each), every one its own JVM from the pinned pyspark's `spark-class`. Yields the master's URL."""
    spark_class = Path(env("SPARK_HOME")) / "bin" / "spark-class"
    logs = work / "spark-cluster"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    port = free_port()
    url = f"spark://127.0.0.1:{port}"
    processes = []

    def spawn(name, args):
        log = open(logs / f"{name}.log", "w")  # noqa: SIM115 (closed with the process below)
        processes.append((subprocess.Popen([str(spark_class), *args], stdout=log, stderr=log), log))

    try:
        spawn(
            "master",
            [
                "org.apache.spark.deploy.master.Master",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--webui-port",
                str(free_port()),
            ],
        )
        for i in range(workers):
            (logs / f"work-{i}").mkdir()
            spawn(
                f"worker-{i}",
                [
                    "org.apache.spark.deploy.worker.Worker",
                    "--host",
                    "127.0.0.1",
                    "--cores",
                    "1",
                    "--memory",
                    memory,
                    "--webui-port",
                    str(free_port()),
                    "--work-dir",
                    str(logs / f"work-{i}"),
                    url,
                ],
            )
        deadline = time.monotonic() + 180
        while (
            sum("Successfully registered with master" in (logs / f"worker-{i}.log").read_text() for i in range(workers))
            < workers
        ):
            if time.monotonic() > deadline or any(p.poll() is not None for p, _ in processes):
                sys.exit(f"bench: the Spark cluster did not start; its logs are in {logs}")
            time.sleep(0.5)
        yield url
    finally:
        for process, log in processes:
            process.terminate()
            process.wait()
            log.close()


def analytics_steps(run, storage, out_dir, repeats, cluster=True):
    """analytics on polars, the Spark job (SQL only) and DuckDB, alternating; checks they agree. A polars
    run that fails (out of memory, say) is recorded and the others still run."""
    bins = Path(env("EARSHOT_RELEASE_BIN"))
    exports = storage / "exports"
    spark = run.size in SPARK_LIMIT
    analytics = [str(bins / "analytics"), "--storage", str(storage), "--snapshot", "bench", "--skip-mongodb"]
    spark_out, duck_out = out_dir / "spark-out", out_dir / "duckdb-out"
    spark_job = [*shlex.split(env("EARSHOT_SPARK_SUBMIT")), str(ROOT / "crates/analytics/spark/earshot_job.py")]
    spark_job += ["--exports", str(exports), "--snapshot", "bench", "--sql", str(ROOT / "crates/metrics/sql")]
    spark_job += ["--out", str(spark_out), "--als-top", "0"]
    duck = [sys.executable, str(ROOT / "scripts/bench/duckdb_metrics.py"), str(exports), "bench"]
    duck += [str(ROOT / "crates/metrics/sql"), str(duck_out)]
    polars_ok = True
    for _ in range(repeats):
        shutil.rmtree(storage / "reports", ignore_errors=True)
        if polars_ok:
            try:
                run.timed("analytics polars", [*analytics, "--run", "bench-polars"])
            except StepFailed as error:
                run.failed("analytics polars", error)
                polars_ok = False
        if spark:
            shutil.rmtree(spark_out, ignore_errors=True)
            run.timed("analytics Spark job (SQL only)", spark_job)
        shutil.rmtree(duck_out, ignore_errors=True)
        duck_rows = json.loads(run.timed("analytics DuckDB (SQL only)", duck))
    if spark:
        spark_rows = {m: count_rows(f"{spark_out}/{m}/*.parquet") for m in duck_rows}
        run.results["checks"]["DuckDB and Spark metric rows agree"] = spark_rows == duck_rows
        if spark_rows != duck_rows:
            sys.exit(f"bench: DuckDB and Spark disagree on metric rows: {duck_rows} vs {spark_rows}")
    if polars_ok:
        report = json.loads((storage / "reports/bench-polars/report.json").read_text())
        run.results["checks"]["polars report members"] = len(report["members"])
    if cluster and run.size in SPARK_CLUSTER:
        # Client mode: the driver here, the two executors in the workers' JVMs.
        submit = shlex.split(env("EARSHOT_SPARK_SUBMIT"))[0]
        with spark_cluster(out_dir) as url:
            for _ in range(repeats):
                shutil.rmtree(spark_out, ignore_errors=True)
                run.timed(
                    CLUSTER_STEP,
                    [
                        submit,
                        "--master",
                        url,
                        "--driver-memory",
                        "2g",
                        "--executor-memory",
                        "6g",
                        "--conf",
                        "spark.ui.enabled=false",
                        *spark_job[len(shlex.split(env("EARSHOT_SPARK_SUBMIT"))) :],
                    ],
                )
        cluster_rows = {m: count_rows(f"{spark_out}/{m}/*.parquet") for m in duck_rows}
        run.results["checks"]["DuckDB and the Spark cluster's metric rows agree"] = cluster_rows == duck_rows
        if cluster_rows != duck_rows:
            sys.exit(f"bench: DuckDB and the Spark cluster disagree on metric rows: {duck_rows} vs {cluster_rows}")
    shutil.rmtree(storage / "reports", ignore_errors=True)
    if spark:
        run.timed(
            "analytics --engine spark (with ALS)",
            [*analytics, "--engine", "spark", "--run", "bench-spark"],
        )


def bench_scaled(work, base, factor, repeats, cluster=True):
    """Analytics on `factor` copies of the `base` set's plays (each copy's ids renamed, the members and
    their top lists the same): the same group with `factor` times the history, for the engines, without
    loading it through the dev server. (Copying members instead would make the pairwise metrics, which
    grow with members squared, the whole benchmark.)"""
    import duckdb

    name = f"{base}x{factor}"
    source = work / base / "storage" / "exports"
    if not (source / "rawdata_recentlyplayed" / "snapshot=bench" / "_SUCCESS").exists():
        sys.exit(f"bench: --sizes {name} needs the {base} set's snapshot: run --sizes {base} first")
    run = Run(name, work, repeats)
    storage = run.dir / "storage"
    shutil.rmtree(run.dir, ignore_errors=True)
    db = duckdb.connect()
    db.execute("SET preserve_insertion_order = false")
    db.execute(f"SET temp_directory = '{work / 'duckdb-temp'}'")
    copy_scaled(db, source, "bench", factor, storage)
    plays = count_rows(f"{storage}/exports/rawdata_recentlyplayed/snapshot=bench/*.parquet")
    base_set = json.loads((work / f"results-{base}.json").read_text())["set"]
    run.results["set"] = {
        "members": base_set["members"],
        "days": base_set["days"],
        "plays": plays,
        "pages": 0,
        "bytes": 0,
        "generate_seconds": "–",
        "note": f"the {base} snapshot's plays ×{factor}",
    }
    print(f"== {name}: {plays} plays ({factor} copies of the {base} snapshot's plays)", flush=True)
    analytics_steps(run, storage, run.dir, repeats, cluster)
    return run.results


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


def demo_timings(work):
    """The `scripts/demo.sh --timings` files bench.sh wrote (one per run)."""
    return [json.loads(p.read_text()) for p in sorted(work.glob("demo-*.json"))]


def render_hourly(work):
    """The figures of issue #23 from one `--steps hourly` run, each beside its target."""
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
        f"| the hour at 1M, end to end (n={n}) | ≤ 5 s, ≤ 1.5× the hour at 10k | {fmt(hour)}, "
        f"{ratio:.2f}× the hour at 10k ({fmt(hour10)}) | {met(hour <= 5 and ratio <= 1.5)} |"
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
            f"| an erase at 1M (`members erase`) | well below a full rebuild | {fmt(erase)}, "
            f"{erase / first:.2f}× the first build | {met(erase < first / 2)} |"
        )
    else:
        lines.append(
            "| an erase at 1M (`members erase`) | well below a full rebuild | did not finish: "
            f"{failed.get('erase one member', 'not run')} | **missed** |"
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


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10k,1M", help="comma-separated, of " + ", ".join(SIZES))
    parser.add_argument("--repeats", type=int, default=3, help="runs of each step (10M: 1)")
    parser.add_argument(
        "--steps",
        choices=STEPS,
        default="all",
        help="`convert`: the converter rows alone; `export`: load, build, then gcs-export",
    )
    parser.add_argument(
        "--skip-cluster", action="store_true", help="no standalone Spark cluster run (it takes about 45 min at 100M)"
    )
    parser.add_argument("--work", type=Path, default=Path(os.environ.get("EARSHOT_BENCH_DIR", "bench-work")))
    parser.add_argument("--report", type=Path, help="render the results into this Markdown file and stop")
    parser.add_argument(
        "--section",
        choices=("all", "hourly"),
        default="all",
        help="with --report: `hourly` renders a `--steps hourly` run into its own markers (bench-hourly)",
    )
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.report:
        text = args.report.read_text()
        name = "bench" if args.section == "all" else "bench-hourly"
        begin, end = f"<!-- {name}:begin -->\n", f"<!-- {name}:end -->"
        if begin not in text or end not in text:
            sys.exit(f"bench: {args.report} has no {begin.strip()} … {end} markers")
        head, rest = text.split(begin, 1)
        body = render(args.work) if args.section == "all" else render_hourly(args.work)
        args.report.write_text(head + begin + body + end + rest.split(end, 1)[1])
        print(f"bench: wrote {args.report}")
        return
    machine()  # the commit built, before anything is committed during the run
    sizes = args.sizes.split(",")
    for size in sizes:
        if size not in SIZES and size not in SCALED and size not in HISTORY:
            sys.exit(f"bench: --sizes: unknown size `{size}` (one of {', '.join([*SIZES, *SCALED, *HISTORY])})")
    # A real mongod (needed for create-collections past about 1M plays) or the dev server.
    uri = os.environ.get("EARSHOT_BENCH_MONGODB_URI")
    server = None if uri else start_devdb(args.work)
    try:
        for size in sizes:
            if server is not None and server[0].poll() is not None:
                server = start_devdb(args.work)
            if server is not None:
                uri = server[1]
            repeats = 1 if size in ("10M", "10kx1000", "10kx10000") else args.repeats
            if size in HISTORY:
                results = bench_history(size, HISTORY[size], args.work, repeats)
            elif size in SCALED:
                results = bench_scaled(args.work, *SCALED[size], repeats, cluster=not args.skip_cluster)
            else:
                pid = server[0].pid if server is not None else None
                results = bench_size(size, args.work, repeats, uri, args.steps, pid)
            path = args.work / f"results-{size}.json"
            if args.steps != "all":
                results = merge_earlier(results, path)
            results["machine"] = machine()
            results["repeats"] = repeats
            path.write_text(json.dumps(results, indent=1))
    finally:
        if server is not None:
            server[0].terminate()
            server[0].wait()


if __name__ == "__main__":
    try:
        main()
    except StepFailed as error:
        sys.exit(f"bench: {error}")
