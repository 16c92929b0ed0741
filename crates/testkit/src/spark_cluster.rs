//! A standalone Spark cluster on loopback, for the analytics cluster test: one master and N workers,
//! each its own JVM started with the pinned pyspark's `spark-class` (as `start-master.sh` and
//! `start-worker.sh` would, in the foreground), so that a job submitted to `spark://127.0.0.1:<port>`
//! runs its executors in the workers' JVMs, as on a real cluster.
//!
//! scripts/test.sh installs pyspark into the cached venv and Java when the machine has none.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

/// How long the master and workers get to start and register.
const START_TIMEOUT: Duration = Duration::from_secs(180);
/// What a worker logs once the master has accepted it.
const REGISTERED: &str = "Successfully registered with master";
/// What a worker logs when the master has it start an executor.
const EXECUTOR_LAUNCHED: &str = "Asked to launch executor";

/// A running cluster. Dropping it kills every process.
#[derive(Debug)]
pub struct StandaloneCluster {
    children: Vec<Child>,
    port: u16,
    dir: tempfile::TempDir,
    workers: usize,
}

/// Whether a `java` runs here (Spark needs one).
pub fn java_available() -> bool {
    Command::new("java")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The JVM option that stops at the quick JIT tier: for the daemons, and for the executors
/// (`spark.executor.extraJavaOptions`) of a job submitted to the cluster.
pub const QUICK_JIT: &str = "-XX:TieredStopAtLevel=1";

impl StandaloneCluster {
    /// Start a master and `workers` workers (one core, 1 GiB each) from the Spark in `bin` (the folder
    /// holding `spark-class`), and wait until every worker has registered.
    pub fn start(bin: &Path, workers: usize) -> Result<StandaloneCluster> {
        let spark_class = bin.join("spark-class");
        if !spark_class.is_file() {
            bail!(
                "no `{}`: run the tests through scripts/test.sh",
                spark_class.display()
            );
        }
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let mut cluster = StandaloneCluster {
            children: Vec::new(),
            port,
            dir,
            workers,
        };
        let master = cluster.spawn(
            &spark_class,
            "master",
            &[
                "org.apache.spark.deploy.master.Master",
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--webui-port",
                &free_port()?.to_string(),
            ],
        )?;
        cluster.children.push(master);
        for i in 0..workers {
            let work = cluster.dir.path().join(format!("work-{i}"));
            std::fs::create_dir_all(&work)?;
            let worker = cluster.spawn(
                &spark_class,
                &format!("worker-{i}"),
                &[
                    "org.apache.spark.deploy.worker.Worker",
                    "--host",
                    "127.0.0.1",
                    "--cores",
                    "1",
                    "--memory",
                    "1g",
                    "--webui-port",
                    &free_port()?.to_string(),
                    "--work-dir",
                    &work.display().to_string(),
                    &cluster.url(),
                ],
            )?;
            cluster.children.push(worker);
        }
        let deadline = Instant::now() + START_TIMEOUT;
        while cluster.workers_logging(REGISTERED) < workers {
            if Instant::now() > deadline {
                bail!(
                    "the Spark cluster did not start in {START_TIMEOUT:?}; its logs:\n{}",
                    cluster.logs()
                );
            }
            if let Some(i) = cluster.exited() {
                bail!(
                    "a Spark process (#{i}) exited; the logs:\n{}",
                    cluster.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Ok(cluster)
    }

    /// The master's URL: `spark://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("spark://127.0.0.1:{}", self.port)
    }

    /// How many workers were asked to launch an executor (a job ran on them).
    pub fn workers_that_ran_executors(&self) -> usize {
        self.workers_logging(EXECUTOR_LAUNCHED)
    }

    /// Every process's log, for a failure message.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for name in std::iter::once("master".to_string())
            .chain((0..self.workers).map(|i| format!("worker-{i}")))
        {
            let text = std::fs::read_to_string(self.log(&name)).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            out.push_str(&format!("--- {name}\n"));
            for line in tail.into_iter().rev() {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    fn log(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.log"))
    }

    fn workers_logging(&self, text: &str) -> usize {
        (0..self.workers)
            .filter(|i| {
                std::fs::read_to_string(self.log(&format!("worker-{i}")))
                    .is_ok_and(|log| log.contains(text))
            })
            .count()
    }

    fn exited(&mut self) -> Option<usize> {
        self.children
            .iter_mut()
            .position(|c| c.try_wait().ok().flatten().is_some())
    }

    fn spawn(&self, spark_class: &Path, name: &str, args: &[&str]) -> Result<Child> {
        let log = File::create(self.log(name))?;
        Command::new(spark_class)
            .args(args)
            // Loopback only: no UI or REST endpoint on the machine's other addresses.
            .env("SPARK_LOCAL_IP", "127.0.0.1")
            .env("SPARK_MASTER_OPTS", "-Dspark.master.rest.enabled=false")
            // The quick JIT, as scripts/lib.sh gives the driver: a test's daemons live for minutes,
            // and the optimising compiler costs more CPU than it saves in that time.
            .env("SPARK_DAEMON_JAVA_OPTS", QUICK_JIT)
            .env("SPARK_WORKER_DIR", self.dir.path())
            .env("SPARK_LOG_DIR", self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting the Spark {name} ({})", spark_class.display()))
    }
}

impl Drop for StandaloneCluster {
    fn drop(&mut self) {
        // Workers first, so they do not log the master going away at length.
        for child in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
