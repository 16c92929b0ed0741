"""Analytics on DuckDB: the same metric SQL files on the same Parquet snapshot.

    python duckdb_metrics.py EXPORTS_DIR SNAPSHOT SQL_DIR OUT_DIR [--tables]

Registers `plays` (with the derived columns analytics adds: play_id, track_key, local_hour,
local_weekday), `links` and `top` as views over the snapshot's Parquet parts, and every
`SQL_DIR/views/*.sql` as a view (or, with --tables, as a temporary table computed once, as polars
and Spark hold them), runs every `SQL_DIR/*.sql` and writes each result to OUT_DIR/<metric>.parquet. Prints {"<metric>": rows, ...}.
"""

import json
import os
import sys

import duckdb


def main():
    exports, snapshot, sql_dir, out = sys.argv[1:5]
    view_kind = "TEMP TABLE" if "--tables" in sys.argv[5:] else "VIEW"
    os.makedirs(out, exist_ok=True)
    db = duckdb.connect()

    def parts(collection):
        return os.path.join(exports, collection, f"snapshot={snapshot}", "*.parquet")

    plays = f"read_parquet('{parts('rawdata_recentlyplayed')}')"
    # track_key and the local day, hour and weekday are stored on each play: read as they are, as polars
    # and Spark do.
    db.execute(f"CREATE VIEW plays AS SELECT *, _id AS play_id FROM {plays}")
    db.execute(f"CREATE VIEW links AS SELECT * FROM read_parquet('{parts('ArtistTrackLink')}')")
    db.execute("CREATE VIEW links_all AS SELECT * FROM links")
    db.execute(f"CREATE VIEW top AS SELECT * FROM read_parquet('{parts('rawdata_toptracks')}')")
    # Spoken plays (podcasts, audiobooks).
    db.execute(f"CREATE VIEW spoken AS SELECT * FROM read_parquet('{parts('rawdata_spoken')}')")
    # Nobody hides from comparisons in a benchmark (earshot-metrics' HIDDEN_MEMBERS).
    db.execute("CREATE VIEW hidden_members AS SELECT NULL::VARCHAR AS user_id WHERE false")
    views = os.path.join(sql_dir, "views")
    for name in sorted(n for n in os.listdir(views) if n.endswith(".sql")):
        with open(os.path.join(views, name), encoding="utf-8") as f:
            db.execute(f"CREATE {view_kind} {name.removesuffix('.sql')} AS\n{f.read().strip().rstrip(';')}")
    rows = {}
    for name in sorted(n for n in os.listdir(sql_dir) if n.endswith(".sql")):
        metric = name.removesuffix(".sql")
        with open(os.path.join(sql_dir, name), encoding="utf-8") as f:
            sql = f.read().strip().rstrip(";")
        target = os.path.join(out, metric + ".parquet")
        db.execute(f"COPY (\n{sql}\n) TO '{target}' (FORMAT parquet)")
        rows[metric] = db.execute(f"SELECT count(*) FROM read_parquet('{target}')").fetchone()[0]
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
