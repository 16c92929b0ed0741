"""One synthetic size end to end (convert, upload, build, export, analytics), and an imported history."""

import json
import os
import shutil
import sys
import time
from pathlib import Path

from common import (
    BASELINE_LIMIT,
    MARKET_HEAVY,
    ROOT,
    SIZES,
    Run,
    StepFailed,
    count_rows,
    drop_database,
    env,
    jsonl_records,
    measure,
    peak_rss_mib,
    reset_peak_rss,
    roundtrip_step,
)
from scenarios import LATE_DATA, PARTIALS, convert_once, erase_scenario, hourly_scenario, import_scenario
from spark import analytics_steps


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
        reset_peak_rss(server_pid)
        run.timed("upload", [*upload, "--database", db])
        server_peak(run, server_pid, "the upload")
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
    export = [str(bins / "gcs-export"), "--storage", str(storage), "--mongodb-uri", uri, "--database", db]
    export += ["--snapshot", "bench"]
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
    server_peak(run, server_pid, "the first build")
    run.results["checks"]["per-day partials after the first build"] = sum(
        client[db][name].estimated_document_count() for name in PARTIALS
    )
    run.timed("create-collections again", create)
    run.results["checks"]["ArtistTrackLink rows"] = client[db]["ArtistTrackLink"].estimated_document_count()
    if steps != "export":
        reset_peak_rss(server_pid)
        hourly_scenario(run, storage, group, uri, db, repeats)
        server_peak(run, server_pid, "the hours")
    if size in LATE_DATA and steps == "hourly":
        # The export of the whole group, once, in the hourly scenario too: its time and the server's peak.
        reset_peak_rss(server_pid)
        run.timed("gcs-export", export)
        server_peak(run, server_pid, "the export")
    if size in LATE_DATA and steps != "export":
        reset_peak_rss(server_pid)
        import_scenario(run, work, storage, group, uri, db)
        hourly_scenario(run, storage, group, uri, db, 1, label="hour after the import", shift_days=900)
        server_peak(run, server_pid, "the import and the hour after it")
        reset_peak_rss(server_pid)
        erase_scenario(run, storage, group, uri, db)
        server_peak(run, server_pid, "the erase")
    if steps == "hourly":
        return run.results

    # gcs-export to the local folder.
    exports = storage / "exports"
    for _ in range(repeats):
        shutil.rmtree(exports, ignore_errors=True)
        run.timed("gcs-export", export)
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


def server_peak(run, server_pid, phase):
    """Record the dev server's peak resident memory since its last reset, as the peak during `phase`."""
    if server_pid is not None:
        run.results["checks"][f"dev server peak RSS during {phase} (MiB)"] = peak_rss_mib(server_pid)
