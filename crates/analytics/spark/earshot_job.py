"""Earshot analytics on Spark: the same metrics as the polars engine, from the same SQL files.

Submitted by `analytics --engine spark` through spark-submit (local mode, YARN, or Dataproc via
`gcloud dataproc jobs submit pyspark`). Reads one Parquet snapshot written by gcs-export, derives the
columns the SQL expects (as crates/analytics/src/engine.rs does), runs every `sql/*.sql`, adds ALS
recommendations (implicit feedback, pyspark.ml), and writes each result as Parquet under --out.
"""

from __future__ import annotations

import argparse
import os
from concurrent.futures import ThreadPoolExecutor

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exports", required=True, help="the exports/ folder (local path or gs:// URL)")
    parser.add_argument("--snapshot", required=True, help="snapshot run id")
    parser.add_argument("--sql", required=True, help="folder of the metric SQL files")
    parser.add_argument("--out", required=True, help="where each metric's Parquet goes")
    parser.add_argument("--from-ms", type=int, default=None, help="only plays at or after (unix ms)")
    parser.add_argument("--to-ms", type=int, default=None, help="only plays before (unix ms)")
    parser.add_argument("--members", default="", help="only these members, comma-separated")
    parser.add_argument(
        "--hidden-members",
        default="",
        help="members who hide from comparisons, comma-separated (the hidden_members table)",
    )
    parser.add_argument("--als-top", type=int, default=10, help="ALS recommendations per member (0: no ALS)")
    return parser.parse_args()


def sql_files(spark: SparkSession, folder: str) -> dict[str, str]:
    """`{name: text}` of every `<name>.sql` directly in `folder` (a local path or gs:// URL)."""
    files = spark.read.text(f"{folder.rstrip('/')}/*.sql", wholetext=True).select(
        F.input_file_name().alias("path"), "value"
    )
    return {row["path"].rsplit("/", 1)[-1].removesuffix(".sql"): row["value"] for row in files.collect()}


def snapshot(spark: SparkSession, exports: str, collection: str, run: str) -> DataFrame:
    return spark.read.parquet(f"{exports.rstrip('/')}/{collection}/snapshot={run}/")


# How many metrics run at once (each its own Spark job, from its own driver thread).
CONCURRENT_METRICS = 3


def filtered(frame: DataFrame, args: argparse.Namespace, time_column: str | None) -> DataFrame:
    if time_column and args.from_ms is not None:
        frame = frame.where(F.col(time_column) >= F.timestamp_millis(F.lit(args.from_ms)))
    if time_column and args.to_ms is not None:
        frame = frame.where(F.col(time_column) < F.timestamp_millis(F.lit(args.to_ms)))
    members = [m for m in args.members.split(",") if m]
    if members:
        frame = frame.where(F.col("user_id").isin(members))
    return frame


def prepare_plays(plays: DataFrame) -> DataFrame:
    """play_id; the rest the SQL reads (track_key, local_day, local_hour, local_weekday) the converter
    stored on each play."""
    return plays.withColumn("play_id", F.col("_id"))


def als(spark: SparkSession, counts: DataFrame, top: int) -> DataFrame:
    """ALS with implicit feedback on play counts per member and recording (the `member_track_plays`
    view: the one grouping of the plays by recording); tracks a member already played are excluded."""
    from pyspark.ml.feature import StringIndexer
    from pyspark.ml.recommendation import ALS

    data = (
        StringIndexer(inputCol="user_id", outputCol="user_index", stringOrderType="alphabetAsc")
        .fit(counts)
        .transform(counts)
    )
    data = (
        StringIndexer(inputCol="track_key", outputCol="item_index", stringOrderType="alphabetAsc")
        .fit(data)
        .transform(data)
    )
    data = data.withColumn("user_index", F.col("user_index").cast("int")).withColumn(
        "item_index", F.col("item_index").cast("int")
    )
    users = data.select("user_id", "user_index").distinct()
    items = data.select("track_key", "item_index").distinct()
    model = ALS(
        userCol="user_index",
        itemCol="item_index",
        ratingCol="plays",
        implicitPrefs=True,
        rank=8,
        maxIter=10,
        regParam=0.1,
        alpha=10.0,
        seed=42,
        coldStartStrategy="drop",
        checkpointInterval=2,
    ).fit(data)
    scored = model.recommendForAllUsers(top + 200)
    exploded = scored.select("user_index", F.explode("recommendations").alias("r")).select(
        "user_index", F.col("r.item_index").alias("item_index"), F.col("r.rating").alias("score")
    )
    named = exploded.join(users, "user_index").join(items, "item_index")
    played = counts.select("user_id", F.col("track_key").alias("played_key"))
    fresh = named.join(played, (named.user_id == played.user_id) & (named.track_key == played.played_key), "left_anti")
    ranked = fresh.withColumn("rank", F.row_number().over(_order_score()))
    return ranked.where(F.col("rank") <= top).select("user_id", "track_key", "score", "rank")


def _order_score():
    from pyspark.sql.window import Window

    return Window.partitionBy("user_id").orderBy(F.desc("score"), F.asc("track_key"))


def main() -> None:
    args = parse_args()
    spark = SparkSession.builder.appName("earshot-analytics").getOrCreate()
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    # Adaptive execution (Spark's default since 3.2, set here for clusters that turned it off): shuffle
    # partitions coalesced to their data, small join sides broadcast once their size is known. The
    # shuffle partitions themselves stay what the submit command says (`--conf
    # spark.sql.shuffle.partitions=...`), 200 by default, which AQE coalesces.
    spark.conf.set("spark.sql.adaptive.enabled", "true")
    spark.conf.set("spark.sql.adaptive.coalescePartitions.enabled", "true")
    if "://" not in args.out:
        # ALS's iterations build a long lineage; checkpoints cut it (clusters set their own directory).
        spark.sparkContext.setCheckpointDir(os.path.join(args.out, "_checkpoints"))
    # Every `sql/*.sql` is a metric and every `sql/views/*.sql` a view they read (the Rust engine's
    # list is held equal to these folders by a test). Read through Spark, so that a gs:// SQL folder
    # works on Dataproc as a local one does here.
    metrics = sql_files(spark, args.sql)
    views = sql_files(spark, f"{args.sql.rstrip('/')}/views")

    # The plays and links are not cached: each metric reads only the columns it names from Parquet, which
    # at 10M plays is quicker than building and scanning an in-memory copy of them (121 s against 214 s,
    # BENCHMARKS.md).
    plays = prepare_plays(
        filtered(snapshot(spark, args.exports, "rawdata_recentlyplayed", args.snapshot), args, "played_at")
    )
    links = filtered(snapshot(spark, args.exports, "ArtistTrackLink", args.snapshot), args, "played_at")
    # The links of every period (the member filter only): what was played before the period.
    filtered(snapshot(spark, args.exports, "ArtistTrackLink", args.snapshot), args, None).createOrReplaceTempView(
        "links_all"
    )
    top = filtered(snapshot(spark, args.exports, "rawdata_toptracks", args.snapshot), args, None)
    top.createOrReplaceTempView("top")
    # Podcast episodes and audiobook chapters: only the spoken metrics read them.
    spoken = snapshot(spark, args.exports, "rawdata_spoken", args.snapshot)
    filtered(spoken, args, "played_at").createOrReplaceTempView("spoken")
    # Who hides from comparisons: views/similarity.sql leaves them out, and ALS is not trained on them.
    hidden = [m for m in args.hidden_members.split(",") if m]
    spark.createDataFrame([(m,) for m in hidden], "user_id string").createOrReplaceTempView("hidden_members")
    out = args.out.rstrip("/")

    cached: list[DataFrame] = []

    def register(plays_view: DataFrame, links_view: DataFrame, cache: bool) -> None:
        """The inputs and the views, in name order (a view reads those before it). With `cache`, each view
        is computed once and cached for all the metrics: they are the groupings of the plays and links the
        metrics share, small next to the plays (the Rust engine collects them the same way)."""
        for frame in cached:
            frame.unpersist()
        cached.clear()
        plays_view.createOrReplaceTempView("plays")
        links_view.createOrReplaceTempView("links")
        for name, text in sorted(views.items()):
            frame = spark.sql(text)
            if cache:
                frame = frame.cache()
                frame.count()
                cached.append(frame)
            frame.createOrReplaceTempView(name)

    def run_sql(metric: str, target: str) -> None:
        spark.sql(metrics[metric]).coalesce(1).write.mode("overwrite").parquet(f"{out}/{target}")

    register(plays, links, cache=True)
    # A few metrics at a time: their jobs share the executors' cores, so that one metric's small final
    # stages (a few partitions, one output file) do not leave the other cores idle.
    with ThreadPoolExecutor(max_workers=CONCURRENT_METRICS) as pool:
        for done in [pool.submit(run_sql, metric, metric) for metric in sorted(metrics)]:
            done.result()
    plays.select("user_id", "user_name").groupBy("user_id").agg(F.max("user_name").alias("user_name")).coalesce(
        1
    ).write.mode("overwrite").parquet(f"{out}/member_names")

    # The weekly recap: the last complete local week (Monday to Sunday) up to the newest play.
    newest = plays.select(F.max("local_day").alias("d")).first()["d"]
    if newest is not None:
        import datetime

        day = datetime.date.fromisoformat(newest)
        monday = day - datetime.timedelta(days=day.weekday() + (0 if day.weekday() == 6 else 7))
        start, end = monday.isoformat(), (monday + datetime.timedelta(days=7)).isoformat()
        week = plays.where((F.col("local_day") >= start) & (F.col("local_day") < end))
        week_ids = week.select(F.col("play_id").alias("week_play"))
        week_links = links.join(week_ids, links.play_id == week_ids.week_play, "left_semi")
        register(week, week_links, cache=False)
        run_sql("member_summary", "weekly_member_summary")
        run_sql("member_tracks", "weekly_member_tracks")
        spark.createDataFrame([(start,)], "week_start string").coalesce(1).write.mode("overwrite").parquet(
            f"{out}/weekly_week"
        )
        register(plays, links, cache=False)
    # Nobody's ALS recommendations are drawn from the plays of a member who hides from comparisons.
    counts = spark.table("member_track_plays").select("user_id", "track_key", "plays")
    als_counts = counts.where(~F.col("user_id").isin(hidden)) if hidden else counts
    if args.als_top > 0 and als_counts.select("user_id").distinct().count() > 1:
        als(spark, als_counts, args.als_top).coalesce(1).write.mode("overwrite").parquet(f"{out}/recommendations_als")
    spark.stop()


if __name__ == "__main__":
    main()
