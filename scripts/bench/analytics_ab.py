"""Two builds of `analytics` on the same large snapshot, alternating: does a build change cost run time?

Makes the snapshot once, as `scripts/bench.sh --sizes 10kx1000` does: copies of a base snapshot's plays,
each copy's ids renamed (`_id`, `play_id`), the members and their top lists the same, to reach `--plays`.
Then runs `analytics --skip-mongodb` of each build in turn, `--repeats` times, and prints each run's wall
time and peak RSS, and the medians (issue #40: the release profile may not make analytics slower).

usage: analytics_ab.py --base STORAGE --snapshot ID --plays N --work DIR BIN_A BIN_B

  STORAGE/exports/<collection>/snapshot=ID/ is the base (a demo's or a bench set's storage). Needs
  duckdb (scripts/requirements-bench.lock) and /usr/bin/time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import duckdb
from scaled import copy_scaled


def scale(base: Path, snapshot: str, plays: int, storage: Path) -> int:
    """Copies of `base`'s snapshot `snapshot` into `storage` as snapshot `bench`; returns the plays."""
    db = duckdb.connect()
    db.execute("SET preserve_insertion_order = false")
    source = base / "exports"
    one = db.execute(
        f"SELECT count(*) FROM read_parquet('{source}/rawdata_recentlyplayed/snapshot={snapshot}/*.parquet')"
    ).fetchone()[0]
    factor = max(1, -(-plays // one))
    copy_scaled(db, source, snapshot, factor, storage)
    return db.execute(
        f"SELECT count(*) FROM read_parquet('{storage}/exports/rawdata_recentlyplayed/snapshot=bench/*.parquet')"
    ).fetchone()[0]


def run(binary: Path, storage: Path) -> tuple[float, float]:
    """One analytics run: (seconds, peak RSS in MiB)."""
    shutil.rmtree(storage / "reports", ignore_errors=True)
    with tempfile.NamedTemporaryFile("r", suffix=".time") as timing:
        command = ["/usr/bin/time", "-f", "%M", "-o", timing.name, str(binary / "analytics")]
        command += ["--storage", str(storage), "--snapshot", "bench", "--skip-mongodb", "--run", "ab"]
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "EARSHOT_LOG": "warn"})
        seconds = time.perf_counter() - started
        rss = int(timing.read().strip().splitlines()[-1]) / 1024
    return seconds, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, required=True, help="a storage folder with the base snapshot")
    parser.add_argument("--snapshot", required=True, help="the base snapshot's id")
    parser.add_argument("--plays", type=int, default=10_000_000, help="plays to reach (default 10M)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, required=True, help="where the scaled snapshot goes")
    parser.add_argument("bins", nargs=2, type=Path, help="two folders holding an `analytics` binary")
    args = parser.parse_args()
    storage = args.work / "storage"
    if not (storage / "exports" / "rawdata_recentlyplayed" / "snapshot=bench" / "_SUCCESS").is_file():
        shutil.rmtree(storage, ignore_errors=True)
        plays = scale(args.base, args.snapshot, args.plays, storage)
    else:
        plays = (
            duckdb.connect()
            .execute(
                f"SELECT count(*) FROM read_parquet('{storage}/exports/rawdata_recentlyplayed/snapshot=bench/*.parquet')"
            )
            .fetchone()[0]
        )
    print(f"{plays} plays in {storage}", flush=True)
    results: dict[Path, list[tuple[float, float]]] = {b: [] for b in args.bins}
    for repeat in range(args.repeats):
        for binary in args.bins:
            seconds, rss = run(binary, storage)
            results[binary].append((seconds, rss))
            print(f"run {repeat + 1}: {binary}: {seconds:.2f} s, {rss:.0f} MiB", flush=True)
    for binary, runs in results.items():
        print(
            f"{binary}: median {statistics.median(s for s, _ in runs):.2f} s "
            f"({', '.join(f'{s:.2f}' for s, _ in runs)}), peak RSS {max(r for _, r in runs):.0f} MiB"
        )


if __name__ == "__main__":
    main()
