//! `tachigo-auth user import`: users moved in from another system keep the
//! password hashes that system made — bcrypt, argon2, scrypt and PBKDF2, made
//! by reference tools (`tests/fixtures/make_legacy_users.py`), never by the
//! crates under test — sign in through the dashboard with their old passwords,
//! and have their hash replaced by argon2id at that first login. A second run
//! skips everyone; each bad line is reported by its number while the rest come
//! in; a dry run stores nothing; a user whose account belongs to someone else
//! is skipped whole. The real binary does the import, and the real server the
//! logins, on the suite's store (sled, or PostgreSQL with
//! `TACHIGO_TEST_STORE=postgres`).

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{json, Value};
use support::process::{run_cli, ServerChild};
use tachigo_engine::Engine;

const FIXTURE: &str = include_str!("fixtures/legacy_users.jsonl");

/// What the fixture's users sign in with: `passphrase of <local part>`.
fn password_of(email: &str) -> String {
    format!("passphrase of {}", email.split('@').next().unwrap())
}

/// The fixture's users: (email, whether they have a password).
fn fixture_users() -> Vec<(String, bool)> {
    FIXTURE
        .lines()
        .map(|line| {
            let user: Value = serde_json::from_str(line).unwrap();
            (
                user["email"].as_str().unwrap().to_string(),
                user.get("password_hash").is_some(),
            )
        })
        .collect()
}

/// A data directory and the suite's store, shared by the import command, the
/// server and the engine the test inspects storage with.
struct Deployment {
    dir: tempfile::TempDir,
    /// The import files, beside the data directory.
    files: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Deployment {
    async fn new() -> Deployment {
        Deployment {
            dir: tempfile::TempDir::new().unwrap(),
            files: tempfile::TempDir::new().unwrap(),
            env: support::test_store_env().await,
        }
    }

    fn data(&self) -> &Path {
        self.dir.path()
    }

    fn env(&self) -> Vec<(&str, &str)> {
        self.env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    fn file(&self, name: &str, content: &str) -> PathBuf {
        let path = self.files.path().join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    fn import(&self, file: &Path, extra: &[&str]) -> Output {
        let mut args = vec!["user", "import", "--file", file.to_str().unwrap()];
        args.extend_from_slice(extra);
        run_cli(self.data(), &args, "", &self.env())
    }

    /// The real server, taking client addresses from `X-Forwarded-For` so
    /// each user gets its own per-address login budget.
    async fn serve(&self) -> ServerChild {
        let mut env = self.env();
        env.push(("TACHIGO__SERVER__TRUST_PROXY", "true"));
        ServerChild::spawn(self.data(), &env).await
    }

    /// An engine on the store (nothing else may hold it), stopped and its
    /// storage let go once `inspect` is done.
    async fn inspect<T>(&self, inspect: impl AsyncFnOnce(&Engine) -> T) -> T {
        let mut config = tachigo_engine::config::load(None, self.env.iter().cloned()).unwrap();
        config.server.data_dir = self.data().to_path_buf();
        let engine = Engine::open(&config).await.expect("the engine opens");
        let result = inspect(&engine).await;
        engine.shutdown().await.unwrap();
        let released = engine.storage_release();
        drop(engine);
        assert!(released.await, "storage is let go");
        result
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string()
}

fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        stdout(output),
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn login(server: &ServerChild, client_no: usize, email: &str, password: &str) -> u16 {
    reqwest::Client::new()
        .post(server.url("/api/v1/auth/login"))
        .header("x-forwarded-for", format!("192.0.2.{}", client_no + 1))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_legacy_hash_format_signs_in_and_is_rehashed_at_the_first_login() {
    let deployment = Deployment::new().await;
    let fixture = deployment.file("legacy.jsonl", FIXTURE);
    let users = fixture_users();
    let out = deployment.import(&fixture, &[]);
    assert_exit(&out, 0);
    assert_eq!(
        stdout(&out),
        format!("imported {}, skipped 0, refused 0\n", users.len())
    );

    let server = deployment.serve().await;
    for (i, (email, has_password)) in users.iter().enumerate() {
        let password = password_of(email);
        if !has_password {
            assert_eq!(login(&server, i, email, &password).await, 401, "{email}");
            continue;
        }
        assert_eq!(
            login(&server, i, email, "not the password").await,
            401,
            "{email}"
        );
        assert_eq!(login(&server, i, email, &password).await, 200, "{email}");
        // The second login checks the argon2id hash the first one stored.
        assert_eq!(login(&server, i, email, &password).await, 200, "{email}");
        assert_eq!(
            login(&server, i, email, "not the password").await,
            401,
            "{email}"
        );
    }
    assert!(server.terminate().success());

    deployment
        .inspect(async |engine| {
            let events = engine.recent_audit_events(1000).await.unwrap();
            let of_kind = |kind: &str| {
                events
                    .iter()
                    .filter(|e| e.kind == kind)
                    .map(|e| (e.user_id.clone().unwrap(), e.detail.clone()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(of_kind("user_imported").len(), users.len());
            let rehashed = of_kind("password_rehashed");
            for (email, has_password) in &users {
                let id = engine.user_id_by_email(email).await.unwrap().unwrap();
                let times = rehashed.iter().filter(|(user, _)| *user == id).count();
                // Once, at the first login; the server's own parameters stay.
                let expected =
                    usize::from(*has_password && email != "argon2id-current@legacy.example");
                assert_eq!(times, expected, "{email}: {rehashed:?}");
            }
            let scrypt = engine
                .user_id_by_email("scrypt@legacy.example")
                .await
                .unwrap()
                .unwrap();
            assert!(rehashed.contains(&(scrypt, "from scrypt".to_string())));

            let both = engine
                .user_id_by_email("both@legacy.example")
                .await
                .unwrap()
                .unwrap();
            let user = engine.stored_user(&both).await.unwrap().unwrap();
            assert_eq!(user.roles, ["admin", "member"]);
            assert!(user.email_verified && user.has_password);
            assert_eq!(user.name.as_deref(), Some("Legacy both"));
            // 2020-01-02T03:04:05.678+02:00
            assert_eq!(user.created_at, 1_577_927_045_678);
            assert_eq!(
                engine
                    .user_id_by_account("twitch", "twitch-777")
                    .await
                    .unwrap(),
                Some(both)
            );
            let provider_only = engine
                .user_id_by_account("github", "4242")
                .await
                .unwrap()
                .unwrap();
            let user = engine.stored_user(&provider_only).await.unwrap().unwrap();
            assert_eq!(user.email.as_deref(), Some("provider-only@legacy.example"));
            assert!(!user.has_password);
            assert_eq!(
                user.accounts[0].email.as_deref(),
                Some("octo@legacy.example")
            );
        })
        .await;

    // Running it again changes nothing and says why, line by line.
    let out = deployment.import(&fixture, &[]);
    assert_exit(&out, 0);
    let mut expected: String = (1..=users.len())
        .map(|n| format!("line {n}: skipped: a user with this email already exists\n"))
        .collect();
    expected.push_str(&format!("imported 0, skipped {}, refused 0\n", users.len()));
    assert_eq!(stdout(&out), expected);
    let count = deployment
        .inspect(async |engine| engine.user_count().await.unwrap())
        .await;
    assert_eq!(count, users.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_file_reports_each_bad_line_and_imports_the_rest() {
    let deployment = Deployment::new().await;
    let good = |email: &str, hash_of: &str| {
        let line = FIXTURE
            .lines()
            .find(|l| l.contains(&format!("\"{hash_of}@legacy.example\"")))
            .unwrap();
        let mut user: Value = serde_json::from_str(line).unwrap();
        user["email"] = json!(email);
        user.to_string()
    };
    let bcrypt: Value = serde_json::from_str(FIXTURE.lines().nth(1).unwrap()).unwrap();
    let bcrypt_hash = bcrypt["password_hash"].as_str().unwrap();
    let lines = [
        good("first@moved.example", "bcrypt-2b"),
        String::new(),
        "{not json".to_string(),
        r#"{"emial":"typo@moved.example","created_at":0,"password_hash":"x"}"#.to_string(),
        json!({"email": "not an email", "created_at": 0, "password_hash": bcrypt_hash}).to_string(),
        json!({"email": "md5@moved.example", "created_at": 0, "password_hash": "$1$salt$hash"})
            .to_string(),
        json!({"email": "long@moved.example", "created_at": 0, "name": "x".repeat(70_000)})
            .to_string(),
        json!({"email": "FIRST@moved.example", "created_at": 0, "password_hash": bcrypt_hash})
            .to_string(),
        json!({
            "email": "costly@moved.example",
            "created_at": 0,
            "password_hash": bcrypt_hash.replacen("$04$", "$17$", 1),
        })
        .to_string(),
        json!({"email": "nothing@moved.example", "created_at": "2019-01-01T00:00:00Z"}).to_string(),
        json!({
            "email": "account@moved.example",
            "created_at": 0,
            "accounts": [{"provider": "github", "subject": "1", "login": "octo"}],
        })
        .to_string(),
        good("second@moved.example", "scrypt"),
    ];
    let file = deployment.file("users.jsonl", &(lines.join("\n") + "\n"));
    let out = deployment.import(&file, &[]);
    assert_exit(&out, 3);
    let report = stdout(&out);
    let expected = [
        "line 3: refused: not a JSON object: key must be a string (column 2)",
        "line 4: refused: unknown field `emial`, expected one of `email`, `email_verified`, \
         `name`, `roles`, `created_at`, `password_hash`, `accounts` (column 8)",
        "line 5: refused: the email address is not valid",
        "line 6: refused: the password hash is in no accepted format (argon2, bcrypt \
         $2a$/$2b$/$2y$, or scrypt / PBKDF2 in PHC form)",
        "line 7: refused: the line is longer than 65536 bytes",
        "line 8: refused: the email is also on line 1",
        "line 9: refused: the bcrypt password hash asks for too much work: a cost of at most 16",
        "line 10: refused: the user has neither a password hash nor a linked account: no way \
         to sign in",
        "line 11: refused: unknown field `login`, expected one of `provider`, `subject`, `email` \
         (column 21)",
        "imported 2, skipped 0, refused 9",
    ];
    assert_eq!(report.lines().collect::<Vec<_>>(), expected, "{report}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("9 line(s) refused"));

    let stored = deployment
        .inspect(async |engine| {
            let mut stored = Vec::new();
            for user in engine.find_users_by_email("", 100).await.unwrap() {
                stored.push(user.email.unwrap());
            }
            stored
        })
        .await;
    assert_eq!(stored, ["first@moved.example", "second@moved.example"]);

    // Both good users sign in with the passwords of the fixture lines they came from.
    let server = deployment.serve().await;
    let bcrypt_password = password_of("bcrypt-2b@legacy.example");
    let scrypt_password = password_of("scrypt@legacy.example");
    assert_eq!(
        login(&server, 0, "first@moved.example", &bcrypt_password).await,
        200
    );
    assert_eq!(
        login(&server, 1, "second@moved.example", &scrypt_password).await,
        200
    );
    assert!(server.terminate().success());

    let missing = deployment.import(&deployment.data().join("no-such-file"), &[]);
    assert_exit(&missing, 1);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("opening"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_says_what_would_happen_and_stores_nothing() {
    let deployment = Deployment::new().await;
    let users = fixture_users();
    let repeated = format!("{FIXTURE}{}\n", FIXTURE.lines().next().unwrap());
    let file = deployment.file("legacy.jsonl", &repeated);
    let out = deployment.import(&file, &["--dry-run"]);
    assert_exit(&out, 3);
    assert_eq!(
        stdout(&out),
        format!(
            "line {}: refused: the email is also on line 1\n\
             would import {}, skipped 0, refused 1 (dry run: nothing stored)\n",
            users.len() + 1,
            users.len()
        )
    );
    let count = deployment
        .inspect(async |engine| engine.user_count().await.unwrap())
        .await;
    assert_eq!(count, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_whose_account_is_someone_elses_is_skipped_whole() {
    let deployment = Deployment::new().await;
    let first = deployment.file(
        "first.jsonl",
        &json!({
            "email": "owner@moved.example",
            "created_at": 0,
            "accounts": [{"provider": "github", "subject": "1"}],
        })
        .to_string(),
    );
    assert_exit(&deployment.import(&first, &[]), 0);

    let bcrypt: Value = serde_json::from_str(FIXTURE.lines().next().unwrap()).unwrap();
    let second = deployment.file(
        "second.jsonl",
        &[
            json!({
                "email": "claimant@moved.example",
                "created_at": 0,
                "password_hash": bcrypt["password_hash"],
                "accounts": [
                    {"provider": "twitch", "subject": "9"},
                    {"provider": "github", "subject": "1"},
                ],
            }),
            json!({
                "email": "bystander@moved.example",
                "created_at": 0,
                "accounts": [{"provider": "twitch", "subject": "10"}],
            }),
        ]
        .map(|v| v.to_string())
        .join("\n"),
    );
    for dry_run in [&["--dry-run"][..], &[]] {
        let out = deployment.import(&second, dry_run);
        assert_exit(&out, 0);
        let report = stdout(&out);
        assert!(
            report
                .starts_with("line 1: skipped: the github account 1 is already linked to a user\n"),
            "{report}"
        );
    }
    deployment
        .inspect(async |engine| {
            assert_eq!(
                engine
                    .user_id_by_email("claimant@moved.example")
                    .await
                    .unwrap(),
                None
            );
            assert_eq!(
                engine.user_id_by_account("twitch", "9").await.unwrap(),
                None
            );
            let owner = engine
                .user_id_by_email("owner@moved.example")
                .await
                .unwrap();
            assert!(owner.is_some());
            assert_eq!(
                engine.user_id_by_account("github", "1").await.unwrap(),
                owner
            );
            assert!(engine
                .user_id_by_account("twitch", "10")
                .await
                .unwrap()
                .is_some());
            assert_eq!(engine.user_count().await.unwrap(), 2);
        })
        .await;
}
