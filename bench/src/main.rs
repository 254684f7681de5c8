//! `tachigo-bench`: the load-test binary for tachigo-auth.
//!
//! Parses the CLI, runs one scenario through the closed-loop driver (optionally
//! preceded by the baseline scenario in the same process, so its throughput can
//! be reported as a ratio to the baseline) and prints the report. Adding a
//! scenario means one file in `scenarios/`, one `ScenarioName` variant and one
//! match arm in `run_scenario`. `refresh-pair` runs two scenarios side by side
//! (`refresh_pair.rs`); `ceiling` drives the server with the external `wrk`
//! (`ceiling.rs`); `cluster` drives three nodes and then one (`cluster.rs`).

/// The server's allocator (`src/main.rs`), so in-process engine scenarios
/// measure the engine as the server runs it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod ceiling;
mod cluster;
mod cpu_time;
mod driver;
mod http;
mod oauth_flow;
mod raw_http;
mod refresh_pair;
mod report;
mod scenarios;
mod server_process;
mod store_choice;

use std::time::Duration;

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};
use reqwest::Url;

use crate::report::Report;
use crate::scenarios::baseline::Baseline;
use crate::scenarios::dashboard::{Dashboard, MeOnly, Mixed, RefreshOnly};
use crate::scenarios::engine::{EngineActors, EngineRead, EngineRotate, EngineSign};
use crate::scenarios::extension::Extension;
use crate::scenarios::forgot_password::ForgotPassword;
use crate::scenarios::get_session::GetSession;
use crate::scenarios::oauth_callback::OAuthCallback;
use crate::scenarios::provider_token::ProviderToken;
use crate::scenarios::readyz::Readyz;
use crate::scenarios::siwe::Siwe;
use crate::scenarios::token_refresh::TokenRefresh;

#[derive(Parser)]
#[command(version, about = "Load tests for tachigo-auth")]
struct Cli {
    /// Scenario to run.
    #[arg(value_enum)]
    scenario: ScenarioName,
    #[command(flatten)]
    options: Options,
    /// First run the baseline scenario with the same settings, then report the
    /// scenario's throughput as a ratio to the baseline's.
    #[arg(long)]
    with_baseline: bool,
    /// `refresh-pair` and `ceiling` only: how many rounds (the pair swaps its order every round).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
    /// Print one JSON object per report (one line each) instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ScenarioName {
    /// Bare warp endpoint embedded in this process: the reference figure.
    Baseline,
    /// In-process engine: durable refresh-token rotations.
    EngineRotate,
    /// In-process engine: session liveness reads.
    EngineRead,
    /// In-process engine: access tokens signed (the EdDSA cost of every refresh and login).
    EngineSign,
    /// In-process engine: RSS per live actor and RSS under a bounded live set.
    EngineActors,
    /// Dashboard: each user logs in once, then loops cookie refresh and `/me` (release server, durable).
    Dashboard,
    /// Dashboard: durable cookie refreshes only.
    DashboardRefresh,
    /// Dashboard: `/me` only (access-token check plus session liveness).
    DashboardMe,
    /// Twitch panel logins (fresh Twitch JWT per request) against the release server.
    Extension,
    /// `GET /api/auth/get-session` with live web sessions, against the release server.
    GetSession,
    /// Whole social sign-ins (sign-in → provider → callback) against the release server.
    OauthCallback,
    /// `POST /api/auth/get-access-token` for live web sessions whose provider tokens are kept sealed (release server).
    ProviderToken,
    /// Whole Sign-In with Ethereum sign-ins (nonce → signed EIP-4361 message → verify) against the release server.
    Siwe,
    /// `GET /readyz` with `--users` users stored (default 30,000): must not cost more with more users.
    Readyz,
    /// `POST /api/v1/auth/forgot-password`, registered and unknown addresses alternating: per-class latency (release server).
    ForgotPassword,
    /// OAuth 2.1 `POST /oauth2/token` refresh rotations, native client (release server, durable).
    TokenRefresh,
    /// `dashboard-refresh` and `token-refresh` side by side, identical settings, each with its own baseline.
    RefreshPair,
    /// `wrk` against /healthz and get-session (none, live) beside a bare warp endpoint in its own process.
    Ceiling,
    /// get-session and dashboard-refresh round-robin over three cluster nodes on one PostgreSQL, then on one node.
    Cluster,
    /// The bare warp endpoint alone, until killed (used by `ceiling`).
    #[value(hide = true)]
    ServeBaseline,
}

/// Settings shared by every scenario; passed to `Scenario::setup` and the driver.
#[derive(clap::Args)]
pub struct Options {
    /// Target server of HTTP scenarios (loopback only). The baseline always
    /// drives its own embedded endpoint.
    #[arg(long, value_parser = http::parse_loopback_url)]
    pub url: Option<Url>,
    /// Number of concurrent closed-loop workers.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: u32,
    /// Measured duration in seconds (after the warmup).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub duration: u64,
    /// Warmup in seconds: load is applied but not recorded.
    #[arg(long, default_value_t = 2)]
    pub warmup: u64,
    /// Number of distinct users a scenario spreads its load over (scenario default if absent).
    #[arg(long)]
    pub users: Option<u64>,
    /// The store behind the engine and the spawned server (not used with --url).
    #[arg(long, value_enum, default_value = "sled")]
    pub store: store_choice::StoreKind,
    /// The HTTP client of the measured loop: `reqwest` (every scenario) or `raw`
    /// (`raw_http.rs`, a lean keep-alive HTTP/1.1 client: `baseline` and the
    /// dashboard scenarios), which leaves the shared CPUs to the server.
    #[arg(long, value_enum, default_value = "reqwest")]
    pub client: ClientKind,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClientKind {
    Reqwest,
    Raw,
}

impl Options {
    pub fn duration(&self) -> Duration {
        Duration::from_secs(self.duration)
    }

    pub fn warmup(&self) -> Duration {
        Duration::from_secs(self.warmup)
    }
}

async fn run_scenario(name: ScenarioName, options: &Options) -> anyhow::Result<Report> {
    match name {
        ScenarioName::Baseline => driver::run::<Baseline>(options).await,
        ScenarioName::EngineRotate => driver::run::<EngineRotate>(options).await,
        ScenarioName::EngineRead => driver::run::<EngineRead>(options).await,
        ScenarioName::EngineSign => driver::run::<EngineSign>(options).await,
        ScenarioName::EngineActors => driver::run::<EngineActors>(options).await,
        ScenarioName::Extension => driver::run::<Extension>(options).await,
        ScenarioName::GetSession => driver::run::<GetSession>(options).await,
        ScenarioName::OauthCallback => driver::run::<OAuthCallback>(options).await,
        ScenarioName::Readyz => driver::run::<Readyz>(options).await,
        ScenarioName::Siwe => driver::run::<Siwe>(options).await,
        ScenarioName::ProviderToken => driver::run::<ProviderToken>(options).await,
        ScenarioName::ForgotPassword => driver::run::<ForgotPassword>(options).await,
        ScenarioName::TokenRefresh => driver::run::<TokenRefresh>(options).await,
        ScenarioName::RefreshPair
        | ScenarioName::Ceiling
        | ScenarioName::Cluster
        | ScenarioName::ServeBaseline => {
            unreachable!("these run outside the driver (see main)")
        }
        ScenarioName::Dashboard => driver::run::<Dashboard<Mixed>>(options).await,
        ScenarioName::DashboardRefresh => driver::run::<Dashboard<RefreshOnly>>(options).await,
        ScenarioName::DashboardMe => driver::run::<Dashboard<MeOnly>>(options).await,
    }
}

fn print(report: &Report, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(report)?);
    } else {
        println!("{report}");
    }
    Ok(())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if cli.scenario == ScenarioName::Baseline
        && (cli.options.url.is_some() || cli.options.users.is_some())
    {
        Cli::command()
            .error(
                ErrorKind::ArgumentConflict,
                "the baseline drives its own embedded endpoint: it takes neither --url nor --users",
            )
            .exit();
    }
    if cli.rounds != 1
        && !matches!(
            cli.scenario,
            ScenarioName::RefreshPair | ScenarioName::Ceiling
        )
    {
        Cli::command()
            .error(
                ErrorKind::ArgumentConflict,
                "--rounds applies to refresh-pair and ceiling only",
            )
            .exit();
    }
    if cli.options.client == ClientKind::Raw
        && !matches!(
            cli.scenario,
            ScenarioName::Baseline
                | ScenarioName::Dashboard
                | ScenarioName::DashboardRefresh
                | ScenarioName::DashboardMe
        )
    {
        Cli::command()
            .error(
                ErrorKind::ArgumentConflict,
                "--client raw applies to baseline and the dashboard scenarios only",
            )
            .exit();
    }
    if cli.scenario == ScenarioName::Cluster {
        let refusal = if cli.options.url.is_some() {
            Some("cluster starts its own nodes: it takes no --url")
        } else if cli.with_baseline {
            Some("cluster compares three nodes with one in the same run: it takes no --with-baseline")
        } else if cli.options.store == store_choice::StoreKind::Sled
            && matches.value_source("store") == Some(ValueSource::CommandLine)
        {
            Some("cluster nodes share one PostgreSQL database (a cluster cannot run on sled): leave out --store or pass --store postgres")
        } else {
            None
        };
        if let Some(refusal) = refusal {
            Cli::command()
                .error(ErrorKind::ArgumentConflict, refusal)
                .exit();
        }
        cli.options.store = store_choice::StoreKind::Postgres;
    }
    match cli.scenario {
        ScenarioName::ServeBaseline => return ceiling::serve_baseline().await,
        ScenarioName::Ceiling => return ceiling::run(&cli.options, cli.rounds, cli.json).await,
        _ => {}
    }
    store_choice::prepare(cli.options.store).await?;
    if cli.scenario == ScenarioName::Cluster {
        return cluster::run(&cli.options, cli.json).await;
    }
    if cli.scenario == ScenarioName::RefreshPair {
        // Always with baselines: one before each scenario run.
        return refresh_pair::run(&cli.options, cli.rounds, cli.json).await;
    }
    let baseline = if cli.with_baseline {
        let report = driver::run::<Baseline>(&cli.options).await?;
        print(&report, cli.json)?;
        Some(report)
    } else {
        None
    };
    let mut report = run_scenario(cli.scenario, &cli.options).await?;
    if cli.scenario != ScenarioName::Baseline && cli.options.url.is_none() {
        report.store = Some(store_choice::name());
    }
    if let Some(baseline) = baseline {
        report.ratio_to_baseline = Some(report.throughput_per_s / baseline.throughput_per_s);
    }
    print(&report, cli.json)
}
