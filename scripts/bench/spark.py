"""Analytics on polars, Spark (local and a standalone cluster) and DuckDB over one snapshot, and the scaled sizes."""

import contextlib
import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from common import CLUSTER_STEP, ROOT, SPARK_CLUSTER, SPARK_LIMIT, Run, StepFailed, count_rows, env, free_port
from scaled import copy_scaled


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
