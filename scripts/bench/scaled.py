"""Copies of a snapshot's plays, each copy's ids renamed: a larger group history for the engines, without
loading it through a database (`run.py --sizes 10kx1000`, `analytics_ab.py`)."""

from __future__ import annotations

import shutil
from pathlib import Path

# The collections analytics reads, and the id columns each copy renames (the members and their top
# lists stay the same).
RENAMED = {"rawdata_recentlyplayed": ["_id"], "ArtistTrackLink": ["_id", "play_id"], "rawdata_toptracks": []}


def copy_scaled(db, source: Path, snapshot: str, factor: int, storage: Path) -> None:
    """`factor` copies of `source`'s (an exports/ folder) snapshot `snapshot` into `storage` as snapshot
    `bench`, through the duckdb connection `db`."""
    for collection, columns in RENAMED.items():
        target = storage / "exports" / collection / "snapshot=bench"
        target.mkdir(parents=True)
        parts = f"read_parquet('{source}/{collection}/snapshot={snapshot}/*.parquet')"
        if columns:
            # At most 1000 copies a part: one COPY of 100M rows spills past this disk.
            replace = ", ".join(f"{c} || '~' || k AS {c}" for c in columns)
            for part, first in enumerate(range(0, factor, 1000)):
                copies = f"range({first}, {min(first + 1000, factor)}) AS copies(k)"
                select = f"SELECT * REPLACE ({replace}) FROM {parts}, {copies}"
                db.execute(f"COPY ({select}) TO '{target}/part-{part:05d}.parquet' (FORMAT parquet)")
        else:
            db.execute(f"COPY (SELECT * FROM {parts}) TO '{target}/part-00000.parquet' (FORMAT parquet)")
        # The marker as gcs-export wrote it: it names the snapshot's columns (the derived ones included,
        # which the engines then read instead of computing them).
        shutil.copyfile(source / collection / f"snapshot={snapshot}" / "_SUCCESS", target / "_SUCCESS")
