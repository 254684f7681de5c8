//! The operator command line: each command works on the server's data directory,
//! and bad input (arguments, passwords, configuration, a directory a server holds)
//! gets a clear error, a non-zero exit and no change to storage.

mod support;

use std::path::Path;

use support::process::{run_cli, ServerChild};

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string()
}

/// How many users the data directory holds (the database must not be in use):
/// an engine opened on it, stopped again and its directory lock let go before
/// this returns, so the next command can open it.
async fn user_count(data: &Path) -> usize {
    let mut config = tachigo_engine::config::Config::default();
    config.server.data_dir = data.to_path_buf();
    let engine = tachigo_engine::Engine::open(&config)
        .await
        .expect("an engine opens on the data directory");
    let count = engine.user_count().await.unwrap();
    engine.shutdown().await.unwrap();
    let released = engine.storage_release();
    drop(engine);
    assert!(released.await, "the data directory is let go");
    count as usize
}

fn refuses(output: &std::process::Output, needle: &str) {
    assert!(
        !output.status.success(),
        "expected a refusal, got success: {}",
        stdout(output)
    );
    let err = stderr(output);
    assert!(
        err.contains(needle),
        "stderr should mention `{needle}`: {err}"
    );
}

#[tokio::test]
async fn user_and_session_commands_work_on_the_data_directory() {
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path();
    let out = run_cli(
        data,
        &[
            "user",
            "create",
            "--email",
            "Ops@Example.com",
            "--name",
            "Ops",
            "--role",
            "admin",
            "--password-stdin",
        ],
        "a long passphrase\n",
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("<ops@example.com> roles=[admin]"),
        "{}",
        stdout(&out)
    );

    let out = run_cli(
        data,
        &[
            "user",
            "set-roles",
            "--email",
            "ops@example.com",
            "--role",
            "support",
            "--role",
            "admin",
        ],
        "",
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("roles=[admin,support]"),
        "{}",
        stdout(&out)
    );

    let out = run_cli(
        data,
        &["sessions", "list", "--email", "ops@example.com"],
        "",
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("no live sessions"));

    let out = run_cli(
        data,
        &["sessions", "revoke", "--email", "ops@example.com"],
        "",
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("revoked 0 session(s)"));

    let out = run_cli(data, &["keys", "rotate"], "", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("is published and signs from"),
        "{}",
        stdout(&out)
    );
    // A second rotation while the first key is still pending is refused.
    let out = run_cli(data, &["keys", "rotate"], "", &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("a rotation is already under way"),
        "{}",
        stderr(&out)
    );
    assert_eq!(user_count(data).await, 1);
}

#[tokio::test]
async fn bad_input_to_every_command_is_refused_and_changes_nothing() {
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path();
    let ok = run_cli(
        data,
        &[
            "user",
            "create",
            "--email",
            "first@example.com",
            "--password-stdin",
        ],
        "a long passphrase\n",
        &[],
    );
    assert!(ok.status.success(), "{}", stderr(&ok));

    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (
            vec!["user", "create", "--email", "x@example.com"],
            "",
            "--password-stdin is required",
        ),
        (
            vec![
                "user",
                "create",
                "--email",
                "not-an-email",
                "--password-stdin",
            ],
            "a long passphrase\n",
            "not a valid email",
        ),
        (
            vec![
                "user",
                "create",
                "--email",
                "x@example.com",
                "--password-stdin",
            ],
            "short\n",
            "at least 8 characters",
        ),
        (
            vec![
                "user",
                "create",
                "--email",
                "x@example.com",
                "--password-stdin",
            ],
            "",
            "no password",
        ),
        (
            vec![
                "user",
                "create",
                "--email",
                "x@example.com",
                "--role",
                "Bad Role!",
                "--password-stdin",
            ],
            "a long passphrase\n",
            "not a valid role",
        ),
        (
            vec![
                "user",
                "create",
                "--email",
                "first@example.com",
                "--password-stdin",
            ],
            "another passphrase\n",
            "already registered",
        ),
        (
            vec![
                "user",
                "set-roles",
                "--email",
                "nobody@example.com",
                "--role",
                "admin",
            ],
            "",
            "no user has the email",
        ),
        (
            vec![
                "user",
                "set-roles",
                "--email",
                "first@example.com",
                "--role",
                "UPPER",
            ],
            "",
            "not a valid role",
        ),
        (
            vec!["sessions", "list", "--email", "nobody@example.com"],
            "",
            "no user has the email",
        ),
        (
            vec![
                "sessions",
                "revoke",
                "--email",
                "first@example.com",
                "--id",
                "nope",
            ],
            "",
            "not a session id",
        ),
        (
            vec![
                "sessions",
                "revoke",
                "--email",
                "first@example.com",
                "--id",
                "6f1c8e1e-2f7e-4c0a-9a47-3d2b1c0e9f00",
            ],
            "",
            "no live session with that id",
        ),
        (vec!["user", "delete"], "", "unrecognized subcommand"),
    ];
    for (args, stdin, needle) in cases {
        let out = run_cli(data, &args, stdin, &[]);
        refuses(&out, needle);
    }
    assert_eq!(
        user_count(data).await,
        1,
        "no refused command created a user"
    );
}

#[tokio::test]
async fn bad_configuration_is_refused_naming_the_key() {
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("bad.toml");

    std::fs::write(&config, "[dashboard]\nalow_signup = true\n").unwrap();
    let out = run_cli(
        &data,
        &["serve", "--config", config.to_str().unwrap()],
        "",
        &[],
    );
    refuses(&out, "alow_signup");

    std::fs::write(&config, "[tokens]\naccess_ttl = \"soon\"\n").unwrap();
    let out = run_cli(
        &data,
        &["check", "--config", config.to_str().unwrap()],
        "",
        &[],
    );
    refuses(&out, "tokens.access_ttl");

    let out = run_cli(
        &data,
        &["serve"],
        "",
        &[("TACHIGO__ENGINE__MAX_LIVE_ACTORS", "many")],
    );
    refuses(&out, "engine.max_live_actors");

    let out = run_cli(
        &data,
        &["check", "--config", "/nonexistent/tachigo.toml"],
        "",
        &[],
    );
    refuses(&out, "cannot read config file");

    // A split deployment without a shared cookie domain cannot work: refused with the fix.
    std::fs::write(
        &config,
        "[server]\npublic_url = \"https://api.tachigo.example\"\ntrusted_origins = [\"https://app.tachigo.example\"]\n[cookies]\nsecure = true\n[oauth]\nfrontend_url = \"https://app.tachigo.example\"\n",
    )
    .unwrap();
    let out = run_cli(
        &data,
        &["check", "--config", config.to_str().unwrap()],
        "",
        &[],
    );
    refuses(&out, ".tachigo.example");
    let out = run_cli(
        &data,
        &["serve", "--config", config.to_str().unwrap()],
        "",
        &[],
    );
    refuses(&out, "cookies.domain");
    let fixed = "[server]\npublic_url = \"https://api.tachigo.example\"\ntrusted_origins = [\"https://app.tachigo.example\"]\n[cookies]\nsecure = true\ndomain = \".tachigo.example\"\n[oauth]\nfrontend_url = \"https://app.tachigo.example\"\n";
    std::fs::write(&config, fixed).unwrap();
    // Off loopback, mail must leave through SMTP: refused without it, naming the key.
    let out = run_cli(
        &data,
        &["check", "--config", config.to_str().unwrap()],
        "",
        &[],
    );
    refuses(&out, "email.smtp_url");
    std::fs::write(
        &config,
        format!("{fixed}[email]\nsmtp_url = \"smtps://smtp.tachigo.example\"\n"),
    )
    .unwrap();
    let out = run_cli(
        &data,
        &["check", "--config", config.to_str().unwrap()],
        "",
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    assert!(
        !data.join("db").exists() || user_count(&data).await == 0,
        "nothing was written"
    );
}

/// A malformed OAuth 2.1 client stops the start, naming the client and the
/// problem; a service client's secret must come from a private file.
#[tokio::test]
async fn malformed_oauth2_clients_are_refused_naming_the_client() {
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("clients.toml");
    let client = |kind: &str, extra: &str| {
        format!("[[clients]]\nid = \"desk-app\"\nname = \"Desk\"\nkind = \"{kind}\"\n{extra}")
    };
    for (toml, needle) in [
        (
            client("native", "redirect_uris = [\"http://localhost/cb\"]\n"),
            "desk-app",
        ),
        (
            client("native", "redirect_uris = [\"myapp:/cb\"]\n"),
            "reverse domain",
        ),
        (
            client("native", "redirect_uris = [\"https://app.example/cb#x\"]\n"),
            "fragment",
        ),
        (client("native", ""), "at least one redirect URI"),
        (
            client(
                "native",
                "redirect_uris = [\"http://127.0.0.1/cb\"]\nscopes = [\"admin\"]\n",
            ),
            "unknown scope",
        ),
        (
            client(
                "browser_extension",
                "redirect_uris = [\"https://evil.example/\"]\n",
            ),
            "chromiumapp.org",
        ),
        (client("service", ""), "secret_file"),
        (client("robot", ""), "kind"),
        (
            format!(
                "{}{}",
                client("native", "redirect_uris = [\"http://127.0.0.1/cb\"]\n"),
                client("native", "redirect_uris = [\"http://127.0.0.1/cb\"]\n")
            ),
            "registered twice",
        ),
    ] {
        std::fs::write(&config, &toml).unwrap();
        let out = run_cli(
            &data,
            &["check", "--config", config.to_str().unwrap()],
            "",
            &[],
        );
        refuses(&out, needle);
    }

    let secret = dir.path().join("svc.secret");
    std::fs::write(&secret, "s".repeat(40)).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let service = client(
        "service",
        &format!("secret_file = \"{}\"\n", secret.display()),
    );
    std::fs::write(&config, &service).unwrap();
    let out = run_cli(
        &data,
        &["check", "--config", config.to_str().unwrap()],
        "",
        &[],
    );
    refuses(&out, "readable by everyone");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&secret, "short").unwrap();
    let out = run_cli(
        &data,
        &["check", "--config", config.to_str().unwrap()],
        "",
        &[],
    );
    refuses(&out, "at least 32 bytes");
    std::fs::write(&secret, "s".repeat(40)).unwrap();
    let out = run_cli(
        &data,
        &["check", "--config", config.to_str().unwrap()],
        "",
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_refuse_clearly_while_a_server_holds_the_data_directory() {
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path().join("data");
    let server = ServerChild::spawn(&data, &[]).await;
    let out = run_cli(
        &data,
        &[
            "user",
            "create",
            "--email",
            "late@example.com",
            "--password-stdin",
        ],
        "a long passphrase\n",
        &[],
    );
    refuses(&out, "in use by another process");
    let out = run_cli(
        &data,
        &["sessions", "list", "--email", "late@example.com"],
        "",
        &[],
    );
    refuses(&out, "in use by another process");
    assert_eq!(server.terminate().code(), Some(0));
    assert_eq!(user_count(&data).await, 0);
}
