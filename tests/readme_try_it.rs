//! The README's "Try it in two minutes" block, run exactly as written: bash
//! executes the fenced block taken from README.md, in a fresh directory, with
//! a `cargo` first on `PATH` that turns `cargo run --release -- ARGS` into the
//! server binary this test build made (so no second, release build is needed;
//! any other use of cargo in the block fails the test). The block's output
//! must show the login, the user behind the refreshed access token and the
//! JWKS that verifies it; the cookie jar it leaves must hold the httpOnly refresh
//! cookie and no body may show a refresh token.

mod support;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const PORT: u16 = 8080;

/// The first ```sh block after the "Try it in two minutes" heading.
fn try_it_block() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md is readable");
    let section = readme
        .split_once("## Try it in two minutes")
        .expect("the README has a \"Try it in two minutes\" section")
        .1;
    let block = section
        .split_once("```sh\n")
        .expect("the section has a ```sh block")
        .1;
    block
        .split_once("\n```")
        .expect("the block ends")
        .0
        .to_string()
        + "\n"
}

/// Kills the block's whole process group when dropped (a failed or hung run
/// leaves no server behind).
struct Group(u32);

impl Drop for Group {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-9", "--", &format!("-{}", self.0)])
            .status();
    }
}

#[test]
fn the_readme_try_it_block_works_as_written() {
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", PORT)).is_ok(),
        "the block talks to 127.0.0.1:{PORT}, which something else holds"
    );
    let dir = tempfile::TempDir::new().unwrap();
    let shim_dir = dir.path().join("bin");
    std::fs::create_dir(&shim_dir).unwrap();
    let shim = shim_dir.join("cargo");
    std::fs::write(
        &shim,
        format!(
            "#!/bin/sh\n\
             [ \"$1 $2 $3\" = 'run --release --' ] || {{ echo \"unexpected: cargo $*\" >&2; exit 97; }}\n\
             shift 3\n\
             exec '{}' \"$@\"\n",
            support::process::binary().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
    let work = dir.path().join("checkout");
    std::fs::create_dir(&work).unwrap();

    let mut child = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &try_it_block()])
        .current_dir(&work)
        .env(
            "PATH",
            format!("{}:{}", shim_dir.display(), std::env::var("PATH").unwrap()),
        )
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("bash runs");
    let _group = Group(child.id());
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the block did not finish in 120 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        status.success(),
        "the block failed ({status}):\n{stdout}\n{stderr}"
    );

    // Three JSON documents, one per line: login, /me, the JWKS.
    let lines: Vec<Value> = stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), 3, "login, /me and the JWKS: {stdout}");
    let (login, me, jwks) = (&lines[0], &lines[1], &lines[2]);
    assert_eq!(login["token_type"], "Bearer", "{login}");
    assert_eq!(login["user"]["email"], "ada@example.com");
    assert_eq!(me["user"]["email"], "ada@example.com", "{me}");
    assert_eq!(me["user"]["name"], "Ada");
    assert_eq!(me["user"]["id"], login["user"]["id"]);
    let keys = jwks["keys"].as_array().expect("a JWKS");
    assert!(!keys.is_empty());
    assert!(keys
        .iter()
        .all(|k| k["kty"] == "OKP" && k["crv"] == "Ed25519"));

    // The jar holds the rotated refresh cookie, httpOnly, for /api/v1/auth.
    let jar = std::fs::read_to_string(work.join("jar.txt")).expect("the cookie jar");
    let refresh: Vec<&str> = jar
        .lines()
        .filter(|l| l.contains("\ttachigo_refresh\t"))
        .collect();
    assert_eq!(refresh.len(), 1, "{jar}");
    assert!(refresh[0].starts_with("#HttpOnly_"), "{jar}");
    assert!(refresh[0].contains("\t/api/v1/auth\t"), "{jar}");
    let login_refresh = refresh[0].rsplit('\t').next().unwrap();
    assert!(
        !stdout.contains(login_refresh),
        "no refresh token in a body"
    );
    assert!(
        work.join("data").is_dir(),
        "the server kept its data in ./data"
    );
}
