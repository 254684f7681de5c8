//! Mail delivery end to end, with a real SMTP server (aiosmtpd) and the real
//! server: a mail requested while the SMTP server is down arrives once it is
//! back, even across a restart of tachigo-auth in between; `/metrics` shows
//! the queue and each attempt's outcome; without SMTP, mails land as `.eml`
//! files in `<data_dir>/outbox/`; operator templates replace the built-in text.

mod support;

use std::time::Duration;

use support::metrics::metrics_text;
use support::smtp::{use_smtp, SmtpServer};
use support::*;

const WAIT: Duration = Duration::from_secs(20);

async fn forgot_password(server: &TestServer, email: &str) -> reqwest::Response {
    plain_client()
        .post(server.url("/api/v1/auth/forgot-password"))
        .header("origin", DASHBOARD_ORIGIN)
        .json(&serde_json::json!({ "email": email }))
        .send()
        .await
        .unwrap()
}

/// The value of a metric line that starts with `series` (0 when absent).
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0.0, |v| v.parse().unwrap())
}

async fn wait_for_metric(server: &TestServer, series: &str, at_least: f64) -> f64 {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let value = metric(&metrics_text(server).await, series);
        if value >= at_least {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{series} stayed at {value}, below {at_least}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_requested_during_an_smtp_outage_arrives_once_the_server_is_back() {
    let mut smtp = SmtpServer::start().await;
    let server = TestServer::start_with(|c| use_smtp(c, &smtp)).await;
    create_dashboard_user(&server, "outage@example.com").await;

    smtp.stop().await;
    let response = forgot_password(&server, "outage@example.com").await;
    assert_eq!(response.status(), 202);
    // Attempts fail and are retried; the mail stays queued.
    wait_for_metric(
        &server,
        "tachigo_mail_deliveries_total{outcome=\"retried\"}",
        2.0,
    )
    .await;
    let text = metrics_text(&server).await;
    assert_eq!(metric(&text, "tachigo_mail_queued"), 1.0);
    assert_eq!(
        metric(&text, "tachigo_mail_deliveries_total{outcome=\"sent\"}"),
        0.0
    );
    assert!(smtp.mails().is_empty());

    smtp.restart().await;
    let mail = smtp.wait_for_mail("outage@example.com", WAIT).await;
    assert!(
        mail.subject.contains("Reset your tachigo password"),
        "{}",
        mail.subject
    );
    assert!(mail
        .link()
        .starts_with("http://localhost:3000/reset-password?token="));
    assert_eq!(mail.token().len(), 43);
    assert!(mail.html.contains(&mail.token()));
    assert!(mail.from.contains("auth@tachigo.test"));
    wait_for_metric(
        &server,
        "tachigo_mail_deliveries_total{outcome=\"sent\"}",
        1.0,
    )
    .await;
    let deadline = std::time::Instant::now() + WAIT;
    while metric(&metrics_text(&server).await, "tachigo_mail_queued") != 0.0 {
        assert!(std::time::Instant::now() < deadline, "the queue empties");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Exactly one mail: delivered once, not once per attempt.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(smtp.mails_to("outage@example.com").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_mail_survives_a_restart_of_the_server() {
    let mut smtp = SmtpServer::start().await;
    let mut server = TestServer::start_with(|c| use_smtp(c, &smtp)).await;
    create_dashboard_user(&server, "durable@example.com").await;
    smtp.stop().await;
    assert_eq!(
        forgot_password(&server, "durable@example.com")
            .await
            .status(),
        202
    );
    server.stop().await;

    smtp.restart().await;
    server.restart().await;
    let mail = smtp.wait_for_mail("durable@example.com", WAIT).await;
    assert!(mail.link().contains("token="));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_smtp_mails_are_written_to_the_outbox_directory() {
    let server = TestServer::start().await;
    create_dashboard_user(&server, "outbox@example.com").await;
    assert_eq!(
        forgot_password(&server, "outbox@example.com")
            .await
            .status(),
        202
    );
    let outbox = server.config.server.data_dir.join("outbox");
    let deadline = std::time::Instant::now() + WAIT;
    let file = loop {
        let files: Vec<_> = std::fs::read_dir(&outbox)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        let emls: Vec<_> = files
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        if let [one] = emls.as_slice() {
            break one.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "one .eml file appears"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let raw = std::fs::read(&file).unwrap();
    let parsed = mailparse::parse_mail(&raw).unwrap();
    let to = parsed
        .headers
        .iter()
        .find(|h| h.get_key() == "To")
        .unwrap()
        .get_value();
    assert!(to.contains("outbox@example.com"), "{to}");
    let text = String::from_utf8_lossy(&raw);
    assert!(text.contains("reset-password?token="), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_templates_replace_the_built_in_text() {
    let smtp = SmtpServer::start().await;
    let templates = tempfile::tempdir().unwrap();
    std::fs::write(
        templates.path().join("reset_password.subject"),
        "{{product}}: a new password for {{email}}",
    )
    .unwrap();
    std::fs::write(
        templates.path().join("reset_password.txt"),
        "Follow {{link}} within {{expires_in}}.\n",
    )
    .unwrap();
    let dir = templates.path().to_path_buf();
    let server = TestServer::start_with(|c| {
        use_smtp(c, &smtp);
        c.email.template_dir = Some(dir);
        c.email.product_name = "Tachigo Studio".into();
        c.email.reset_ttl = tachigo_engine::config::ConfigDuration::from_secs(1800);
    })
    .await;
    create_dashboard_user(&server, "templated@example.com").await;
    assert_eq!(
        forgot_password(&server, "templated@example.com")
            .await
            .status(),
        202
    );
    let mail = smtp.wait_for_mail("templated@example.com", WAIT).await;
    assert_eq!(
        mail.subject,
        "Tachigo Studio: a new password for templated@example.com"
    );
    assert!(mail
        .text
        .starts_with("Follow http://localhost:3000/reset-password?token="));
    assert!(mail.text.contains("within 30 minutes."), "{}", mail.text);
    // The HTML body was not overridden: the built-in one, with the product name.
    assert!(mail.html.contains("Tachigo Studio"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_template_stops_the_server_from_starting_and_names_the_file() {
    let templates = tempfile::tempdir().unwrap();
    std::fs::write(templates.path().join("verify_email.html"), "<p>no link</p>").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(&dir, free_port());
    config.email.template_dir = Some(templates.path().to_path_buf());
    let error = match tachigo_auth::server::start(config).await {
        Ok(_) => panic!("the server started with a broken template"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        error.contains("verify_email.html") && error.contains("{{link}}"),
        "{error}"
    );
}
