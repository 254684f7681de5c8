//! The result of one scenario run, as a table or as JSON with stable field names.
//!
//! Latency comes from an HDR histogram of successful operations (microsecond
//! resolution, 1 us to 60 s, 3 significant figures) and is reported in ms.
//! `requests` counts every operation completed in the measured window, errors
//! included; `throughput_per_s` counts successful ones only.

use std::collections::BTreeMap;
use std::fmt;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::cpu_time::CpuPerOp;
use crate::Options;

/// The histogram every worker records into: microseconds, 1 us ..= 60 s, 3 sig figs.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

#[derive(Serialize)]
pub struct Report {
    pub scenario: &'static str,
    /// The store behind the engine or server measured (`sled` / `postgres`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<&'static str>,
    /// Logical CPUs of this machine: load generator and server share them.
    pub cpus: usize,
    pub concurrency: u32,
    pub warmup_s: u64,
    pub duration_s: u64,
    pub requests: u64,
    pub errors: Errors,
    pub throughput_per_s: f64,
    pub latency_ms: Latency,
    /// CPU microseconds per successful operation, load generator and server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_us_per_op: Option<CpuPerOp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra: Option<serde_json::Value>,
    /// This run's throughput divided by the baseline's measured in the same process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_to_baseline: Option<f64>,
}

#[derive(Serialize)]
pub struct Errors {
    pub count: u64,
    pub by_kind: BTreeMap<String, u64>,
}

#[derive(Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Report {
    pub fn new(
        scenario: &'static str,
        options: &Options,
        latency_us: &Histogram<u64>,
        by_kind: BTreeMap<String, u64>,
        extra: Option<serde_json::Value>,
    ) -> Self {
        let errors = by_kind.values().sum::<u64>();
        let ms = |us: u64| us as f64 / 1000.0;
        let at = |q: f64| ms(latency_us.value_at_quantile(q));
        Report {
            store: None,
            scenario,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            concurrency: options.concurrency,
            warmup_s: options.warmup,
            duration_s: options.duration,
            requests: latency_us.len() + errors,
            errors: Errors {
                count: errors,
                by_kind,
            },
            throughput_per_s: latency_us.len() as f64 / options.duration as f64,
            latency_ms: Latency {
                p50: at(0.50),
                p90: at(0.90),
                p99: at(0.99),
                p999: at(0.999),
                max: ms(latency_us.max()),
            },
            cpu_us_per_op: None,
            extra,
            ratio_to_baseline: None,
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "== {} | {} CPUs | concurrency {} | {}s measured after {}s warmup",
            self.scenario, self.cpus, self.concurrency, self.duration_s, self.warmup_s
        )?;
        if let Some(store) = self.store {
            writeln!(f, "  store        {store:>12}")?;
        }
        writeln!(f, "  requests     {:>12}", self.requests)?;
        writeln!(f, "  errors       {:>12}", self.errors.count)?;
        for (kind, count) in &self.errors.by_kind {
            writeln!(f, "    {kind:<20} {count:>12}")?;
        }
        writeln!(f, "  throughput   {:>12.1} req/s", self.throughput_per_s)?;
        if let Some(ratio) = self.ratio_to_baseline {
            writeln!(f, "  vs baseline  {ratio:>12.3} x")?;
        }
        let l = &self.latency_ms;
        writeln!(
            f,
            "  latency ms   {:>9} {:>9} {:>9} {:>9} {:>9}",
            "p50", "p90", "p99", "p99.9", "max"
        )?;
        writeln!(
            f,
            "               {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
            l.p50, l.p90, l.p99, l.p999, l.max
        )?;
        if let Some(cpu) = &self.cpu_us_per_op {
            write!(f, "  cpu us/op    load generator {:.1}", cpu.load_generator)?;
            if let Some(server) = cpu.server {
                write!(f, ", server {server:.1}")?;
            }
            writeln!(f)?;
        }
        if let Some(extra) = &self.extra {
            writeln!(f, "  extra        {extra}")?;
        }
        Ok(())
    }
}
