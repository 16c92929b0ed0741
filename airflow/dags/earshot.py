"""Earshot: a friend group's Spotify listening, collected and analysed on a schedule.

Three DAGs (hourly and daily, because Spotify keeps only the newest 50 plays; weekly for the recap):

- `earshot_recently_played` (hourly): fetch new plays → convert → upload → build the play collections
  (beside the fetch, the imported histories' music and spoken plays are converted for the same upload).
- `earshot_daily` (daily): fetch top items → convert top tracks and top artists (in parallel) → upload →
  build the top collections (in parallel) → export Parquet snapshots → analytics; beside them, enrich
  imported streaming-history tracks (skipped when a long Retry-After stops it), and post the reconnect
  reminders that are due (`recap --reminders`: a week before a friend's Spotify authorisation ends, and
  once it has ended, each once per destination), and the stall alarm (`recap --alarms`: a friend with no
  new play for 48 h or a step failing 3 runs in a row, told once when it begins and once when it ends);
  and, when the
  environment sets `EARSHOT_SPARK_ON_DATAPROC=true`, an optional branch that runs the same analytics on a
  Dataproc cluster (create → submit → delete, the delete running whatever happened); and, when it sets
  `EARSHOT_SPARK_ON_CLUSTER=true`, one that submits them to an existing Spark cluster (standalone, YARN,
  Kubernetes) with the `spark-submit` command of the Variable `earshot_spark_submit`.
- `earshot_weekly` (Mondays 12:00 UTC, when the week just ended is over in every time zone): export a
  snapshot → the week's analytics (`--period`) → post the recap to the group's chat (`recap`: each
  destination once a week; a failed one is posted by a retry or the next run).

Several groups: when the environment names a groups folder (`EARSHOT_GROUPS_DIR`, read when the file is
parsed), this file is a DAG factory: each `<file>.toml` there whose `id` is a valid group id gets its own
three DAGs, `earshot_<id>_recently_played`, `earshot_<id>_daily` and `earshot_<id>_weekly`, whose tasks
run with that config (so in that group's database and storage prefix). Adding a group is adding a file.
The groups' Spotify calls (fetches and enrichment) share the pool `earshot_spotify` (create it with one
slot: `airflow pools set earshot_spotify 1 "Spotify quota"`), so they run one at a time, each bounded by
its request budget and timeout, and one group's backlog cannot starve another's fetch. Without the
folder, the three DAGs above serve the deployment's single group, as they always did.

Each task runs one Earshot binary with BashOperator. Configuration comes from the environment and
Airflow Variables (`earshot_bin_dir`, `earshot_storage`, `earshot_group_config`, `earshot_database`,
`earshot_dataproc_*`); secrets (`EARSHOT_TOKEN_KEY`, `MONGODB_URI`) stay in
the workers' environment and are never rendered into a command line. Exit code 3 (partial success)
fails the task, so Airflow retries it (enrichment excepted: its exit 3 is a clean stop, skipped); the
binaries never exit 99 (Airflow's "skipped").
"""

from __future__ import annotations

import logging
import os
import re
import tomllib
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

START = pendulum.datetime(2026, 1, 1, tz="UTC")
LOG = logging.getLogger(__name__)


def setting(name: str, default: str) -> str:
    """An Airflow Variable, else the environment variable of the same name in upper case, else a default.

    Read when a task runs (templated), never at DAG import, so parsing stays cheap.
    """
    fallback = os.environ.get(name.upper(), default)
    return "{{ var.value.get('" + name + "', '" + fallback + "') }}"


BIN = setting("earshot_bin_dir", "/home/airflow/gcs/data/earshot/bin")
ENV = {
    "EARSHOT_STORAGE": setting("earshot_storage", "./data"),
    "EARSHOT_GROUP_CONFIG": setting("earshot_group_config", "earshot.toml"),
    "EARSHOT_DATABASE": setting("earshot_database", "earshot"),
    "EARSHOT_LOG": "info",
}
DEFAULT_ARGS = {
    "retries": 3,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=30),
    "execution_timeout": timedelta(minutes=20),
}
# The pool every group's Spotify calls share (crates/core/src/scope.rs, `SPOTIFY_POOL`).
SPOTIFY_POOL = "earshot_spotify"
# A group id (crates/core/src/config.rs, `check_group_id`): it names DAGs, a database and a prefix.
GROUP_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")

# Monday 12:00 UTC is Monday (UTC-12) to Tuesday (UTC+14) everywhere: the week before is over in the
# group's zone, whichever it is. The week is the ISO week of seven days before the run's interval end.
WEEK = "{{ (data_interval_end - macros.timedelta(days=7)).strftime('%G-W%V') }}"


def groups(folder: str) -> list[tuple[str, Path]]:
    """The groups of a groups folder: `(id, config file)` of each `*.toml` with a valid, unique `id`.

    A file without one is left out with an error in the DAG processor's log, so that one bad file does
    not stop every other group's DAGs.
    """
    found: dict[str, Path] = {}
    for path in sorted(Path(folder).glob("*.toml")):
        try:
            group_id = tomllib.loads(path.read_text(encoding="utf-8")).get("id")
        except (OSError, tomllib.TOMLDecodeError) as error:
            LOG.error("Earshot: skipping the group config %s: %s", path, error)
            continue
        if not isinstance(group_id, str) or not GROUP_ID.match(group_id):
            LOG.error("Earshot: skipping %s: it needs `id`, 1-32 of a-z, 0-9, `-`, `_`", path)
        elif group_id in found:
            LOG.error("Earshot: skipping %s: the id %r is %s's too", path, group_id, found[group_id])
        else:
            found[group_id] = path
    return list(found.items())


def build(group: str | None, config: Path | None) -> list[DAG]:
    """The three DAGs of one group (`group` None: the deployment's single group, as named before groups)."""
    prefix = "earshot" if group is None else f"earshot_{group}"
    env = ENV if config is None else {**ENV, "EARSHOT_GROUP_CONFIG": str(config)}
    tags = ["earshot"] if group is None else ["earshot", f"group:{group}"]
    # Several groups share the Spotify quota of their common apps: their calls queue in one pool.
    spotify = {} if group is None else {"pool": SPOTIFY_POOL}
    # What the three DAGs share: one run at a time, no catch-up, retries, the group's tags.
    shared = {
        "start_date": START,
        "catchup": False,
        "max_active_runs": 1,
        "default_args": DEFAULT_ARGS,
        "tags": tags,
        "doc_md": __doc__,
    }

    def step(task_id: str, command: str, **kwargs) -> BashOperator:
        """One binary as a task; `append_env` keeps the worker's environment (where the secrets live).
        EARSHOT_STEP names the task: the binary records its run for the operator's metrics."""
        return BashOperator(
            task_id=task_id,
            bash_command=f"{BIN}/{command}",
            env={**env, "EARSHOT_STEP": task_id},
            append_env=True,
            **kwargs,
        )

    with DAG(
        dag_id=f"{prefix}_recently_played", schedule="@hourly", dagrun_timeout=timedelta(minutes=55), **shared
    ) as recently_played:
        fetch = step("fetch_recently_played", "data-fetcher fetch --what recently-played --max-wait 600", **spotify)
        convert = step("convert_recently_played", "json-converter recently-played")
        # Streaming histories members imported (`data-fetcher import`) since the last run: usually nothing.
        convert_history = step("convert_streaming_history", "json-converter streaming-history")
        # Their podcast episodes and audiobook chapters, kept apart from the music (`rawdata_spoken`).
        convert_spoken = step("convert_spoken_history", "json-converter spoken-history")
        # Listens friends beyond Spotify sent to the listen API (or imported from another service).
        convert_listens = step("convert_listens", "json-converter listens")
        upload = step("upload_recently_played", "data-upload recently-played")
        collections = step("collections_recently_played", "create-collections recently-played")
        fetch >> convert >> upload >> collections
        [convert_history, convert_spoken, convert_listens] >> upload

    with DAG(dag_id=f"{prefix}_daily", schedule="@daily", dagrun_timeout=timedelta(hours=3), **shared) as daily:
        fetch_top = step("fetch_top", "data-fetcher fetch --what top --max-wait 600", **spotify)
        convert_tracks = step("convert_top_tracks", "json-converter top-tracks")
        convert_artists = step("convert_top_artists", "json-converter top-artists")
        upload_top = step("upload_top", "data-upload all")
        collections_tracks = step("collections_top_tracks", "create-collections top-tracks")
        collections_artists = step("collections_top_artists", "create-collections top-artists")
        export = step("export", "gcs-export --snapshot {{ ts_nodash }}Z")
        analytics = step("analytics", "analytics --engine polars --snapshot {{ ts_nodash }}Z")
        fetch_top >> [convert_tracks, convert_artists] >> upload_top >> [collections_tracks, collections_artists]
        [collections_tracks, collections_artists] >> export >> analytics
        # A week before a friend's authorisation ends, and once it has: one message to the group's chat.
        step("remind_reconnect", "recap --reminders --max-wait 600")
        # A friend with no new play for 48 h, or a step failing 3 runs in a row: one message to the
        # group's chat when it begins, one when it ends. It waits for nothing, so it runs when the
        # other tasks fail.
        step("stall_alarm", "recap --alarms --max-wait 600")
        # Imported streaming-history plays gain ids one track a request; the hourly build picks them up.
        # A long Retry-After stops it cleanly with exit 3: skipped, it goes on at the next run.
        step(
            "enrich_imported_tracks",
            "data-fetcher enrich --max-requests 500 --max-wait 600",
            skip_on_exit_code=3,
            **spotify,
        )

        # A deployment switch, read from the environment at parse time (no database call at import).
        if os.environ.get("EARSHOT_SPARK_ON_DATAPROC", "false") == "true":
            region = setting("earshot_dataproc_region", "europe-west1")
            cluster = "earshot-{{ ds_nodash }}" if group is None else f"earshot-{group}-{{{{ ds_nodash }}}}"
            shape = setting(
                "earshot_dataproc_shape",
                "--num-workers=2 --master-machine-type=n2-standard-2 --worker-machine-type=n2-standard-2",
            )
            create = BashOperator(
                task_id="dataproc_create",
                bash_command=f"gcloud dataproc clusters create {cluster} --region={region} {shape} --max-idle=30m",
            )
            submit = step(
                "analytics_spark",
                "analytics --engine spark --snapshot {{ ts_nodash }}Z"
                f" --spark-submit 'gcloud dataproc jobs submit pyspark --cluster={cluster} --region={region}'"
                f" --spark-job {setting('earshot_spark_job', 'gs://bucket/earshot/jobs/earshot_job.py')}"
                f" --spark-sql {setting('earshot_spark_sql', 'gs://bucket/earshot/jobs/sql')}",
            )
            delete = BashOperator(
                task_id="dataproc_delete",
                bash_command=f"gcloud dataproc clusters delete {cluster} --region={region} --quiet",
                trigger_rule="all_done",
            )
            export >> create >> submit >> delete
        # The same analytics on a cluster that is already there, e.g. `spark-submit --master spark://host:7077`
        # or `spark-submit --master yarn --deploy-mode client` (the job and SQL ship with each submit).
        if os.environ.get("EARSHOT_SPARK_ON_CLUSTER", "false") == "true":
            on_cluster = BashOperator(
                task_id="analytics_spark_cluster",
                bash_command=f"{BIN}/analytics --engine spark --snapshot {{{{ ts_nodash }}}}Z",
                env={
                    **env,
                    "EARSHOT_SPARK_SUBMIT": setting("earshot_spark_submit", "spark-submit --master local[2]"),
                    "EARSHOT_STEP": "analytics_spark_cluster",
                },
                append_env=True,
            )
            export >> on_cluster

    with DAG(dag_id=f"{prefix}_weekly", schedule="0 12 * * 1", dagrun_timeout=timedelta(hours=2), **shared) as weekly:
        export_week = step("export_week", "gcs-export --snapshot {{ ts_nodash }}Z")
        analytics_week = step(
            "analytics_week", f"analytics --engine polars --snapshot {{{{ ts_nodash }}}}Z --period {WEEK}"
        )
        # Destinations' URLs are secrets in the workers' environment (or files), named by the group config.
        post_recap = step("post_recap", f"recap --period {WEEK} --max-wait 600")
        export_week >> analytics_week >> post_recap

    return [recently_played, daily, weekly]


# Read when the file is parsed: the DAGs' shapes depend on it (no database call at import).
GROUPS_DIR = os.environ.get("EARSHOT_GROUPS_DIR", "")
for _group, _config in groups(GROUPS_DIR) if GROUPS_DIR else [(None, None)]:
    for _dag in build(_group, _config):
        globals()[_dag.dag_id] = _dag
