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

The scenarios live one per module: `sizes.py` (a synthetic size end to end, an imported history),
`scenarios.py` (an hour on a loaded group, an import, an erase), `spark.py` (the engines and the
standalone cluster), `loop.py` (the development loop); `common.py` holds the step runner and
`render.py` the tables.
"""

import argparse
import json
import os
import sys
from pathlib import Path

from common import HISTORY, SCALED, SIZES, STEPS, StepFailed, machine, merge_earlier, start_devdb
from render import render, render_hourly
from sizes import bench_history, bench_size
from spark import bench_scaled


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
