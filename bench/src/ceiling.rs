//! `ceiling`: how close the server's cheapest answers come to the HTTP stack's
//! own ceiling, measured with an external load generator (`wrk`), as an
//! operator would.
//!
//! Two processes are started: the release `tachigo-auth` (sled, durable,
//! `RUST_LOG=info`, as deployed) and a bare warp endpoint on the same warp /
//! hyper versions as the server (`tachigo-bench serve-baseline`: `GET
//! /baseline`, a fixed 600-byte JSON body, `warp::serve`). One user signs up
//! through `POST /api/auth/sign-up/email`, which yields a live session cookie.
//! Then, for `--rounds` rounds, `wrk -t1 -c<concurrency> -d<duration>` is run
//! against, in turn: the bare endpoint, `GET /healthz`, `GET
//! /api/auth/get-session` without a cookie (answers `null`) and with the live
//! session. Each target's ratio is taken to the bare endpoint of the same
//! round; the report gives every round and the medians. Only one target is
//! loaded at a time; both servers idle otherwise.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;

use crate::server_process::{default_server_bin, ServerProcess};
use crate::Options;

/// What one round measures, in order.
const TARGETS: [&str; 4] = [
    "bare warp",
    "/healthz",
    "get-session (no cookie)",
    "get-session (live session)",
];

#[derive(Serialize)]
struct Row {
    round: u32,
    target: &'static str,
    requests_per_s: f64,
    ratio_to_bare: f64,
    p99_ms: f64,
    non_2xx: u64,
}

#[derive(Serialize)]
struct Median {
    target: &'static str,
    requests_per_s: f64,
    ratio_to_bare: f64,
}

#[derive(Serialize)]
struct Summary {
    scenario: &'static str,
    load_generator: String,
    cpus: usize,
    connections: u32,
    duration_s: u64,
    rounds: Vec<Row>,
    medians: Vec<Median>,
}

/// The bare warp endpoint, in a child process of its own.
struct BaselineProcess {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl BaselineProcess {
    async fn spawn() -> anyhow::Result<BaselineProcess> {
        let dir = tempfile::TempDir::new()?;
        let addr_file = dir.path().join("addr");
        let child = Command::new(std::env::current_exe()?)
            .arg("serve-baseline")
            .env("TACHIGO_BENCH_ADDR_FILE", &addr_file)
            .stdout(Stdio::null())
            .spawn()
            .context("starting the bare warp endpoint")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(addr) = std::fs::read_to_string(&addr_file) {
                if !addr.is_empty() {
                    return Ok(BaselineProcess {
                        child,
                        url: format!("http://{addr}/baseline"),
                        _dir: dir,
                    });
                }
            }
            if Instant::now() > deadline {
                bail!("the bare warp endpoint did not start within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for BaselineProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `serve-baseline`: serves the bare endpoint until killed, writing its address
/// to `TACHIGO_BENCH_ADDR_FILE`.
pub async fn serve_baseline() -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let file = std::env::var_os("TACHIGO_BENCH_ADDR_FILE")
        .map(PathBuf::from)
        .context("TACHIGO_BENCH_ADDR_FILE names the file for the address")?;
    std::fs::write(file, addr.to_string())?;
    warp::serve(crate::scenarios::baseline::route())
        .incoming(listener)
        .run()
        .await;
    Ok(())
}

/// What `wrk` printed, read.
struct WrkRun {
    requests_per_s: f64,
    p99_ms: f64,
    non_2xx: u64,
}

fn wrk(connections: u32, duration: u64, url: &str, cookie: Option<&str>) -> anyhow::Result<WrkRun> {
    let mut command = Command::new("wrk");
    command.args([
        "-t1",
        &format!("-c{connections}"),
        &format!("-d{duration}s"),
        "--latency",
    ]);
    if let Some(cookie) = cookie {
        command.args(["-H", &format!("Cookie: {cookie}")]);
    }
    let output = command
        .arg(url)
        .stderr(Stdio::inherit())
        .output()
        .context("running wrk (install it: apt-get install wrk)")?;
    if !output.status.success() {
        bail!("wrk failed: {}", String::from_utf8_lossy(&output.stdout));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    parse_wrk(&text).with_context(|| format!("reading wrk's output:\n{text}"))
}

fn parse_wrk(text: &str) -> anyhow::Result<WrkRun> {
    let requests_per_s = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .context("no Requests/sec line")?
        .trim()
        .parse()?;
    let p99_ms = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .map(|v| latency_ms(v.trim()))
        .transpose()?
        .unwrap_or(f64::NAN);
    let non_2xx = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .map(|v| v.trim().parse())
        .transpose()?
        .unwrap_or(0);
    Ok(WrkRun {
        requests_per_s,
        p99_ms,
        non_2xx,
    })
}

/// `1.23ms`, `850.00us`, `1.20s` in milliseconds.
fn latency_ms(value: &str) -> anyhow::Result<f64> {
    let (number, factor) = if let Some(v) = value.strip_suffix("us") {
        (v, 0.001)
    } else if let Some(v) = value.strip_suffix("ms") {
        (v, 1.0)
    } else if let Some(v) = value.strip_suffix('s') {
        (v, 1000.0)
    } else {
        bail!("unknown latency unit in {value:?}")
    };
    Ok(number.parse::<f64>()? * factor)
}

/// Signs one user up and returns the session cookie pair.
async fn live_session_cookie(base: &str) -> anyhow::Result<String> {
    let client = reqwest::Client::builder().no_proxy().build()?;
    let response = client
        .post(format!("{base}/api/auth/sign-up/email"))
        .header("origin", "http://localhost:3000")
        .json(&serde_json::json!({
            "email": "ceiling@bench.example",
            "password": "a long bench password",
            "name": "Ceiling",
        }))
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("sign-up answered {}", response.status());
    }
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("tachigo.session_token="))
        .and_then(|v| v.split(';').next())
        .map(str::to_string)
        .context("sign-up set no session cookie")
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

pub async fn run(options: &Options, rounds: u32, json: bool) -> anyhow::Result<()> {
    if options.url.is_some() || options.users.is_some() {
        bail!("ceiling starts its own server and uses one user: leave out --url and --users");
    }
    let version = Command::new("wrk")
        .arg("--version")
        .output()
        .context("wrk is needed for this scenario: apt-get install wrk")?;
    let load_generator = String::from_utf8_lossy(&version.stdout)
        .lines()
        .next()
        .unwrap_or("wrk")
        .trim()
        .to_string();
    let server = ServerProcess::spawn(&default_server_bin(), &[("RUST_LOG", "info")]).await?;
    let baseline = BaselineProcess::spawn().await?;
    let cookie = live_session_cookie(&server.base_url).await?;
    let urls = [
        baseline.url.clone(),
        format!("{}/healthz", server.base_url),
        format!("{}/api/auth/get-session", server.base_url),
        format!("{}/api/auth/get-session", server.base_url),
    ];
    eprintln!(
        "ceiling: {rounds} rounds of wrk -t1 -c{} -d{}s over {} targets",
        options.concurrency,
        options.duration,
        TARGETS.len()
    );
    // A short warmup of every target: connections, caches, the actor.
    for (i, url) in urls.iter().enumerate() {
        wrk(
            options.concurrency,
            1,
            url,
            (i == 3).then_some(cookie.as_str()),
        )?;
    }
    let mut rows = Vec::new();
    for round in 1..=rounds {
        let mut bare = f64::NAN;
        for (i, url) in urls.iter().enumerate() {
            let run = wrk(
                options.concurrency,
                options.duration,
                url,
                (i == 3).then_some(cookie.as_str()),
            )?;
            if i == 0 {
                bare = run.requests_per_s;
            }
            rows.push(Row {
                round,
                target: TARGETS[i],
                requests_per_s: run.requests_per_s,
                ratio_to_bare: run.requests_per_s / bare,
                p99_ms: run.p99_ms,
                non_2xx: run.non_2xx,
            });
        }
    }
    let medians: Vec<Median> = TARGETS
        .iter()
        .map(|target| {
            let of: Vec<&Row> = rows.iter().filter(|r| r.target == *target).collect();
            Median {
                target,
                requests_per_s: median(of.iter().map(|r| r.requests_per_s).collect()),
                ratio_to_bare: median(of.iter().map(|r| r.ratio_to_bare).collect()),
            }
        })
        .collect();
    let summary = Summary {
        scenario: "ceiling",
        load_generator,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        connections: options.concurrency,
        duration_s: options.duration,
        rounds: rows,
        medians,
    };
    if json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print_summary(&summary);
    }
    Ok(())
}

fn print_summary(s: &Summary) {
    println!(
        "== ceiling | {} | {} CPUs | wrk -t1 -c{} -d{}s | bare warp: warp::serve, same warp/hyper as the server",
        s.load_generator, s.cpus, s.connections, s.duration_s
    );
    println!(
        "  {:<6} {:<28} {:>12} {:>10} {:>9} {:>8}",
        "round", "target", "req/s", "× bare", "p99 ms", "non-2xx"
    );
    for r in &s.rounds {
        println!(
            "  {:<6} {:<28} {:>12.0} {:>10.3} {:>9.2} {:>8}",
            r.round, r.target, r.requests_per_s, r.ratio_to_bare, r.p99_ms, r.non_2xx
        );
    }
    for m in &s.medians {
        println!(
            "  {:<6} {:<28} {:>12.0} {:>10.3}",
            "median", m.target, m.requests_per_s, m.ratio_to_bare
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_output_is_read() {
        let text = "Running 2s test @ http://127.0.0.1:1/\n  1 threads and 32 connections\n  Latency Distribution\n     50%  220.00us\n     99%    1.20ms\n  200000 requests in 2.00s, 1 MB read\n  Non-2xx or 3xx responses: 3\nRequests/sec: 100000.50\nTransfer/sec:   1MB\n";
        let run = parse_wrk(text).unwrap();
        assert_eq!(run.requests_per_s, 100000.5);
        assert!((run.p99_ms - 1.2).abs() < 1e-9);
        assert_eq!(run.non_2xx, 3);
        assert!((latency_ms("850.00us").unwrap() - 0.85).abs() < 1e-9);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
