"""The DAGs load, and their graphs, schedules and safety settings are as specified."""

from __future__ import annotations

import importlib
import re
from datetime import timedelta
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

DAGS = Path(__file__).resolve().parents[1] / "dags"
CORE = Path(__file__).resolve().parents[2] / "crates" / "core" / "src"


def load(monkeypatch: pytest.MonkeyPatch, spark: bool = False) -> DagBag:
    monkeypatch.setenv("EARSHOT_SPARK_ON_DATAPROC", "true" if spark else "false")
    return DagBag(dag_folder=str(DAGS))


def edges(dag) -> set[tuple[str, str]]:
    return {(task.task_id, down) for task in dag.tasks for down in task.downstream_task_ids}


def test_dags_load_without_import_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    bag = load(monkeypatch)
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {"earshot_recently_played", "earshot_daily", "earshot_weekly"}


def test_recently_played_runs_hourly_in_pipeline_order(monkeypatch: pytest.MonkeyPatch) -> None:
    dag = load(monkeypatch).get_dag("earshot_recently_played")
    assert dag.schedule == "@hourly", "Spotify keeps only the newest 50 plays: at least hourly"
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert edges(dag) == {
        ("fetch_recently_played", "convert_recently_played"),
        ("convert_recently_played", "upload_recently_played"),
        ("convert_streaming_history", "upload_recently_played"),
        ("convert_spoken_history", "upload_recently_played"),
        ("convert_listens", "upload_recently_played"),
        ("upload_recently_played", "collections_recently_played"),
    }


def test_daily_runs_top_items_export_and_analytics(monkeypatch: pytest.MonkeyPatch) -> None:
    dag = load(monkeypatch).get_dag("earshot_daily")
    assert dag.schedule == "@daily"
    assert dag.max_active_runs == 1
    assert edges(dag) == {
        ("fetch_top", "convert_top_tracks"),
        ("fetch_top", "convert_top_artists"),
        ("convert_top_tracks", "upload_top"),
        ("convert_top_artists", "upload_top"),
        ("upload_top", "collections_top_tracks"),
        ("upload_top", "collections_top_artists"),
        ("collections_top_tracks", "export"),
        ("collections_top_artists", "export"),
        ("export", "analytics"),
    }
    enrich = dag.get_task("enrich_imported_tracks")
    assert "data-fetcher enrich" in enrich.bash_command
    remind = dag.get_task("remind_reconnect")
    assert "/recap --reminders" in remind.bash_command
    assert not remind.upstream_task_ids, "the reminders wait for nothing"
    alarm = dag.get_task("stall_alarm")
    assert "/recap --alarms" in alarm.bash_command
    assert not alarm.upstream_task_ids, "the alarm waits for nothing: it must run when the others fail"
    assert enrich.skip_on_exit_code == [3], "a clean stop on a long Retry-After is not a failure"
    assert not any(t.task_id.startswith("dataproc") for t in dag.tasks), "the Spark branch is off by default"


def test_weekly_posts_the_recap_of_the_week_just_ended(monkeypatch: pytest.MonkeyPatch) -> None:
    import jinja2
    import pendulum

    dag = load(monkeypatch).get_dag("earshot_weekly")
    assert dag.max_active_runs == 1
    assert edges(dag) == {("export_week", "analytics_week"), ("analytics_week", "post_recap")}
    post = dag.get_task("post_recap").bash_command
    analytics = dag.get_task("analytics_week").bash_command
    assert "/recap --period " in post and "--period " in analytics
    week = post.split("--period ", 1)[1].split(" --", 1)[0]
    assert week in analytics, "the analytics and the post are of one week"

    def render(end: pendulum.DateTime) -> str:
        macros = type("macros", (), {"timedelta": timedelta})
        return jinja2.Template(week).render(data_interval_end=end, macros=macros)

    # The run of Monday 2024-11-04 12:00 UTC posts week 44 (28 Oct - 3 Nov), wherever the group lives;
    # across a year end, the ISO week-numbering year.
    assert render(pendulum.datetime(2024, 11, 4, 12, tz="UTC")) == "2024-W44"
    assert render(pendulum.datetime(2025, 1, 6, 12, tz="UTC")) == "2025-W01"
    assert render(pendulum.datetime(2021, 1, 4, 12, tz="UTC")) == "2020-W53"
    # Monday 12:00 UTC: the week before is over from UTC-12 to UTC+14.
    cron = dag.timetable.summary if hasattr(dag.timetable, "summary") else str(dag.schedule)
    assert "0 12 * * 1" in (str(dag.schedule), cron)


def test_every_task_retries_with_backoff_and_a_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    bag = load(monkeypatch)
    for dag_id in bag.dag_ids:
        for task in bag.get_dag(dag_id).tasks:
            assert task.retries >= 2, task.task_id
            assert task.retry_exponential_backoff, task.task_id
            assert task.execution_timeout is not None and task.execution_timeout <= timedelta(hours=1), task.task_id


def test_secrets_are_never_in_a_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    bag = load(monkeypatch, spark=True)
    for dag_id in bag.dag_ids:
        for task in bag.get_dag(dag_id).tasks:
            command = task.bash_command
            for secret in ("EARSHOT_TOKEN_KEY", "MONGODB_URI", "--mongodb-uri"):
                assert secret not in command, f"{task.task_id}: {command}"
            assert task.append_env or task.task_id.startswith("dataproc"), (
                f"{task.task_id} must keep the worker's environment"
            )


def test_each_binary_task_names_its_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """EARSHOT_STEP is the task's id for every task that runs an Earshot binary: its run is recorded
    under that name (state/steps/<task>.json) for the operator's metrics."""
    monkeypatch.setenv("EARSHOT_SPARK_ON_CLUSTER", "true")
    bag = load(monkeypatch, spark=True)
    named = 0
    for dag_id in bag.dag_ids:
        for task in bag.get_dag(dag_id).tasks:
            if task.task_id.startswith("dataproc_"):
                assert "EARSHOT_STEP" not in (task.env or {}), task.task_id
                continue
            assert task.env["EARSHOT_STEP"] == task.task_id, task.task_id
            named += 1
    assert named >= 18, named
    monkeypatch.setenv("EARSHOT_SPARK_ON_CLUSTER", "false")


def test_the_dataproc_branch_deletes_its_cluster_whatever_happened(monkeypatch: pytest.MonkeyPatch) -> None:
    dag = load(monkeypatch, spark=True).get_dag("earshot_daily")
    assert ("export", "dataproc_create") in edges(dag)
    assert ("dataproc_create", "analytics_spark") in edges(dag)
    assert ("analytics_spark", "dataproc_delete") in edges(dag)
    assert dag.get_task("dataproc_delete").trigger_rule == "all_done"
    assert "--engine spark" in dag.get_task("analytics_spark").bash_command
    assert "gcloud dataproc jobs submit pyspark" in dag.get_task("analytics_spark").bash_command
    importlib.invalidate_caches()


def rust_consts(path: Path) -> dict[str, str]:
    """`pub const NAME: &str = "value";` of a Rust file."""
    return dict(re.findall(r'pub const (\w+): &str = "([^"]*)";', path.read_text()))


def test_every_environment_variable_the_dag_reads_is_declared_in_core() -> None:
    """The DAG's env names and defaults are the ones `crates/core/src/env.rs` declares."""
    env = rust_consts(CORE / "env.rs")
    config = rust_consts(CORE / "config.rs")
    source = (DAGS / "earshot.py").read_text()
    # Env names the DAG reads or hands to its tasks: ENV's keys, setting()'s fallbacks, os.environ.
    names = set(re.findall(r'"(EARSHOT_\w+)":', source))
    names |= {name.upper() for name in re.findall(r"""setting\(\s*["'](\w+)["']""", source)}
    names |= set(re.findall(r'os\.environ\.get\("(\w+)"', source))
    assert "EARSHOT_SPARK_ON_DATAPROC" in names and "EARSHOT_STORAGE" in names
    undeclared = sorted(name for name in names if env.get(name) != name)
    assert undeclared == [], f"declare these in crates/core/src/env.rs: {undeclared}"
    # The defaults the tasks fall back to are the binaries' own.
    defaults = dict(re.findall(r'setting\("(earshot_\w+)", "([^"]*)"\)', source))
    assert defaults["earshot_storage"] == env["DEFAULT_STORAGE"]
    assert defaults["earshot_database"] == env["DEFAULT_DATABASE"]
    assert defaults["earshot_group_config"] == config["DEFAULT_CONFIG_FILE"]


def test_the_deployment_notes_name_every_task_and_every_binary_a_task_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    notes = (Path(__file__).parent.parent / "README.md").read_text()
    binaries = set()
    for dag in load(monkeypatch, spark=True).dags.values():
        for task in dag.tasks:
            assert f"`{task.task_id}`" in notes, f"airflow/README.md does not name the task {task.task_id}"
            run = re.search(r"\}\}/([a-z-]+) ", task.bash_command)
            if run:
                binaries.add(run.group(1))
    assert binaries >= {
        "data-fetcher",
        "json-converter",
        "data-upload",
        "create-collections",
        "gcs-export",
        "analytics",
    }
    copied = notes.split("target/release/{", 1)[1].split("}", 1)[0].replace("\n", "").replace(" ", "")
    for binary in binaries:
        assert binary in copied.split(","), f"airflow/README.md's Composer steps do not copy {binary}"


def test_the_cluster_branch_submits_the_spark_analytics_to_an_existing_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EARSHOT_SPARK_ON_CLUSTER", "true")
    dag = load(monkeypatch).get_dag("earshot_daily")
    task = dag.get_task("analytics_spark_cluster")
    assert ("export", "analytics_spark_cluster") in edges(dag)
    assert "--engine spark" in task.bash_command
    assert "earshot_spark_submit" in task.env["EARSHOT_SPARK_SUBMIT"]
    assert task.env["EARSHOT_STEP"] == "analytics_spark_cluster", "its runs are recorded like the others'"
    assert task.append_env, "the worker's environment (secrets) stays"
    monkeypatch.setenv("EARSHOT_SPARK_ON_CLUSTER", "false")
    assert "analytics_spark_cluster" not in load(monkeypatch).get_dag("earshot_daily").task_ids


GROUPS = Path(__file__).resolve().parents[2] / "fixtures" / "groups"


def test_a_groups_folder_makes_each_group_its_own_dags(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """One DAG file, a DAG factory: a config file per group, three DAGs per group, none for the single group."""
    folder = tmp_path / "groups"
    folder.mkdir()
    for config in GROUPS.glob("*.toml"):
        (folder / config.name).write_text(config.read_text())
    # Left out, each with an error in the log: no id, an id that is no group id, an id taken.
    (folder / "noid.toml").write_text('name = "No id"\n')
    (folder / "bad.toml").write_text('id = "Bad Id"\n')
    (folder / "twin.toml").write_text((GROUPS / "south.toml").read_text())
    monkeypatch.setenv("EARSHOT_GROUPS_DIR", str(folder))
    bag = load(monkeypatch)
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {
        f"earshot_{g}_{kind}" for g in ("north", "south") for kind in ("recently_played", "daily", "weekly")
    }
    pool = rust_consts(CORE / "scope.rs")["SPOTIFY_POOL"]
    for group in ("north", "south"):
        for kind in ("recently_played", "daily", "weekly"):
            dag = bag.get_dag(f"earshot_{group}_{kind}")
            assert f"group:{group}" in dag.tags
            for task in dag.tasks:
                assert task.env["EARSHOT_GROUP_CONFIG"] == str(folder / f"{group}.toml"), task.task_id
                calls_spotify = task.task_id in {"fetch_recently_played", "fetch_top", "enrich_imported_tracks"}
                assert (task.pool == pool) == calls_spotify, f"{dag.dag_id}.{task.task_id} is in pool {task.pool}"
        # The same graph as the single group's.
        single = load_single(monkeypatch).get_dag("earshot_daily")
        assert edges(bag.get_dag(f"earshot_{group}_daily")) == edges(single)
        monkeypatch.setenv("EARSHOT_GROUPS_DIR", str(folder))


def load_single(monkeypatch: pytest.MonkeyPatch) -> DagBag:
    monkeypatch.delenv("EARSHOT_GROUPS_DIR", raising=False)
    return load(monkeypatch)


def test_the_single_group_s_fetches_use_the_default_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """A deployment without a groups folder works as before: no pool to create."""
    bag = load_single(monkeypatch)
    for dag_id in bag.dag_ids:
        for task in bag.get_dag(dag_id).tasks:
            assert task.pool == "default_pool", task.task_id
