//! The closed-loop load driver shared by every scenario.
//!
//! `concurrency` tokio tasks each call `Scenario::step` back to back until a
//! deadline. Operations completing during the warmup are not recorded; an
//! operation still in flight at the deadline is cancelled and not recorded, so
//! every loop stops by itself on time. Each task keeps its own histogram and
//! error counts, merged into one `Report` at the end.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use hdrhistogram::Histogram;
use tokio::task::JoinSet;
use tokio::time::{timeout_at, Instant};

use crate::cpu_time::CpuSample;
use crate::report::{self, Report};
use crate::Options;

/// A load scenario: built once by `setup`, then shared by all workers.
///
/// Implementations may write `async fn setup` / `async fn step`; the returned
/// futures must be `Send` so workers can run on the multi-thread runtime.
pub trait Scenario: Sized + Send + Sync + 'static {
    /// Name used in reports.
    const NAME: &'static str;

    /// Prepares the scenario (servers, clients, users...) before any load.
    fn setup(options: &Options) -> impl Future<Output = anyhow::Result<Self>> + Send;

    /// One operation. `iteration` counts this worker's steps from 0 (warmup
    /// included). `Err` carries the error *kind* (a short, low-cardinality label
    /// such as `"status 503"`), counted per kind in the report.
    fn step(
        &self,
        worker: usize,
        iteration: u64,
    ) -> impl Future<Output = Result<(), String>> + Send;

    /// Scenario-specific figures reported under `extra`, read after the run.
    fn extra(&self) -> Option<serde_json::Value> {
        None
    }

    /// The server process this scenario started, whose CPU time is reported.
    fn server_pid(&self) -> Option<u32> {
        None
    }

    /// Every server process the scenario drives (several cluster nodes), whose
    /// CPU time is reported as one sum; [`server_pid`](Self::server_pid) unless
    /// overridden.
    fn server_pids(&self) -> Vec<u32> {
        self.server_pid().into_iter().collect()
    }
}

/// What one worker recorded during the measured window.
struct WorkerStats {
    latency_us: Histogram<u64>,
    errors: BTreeMap<String, u64>,
}

/// Sets the scenario up, drives it for warmup + duration and returns its report.
pub async fn run<S: Scenario>(options: &Options) -> anyhow::Result<Report> {
    let scenario = Arc::new(S::setup(options).await?);
    run_built(scenario, options).await
}

/// [`run`] for a scenario already built, by a caller that prepares what
/// `setup` cannot be told through `Options` (the `cluster` scenario's nodes)
/// and reads the scenario again afterwards: drives it for warmup + duration
/// and returns its report.
pub async fn run_built<S: Scenario>(scenario: Arc<S>, options: &Options) -> anyhow::Result<Report> {
    eprintln!(
        "running {}: {} workers, {}s warmup + {}s measured",
        S::NAME,
        options.concurrency,
        options.warmup,
        options.duration
    );
    let measure_from = Instant::now() + options.warmup();
    let deadline = measure_from + options.duration();
    let server_pids = scenario.server_pids();
    let cpu = tokio::spawn(async move {
        tokio::time::sleep_until(measure_from).await;
        let start = CpuSample::now(&server_pids);
        tokio::time::sleep_until(deadline).await;
        (start, CpuSample::now(&server_pids))
    });

    let mut workers = JoinSet::new();
    for worker in 0..options.concurrency as usize {
        let scenario = Arc::clone(&scenario);
        workers.spawn(async move {
            let mut stats = WorkerStats {
                latency_us: report::new_histogram(),
                errors: BTreeMap::new(),
            };
            for iteration in 0.. {
                // Steps that never wait must still yield and see the deadline.
                tokio::task::consume_budget().await;
                let started = Instant::now();
                if started >= deadline {
                    break;
                }
                let Ok(outcome) = timeout_at(deadline, scenario.step(worker, iteration)).await
                else {
                    break;
                };
                let finished = Instant::now();
                if finished < measure_from {
                    continue;
                }
                match outcome {
                    Ok(()) => {
                        let us = (finished - started).as_micros();
                        stats
                            .latency_us
                            .saturating_record(u64::try_from(us).unwrap_or(u64::MAX).max(1));
                    }
                    Err(kind) => *stats.errors.entry(kind).or_default() += 1,
                }
            }
            stats
        });
    }

    let mut latency_us = report::new_histogram();
    let mut errors = BTreeMap::new();
    while let Some(stats) = workers.join_next().await {
        let stats = stats?;
        latency_us.add(&stats.latency_us)?;
        for (kind, count) in stats.errors {
            *errors.entry(kind).or_default() += count;
        }
    }
    let (cpu_start, cpu_end) = cpu.await?;
    let mut report = Report::new(S::NAME, options, &latency_us, errors, scenario.extra());
    report.cpu_us_per_op = cpu_end.per_op_since(&cpu_start, latency_us.len());
    Ok(report)
}
