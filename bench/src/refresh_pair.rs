//! `refresh-pair`: `dashboard-refresh` and `token-refresh` in one command, with
//! the same `--concurrency`, `--duration`, `--warmup` and users (one per
//! worker), each against a server started from the same configuration
//! ([`token_refresh::server_config`], a fresh data directory each) or both
//! against one `--url` target, and each preceded by its own baseline, so the
//! two refresh paths — the same engine rotation behind two wire formats — can
//! be read side by side.
//!
//! `--rounds N` repeats the pair, swapping the order every round (dashboard
//! first in odd rounds, token first in even ones), so a machine that gets
//! busier or quieter during the run does not favour one of them. Every
//! baseline and scenario report is printed as usual (the scenario's with
//! `vs baseline`), then a side-by-side summary: one row per run, the mean per
//! scenario, and token-refresh over dashboard-refresh in throughput and in
//! ratio to baseline. With `--json`, the summary is one more JSON line
//! (`"scenario": "refresh-pair"`).

use serde::Serialize;

use crate::driver;
use crate::report::Report;
use crate::scenarios::baseline::Baseline;
use crate::scenarios::dashboard::{Dashboard, RefreshOnly};
use crate::scenarios::token_refresh::{self, TokenRefresh};
use crate::server_process::ServerProcess;
use crate::{print, store_choice, Options};

const DASHBOARD: &str = "dashboard-refresh";
const TOKEN: &str = "token-refresh";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Dashboard,
    Token,
}

#[derive(Serialize)]
struct Row {
    round: u32,
    scenario: &'static str,
    baseline_per_s: f64,
    throughput_per_s: f64,
    ratio_to_baseline: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

#[derive(Serialize)]
struct Mean {
    runs: usize,
    throughput_per_s: f64,
    ratio_to_baseline: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

#[derive(Serialize)]
struct Summary {
    scenario: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    store: Option<&'static str>,
    cpus: usize,
    concurrency: u32,
    users: u32,
    warmup_s: u64,
    duration_s: u64,
    rounds: u32,
    runs: Vec<Row>,
    dashboard_refresh: Mean,
    token_refresh: Mean,
    /// token-refresh / dashboard-refresh, on the means.
    token_over_dashboard_throughput: f64,
    token_over_dashboard_ratio: f64,
}

fn same_settings(options: &Options, url: Option<reqwest::Url>) -> Options {
    Options {
        url,
        concurrency: options.concurrency,
        duration: options.duration,
        warmup: options.warmup,
        users: options.users,
        store: options.store,
        // token-refresh speaks through reqwest only: both sides alike.
        client: crate::ClientKind::Reqwest,
    }
}

/// One scenario of the pair, on its own server (or the `--url` target).
async fn run_one(which: Which, options: &Options) -> anyhow::Result<Report> {
    let (server, target): (Option<ServerProcess>, Options) = match &options.url {
        Some(url) => (None, same_settings(options, Some(url.clone()))),
        None => {
            let server = token_refresh::spawn_server().await?;
            let url = reqwest::Url::parse(&server.base_url)?;
            (Some(server), same_settings(options, Some(url)))
        }
    };
    let mut report = match which {
        Which::Dashboard => driver::run::<Dashboard<RefreshOnly>>(&target).await?,
        Which::Token => driver::run::<TokenRefresh>(&target).await?,
    };
    // Stop the server before anything else is measured.
    drop(server);
    if options.url.is_none() {
        report.store = Some(store_choice::name());
    }
    Ok(report)
}

fn mean(rows: &[Row], scenario: &str) -> Mean {
    let of: Vec<&Row> = rows.iter().filter(|r| r.scenario == scenario).collect();
    let n = of.len().max(1) as f64;
    let avg = |f: fn(&Row) -> f64| of.iter().map(|r| f(r)).sum::<f64>() / n;
    Mean {
        runs: of.len(),
        throughput_per_s: avg(|r| r.throughput_per_s),
        ratio_to_baseline: avg(|r| r.ratio_to_baseline),
        p50_ms: avg(|r| r.p50_ms),
        p99_ms: avg(|r| r.p99_ms),
        errors: of.iter().map(|r| r.errors).sum(),
    }
}

pub async fn run(options: &Options, rounds: u32, json: bool) -> anyhow::Result<()> {
    if options
        .users
        .is_some_and(|u| u != u64::from(options.concurrency))
    {
        anyhow::bail!("refresh-pair uses one user per worker in both scenarios: leave out --users");
    }
    let mut rows = Vec::new();
    for round in 1..=rounds {
        let order = if round % 2 == 1 {
            [Which::Dashboard, Which::Token]
        } else {
            [Which::Token, Which::Dashboard]
        };
        for which in order {
            let baseline = driver::run::<Baseline>(options).await?;
            print(&baseline, json)?;
            let mut report = run_one(which, options).await?;
            let ratio = report.throughput_per_s / baseline.throughput_per_s;
            report.ratio_to_baseline = Some(ratio);
            print(&report, json)?;
            rows.push(Row {
                round,
                scenario: report.scenario,
                baseline_per_s: baseline.throughput_per_s,
                throughput_per_s: report.throughput_per_s,
                ratio_to_baseline: ratio,
                p50_ms: report.latency_ms.p50,
                p99_ms: report.latency_ms.p99,
                errors: report.errors.count,
            });
        }
    }
    let dashboard = mean(&rows, DASHBOARD);
    let token = mean(&rows, TOKEN);
    let summary = Summary {
        scenario: "refresh-pair",
        store: options.url.is_none().then(store_choice::name),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        concurrency: options.concurrency,
        users: options.concurrency,
        warmup_s: options.warmup,
        duration_s: options.duration,
        rounds,
        token_over_dashboard_throughput: token.throughput_per_s / dashboard.throughput_per_s,
        token_over_dashboard_ratio: token.ratio_to_baseline / dashboard.ratio_to_baseline,
        dashboard_refresh: dashboard,
        token_refresh: token,
        runs: rows,
    };
    if json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print_table(&summary);
    }
    Ok(())
}

fn print_table(s: &Summary) {
    let store = s
        .store
        .map(|st| format!(" | store {st}"))
        .unwrap_or_default();
    println!(
        "== refresh-pair | {} CPUs | concurrency {} | {} users each | {}s measured after {}s warmup{store}",
        s.cpus, s.concurrency, s.users, s.duration_s, s.warmup_s
    );
    println!(
        "  {:<6} {:<18} {:>11} {:>12} {:>11} {:>8} {:>8} {:>7}",
        "round",
        "scenario",
        "baseline/s",
        "refreshes/s",
        "vs baseline",
        "p50 ms",
        "p99 ms",
        "errors"
    );
    for r in &s.runs {
        println!(
            "  {:<6} {:<18} {:>11.0} {:>12.1} {:>11.3} {:>8.3} {:>8.3} {:>7}",
            r.round,
            r.scenario,
            r.baseline_per_s,
            r.throughput_per_s,
            r.ratio_to_baseline,
            r.p50_ms,
            r.p99_ms,
            r.errors
        );
    }
    for (name, m) in [(DASHBOARD, &s.dashboard_refresh), (TOKEN, &s.token_refresh)] {
        println!(
            "  {:<6} {:<18} {:>11} {:>12.1} {:>11.3} {:>8.3} {:>8.3} {:>7}",
            "mean", name, "", m.throughput_per_s, m.ratio_to_baseline, m.p50_ms, m.p99_ms, m.errors
        );
    }
    println!(
        "  token-refresh / dashboard-refresh: {:.3} x throughput, {:.3} x ratio to baseline",
        s.token_over_dashboard_throughput, s.token_over_dashboard_ratio
    );
}
