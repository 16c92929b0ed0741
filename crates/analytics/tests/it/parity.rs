//! Both engines on the fixture group's snapshot: Spark (for real, local mode, through spark-submit)
//! gives the same answer as polars for every deterministic metric; the recommendations' top-N sets
//! agree (collaborative filtering on both); ALS (Spark only) has the right shape and never recommends a
//! track the member played.

use std::collections::{BTreeMap, BTreeSet};

use analytics::snapshot::Filters;
use analytics::spark::SparkOptions;
use analytics::tables::rows;
use analytics::{EngineChoice, analyse_with, save};
use earshot_tests::{exported_snapshot, exported_snapshot_with, fixture_group_config};
use serde_json::{Map, Value};

/// `EARSHOT_SPARK_SUBMIT`, or the spark-submit in the venv scripts/test.sh makes.
fn submit() -> String {
    if let Ok(command) = std::env::var(earshot_core::env::EARSHOT_SPARK_SUBMIT) {
        return command;
    }
    let local = earshot_core::env::cache_dir()
        .join("venv/bin/spark-submit")
        .display()
        .to_string();
    assert!(
        std::path::Path::new(&local).is_file(),
        "Spark is not installed: run the tests through scripts/test.sh"
    );
    format!("{local} --master local[2] --conf spark.ui.enabled=false")
}

/// A row as comparable text: integers and floats rounded to 9 significant places, so `u32` (polars
/// counts) and `i64` (Spark counts) agree.
fn canonical(row: &Map<String, Value>) -> String {
    let mut parts: Vec<String> = Vec::new();
    for (key, value) in row {
        let text = match value.as_f64() {
            Some(x) => format!("{:.9e}", x),
            None => value.to_string(),
        };
        parts.push(format!("{key}={text}"));
    }
    parts.sort();
    parts.join(",")
}

fn canonical_rows(frame: &polars::prelude::DataFrame) -> Vec<String> {
    let mut out: Vec<String> = rows(frame).iter().map(canonical).collect();
    out.sort();
    out
}

/// Every deterministic metric of two runs is the same table (recommendation scores are compared as
/// top-N sets by the caller: float sums may order ties differently).
fn assert_same_metrics(polars: &analytics::RunOutput, spark: &analytics::RunOutput) {
    for (metric, frame) in &polars.metrics {
        let other = spark
            .metrics
            .get(metric)
            .unwrap_or_else(|| panic!("Spark did not compute `{metric}`"));
        assert_eq!(other.height(), frame.height(), "{metric}: row counts");
        if metric == "recommendation_scores" {
            continue;
        }
        let mut columns_p: Vec<&str> = frame
            .get_column_names()
            .iter()
            .map(|c| c.as_str())
            .collect();
        let mut columns_s: Vec<&str> = other
            .get_column_names()
            .iter()
            .map(|c| c.as_str())
            .collect();
        columns_p.sort();
        columns_s.sort();
        assert_eq!(columns_p, columns_s, "{metric}: columns");
        let (ours, theirs) = (canonical_rows(frame), canonical_rows(other));
        if let Some((a, b)) = ours.iter().zip(&theirs).find(|(a, b)| a != b) {
            panic!("{metric}: polars and Spark differ\npolars: {a}\nspark:  {b}");
        }
    }
}

/// The fixture group's whole history on polars, then on Spark through `submit` (runs `polars` and
/// `spark`).
async fn both_engines(
    storage: &earshot_core::Storage,
    submit: &str,
) -> anyhow::Result<(analytics::RunOutput, analytics::RunOutput)> {
    let group = fixture_group_config();
    let filters = Filters::default();
    let polars = analyse_with(
        storage,
        None,
        &filters,
        &group,
        Some("polars"),
        &EngineChoice::Polars,
    )
    .await?;
    let spark = EngineChoice::Spark(SparkOptions::from_sources(submit));
    let spark = analyse_with(storage, None, &filters, &group, Some("spark"), &spark).await?;
    Ok((polars, spark))
}

#[tokio::test]
async fn spark_and_polars_agree_on_every_metric() {
    // With the sixth friend's listens: the recording and artist keys that meet across services are
    // grouped by the same SQL views on both engines.
    let fixture = earshot_tests::Fixture {
        history: false,
        listens: true,
    };
    let (db, _dir, storage) =
        earshot_tests::exported_snapshot_of("analytics_parity", "p1", fixture).await;
    let (polars, spark) = both_engines(&storage, &submit()).await.unwrap();
    assert_eq!(spark.report_json()["meta"]["engine"], "spark");

    assert_same_metrics(&polars, &spark);
    let top_sets = |output: &analytics::RunOutput| -> BTreeMap<String, BTreeSet<String>> {
        let mut sets: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for member in output.report_json()["members"].as_array().unwrap() {
            let keys = member["recommendations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["track_key"].as_str().unwrap().to_string())
                .collect();
            sets.insert(member["id"].as_str().unwrap().to_string(), keys);
        }
        sets
    };
    assert_eq!(
        top_sets(&polars),
        top_sets(&spark),
        "collaborative filtering: the same top-N per member"
    );
    assert_eq!(
        polars.report_json()["taste_match"],
        spark.report_json()["taste_match"].clone(),
        "report sections agree"
    );

    // ALS, Spark only: up to 10 per member, every member, none already played.
    let als = rows(&spark.metrics["recommendations_als"]);
    let played: BTreeSet<(String, String)> = rows(&polars.metrics["member_tracks"])
        .iter()
        .map(|r| {
            (
                r["user_id"].as_str().unwrap().to_string(),
                r["track_key"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut per_member: BTreeMap<String, usize> = BTreeMap::new();
    for row in &als {
        let key = (
            row["user_id"].as_str().unwrap().to_string(),
            row["track_key"].as_str().unwrap().to_string(),
        );
        assert!(
            !played.contains(&key),
            "ALS recommended a played track: {key:?}"
        );
        *per_member.entry(key.0).or_default() += 1;
    }
    // Every member: the five on Spotify and the sixth friend, who scrobbles.
    assert_eq!(per_member.len(), 6, "{per_member:?}");
    assert!(
        per_member.values().all(|n| (1..=10).contains(n)),
        "{per_member:?}"
    );

    // Stored like the polars results: another run id, side by side.
    save::metric_rows(&db, &spark.run, &spark.metrics)
        .await
        .unwrap();
}

/// The rows of `output` whose comparison columns (the metric model's roles) name `member`.
fn comparisons_naming(output: &analytics::RunOutput, member: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (name, frame) in &output.metrics {
        let Some(table) = earshot_metrics::table(name) else {
            continue;
        };
        for row in rows(frame) {
            if table.comparison_columns().any(|c| row[c] == member) {
                found.push(format!("{name}: {row:?}"));
            }
        }
        if name == "recap_group" {
            for row in rows(frame) {
                if row["closest_a"] == member || row["closest_b"] == member {
                    found.push(format!("{name}: {row:?}"));
                }
            }
        }
    }
    found
}

/// A period run (`--period 2024-10`) with the streaming histories imported: the recap's "discovered"
/// artists read the history before the period (`links_all`), and the spoken plays (podcasts,
/// audiobooks) are cut to the period, each engine its own way; every metric still agrees. One friend
/// hides from comparisons: both engines leave them out of every pair, the closest pair and ALS, and
/// agree on the rest; the group's totals still count them.
#[tokio::test]
async fn spark_and_polars_agree_on_a_period_recap() {
    let (_db, _dir, storage) = exported_snapshot_with("analytics_parity_period", "p1", true).await;
    let group = fixture_group_config();
    let filters =
        Filters::for_period("2024-10".parse().unwrap(), chrono_tz::America::Los_Angeles).unwrap();
    let hidden = "chloe-r";
    let compared = analyse_with(
        &storage,
        None,
        &filters,
        &group,
        Some("compared"),
        &EngineChoice::Polars,
    )
    .await
    .unwrap();
    assert!(
        !comparisons_naming(&compared, hidden).is_empty(),
        "{hidden} is in pairs before hiding"
    );
    earshot_core::consent::set_hidden(&storage, hidden, true, chrono::Utc::now())
        .await
        .unwrap();
    let mut outputs = Vec::new();
    for engine in [
        EngineChoice::Polars,
        EngineChoice::Spark(SparkOptions::from_sources(&submit())),
    ] {
        outputs.push(
            analyse_with(&storage, None, &filters, &group, None, &engine)
                .await
                .unwrap(),
        );
    }
    assert_same_metrics(&outputs[0], &outputs[1]);
    for output in &outputs {
        let named = comparisons_naming(output, hidden);
        assert!(named.is_empty(), "{hidden} hides, yet: {named:?}");
        assert_eq!(
            rows(&output.metrics["member_summary"]),
            rows(&compared.metrics["member_summary"]),
            "the group's totals still count {hidden}"
        );
    }
    let als = rows(&outputs[1].metrics["recommendations_als"]);
    assert!(
        !als.is_empty() && als.iter().all(|r| r["user_id"] != hidden),
        "ALS is not trained on {hidden}"
    );
    for spoken in ["spoken_summary", "show_minutes", "shared_shows"] {
        assert!(
            outputs[0].metrics[spoken].height() > 0,
            "{spoken} has rows in October"
        );
    }
    let discovered = rows(&outputs[0].metrics["recap_discovered"]);
    assert!(!discovered.is_empty(), "October brings new artists");
    let plays_in_period = rows(&outputs[0].metrics["member_artists"]).len();
    assert!(
        discovered.len() < plays_in_period,
        "artists played before October are not discoveries"
    );
}

/// The folder of the venv's Spark scripts (`spark-submit`, `spark-class`): that of the
/// `EARSHOT_SPARK_SUBMIT` command when it names one by path, else the venv scripts/test.sh makes.
fn spark_bin() -> std::path::PathBuf {
    let configured = std::env::var(earshot_core::env::EARSHOT_SPARK_SUBMIT).ok();
    configured
        .as_deref()
        .and_then(|c| c.split_whitespace().next())
        .map(std::path::PathBuf::from)
        .and_then(|p| p.parent().map(std::path::Path::to_path_buf))
        .filter(|dir| dir.join("spark-class").is_file())
        .unwrap_or_else(|| earshot_core::env::cache_dir().join("venv/bin"))
}

/// Spark on a standalone cluster (a master and two workers, each its own JVM on loopback), as on
/// Dataproc or any cluster: the job is submitted to `spark://…`, its executors run in the workers, and
/// every metric equals polars'.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spark_on_a_standalone_cluster_agrees_with_polars() {
    if !earshot_testkit::spark_cluster::java_available() {
        eprintln!(
            "SKIPPED spark_on_a_standalone_cluster_agrees_with_polars: no `java` on this machine (scripts/test.sh installs one)"
        );
        return;
    }
    let bin = spark_bin();
    let cluster = earshot_testkit::spark_cluster::StandaloneCluster::start(&bin, 2).unwrap();
    let (_db, _dir, storage) = exported_snapshot("analytics_parity_cluster", "p1").await;
    let python = bin.join("python");
    let submit = [
        bin.join("spark-submit").display().to_string(),
        format!("--master {}", cluster.url()),
        "--conf spark.ui.enabled=false --conf spark.sql.shuffle.partitions=4".into(),
        "--conf spark.cores.max=2 --conf spark.executor.cores=1 --conf spark.executor.memory=1g"
            .into(),
        format!(
            "--conf spark.executor.extraJavaOptions={}",
            earshot_testkit::spark_cluster::QUICK_JIT
        ),
        format!("--conf spark.pyspark.python={}", python.display()),
    ]
    .join(" ");
    let (polars, spark) = both_engines(&storage, &submit)
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", cluster.logs()));
    assert_eq!(
        cluster.workers_that_ran_executors(),
        2,
        "the job's executors ran in both workers:\n{}",
        cluster.logs()
    );
    assert_same_metrics(&polars, &spark);
}
