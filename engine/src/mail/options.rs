//! The mail settings in the units the engine works in, taken from `[email]`.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::Config;

/// How to reach the SMTP server.
#[derive(Clone)]
pub struct SmtpOptions {
    /// `smtp://` / `smtps://` URL, already validated at load.
    pub url: String,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for SmtpOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpOptions")
            .field("url", &self.url)
            .field("username", &self.username)
            .field(
                "password",
                &self.password.as_ref().map(|_| "(set, not shown)"),
            )
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct MailOptions {
    pub from: String,
    pub product_name: String,
    /// `None`: mails go to `outbox_dir` and the log.
    pub smtp: Option<SmtpOptions>,
    pub outbox_dir: PathBuf,
    pub template_dir: Option<PathBuf>,
    pub verification_ttl_ms: i64,
    pub reset_ttl_ms: i64,
    pub dashboard_verify_url: String,
    pub dashboard_reset_url: String,
    pub max_queued: usize,
    pub max_attempts: u32,
    pub retry_base: Duration,
    pub per_address_interval_ms: i64,
    pub answer_floor: Duration,
    /// How often the delivery task looks for due retries (new mails wake it at once).
    pub poll_interval: Duration,
}

impl MailOptions {
    pub fn from_config(config: &Config) -> MailOptions {
        let e = &config.email;
        MailOptions {
            from: e.from.clone(),
            product_name: e.product_name.clone(),
            smtp: e.smtp_url.as_ref().map(|url| SmtpOptions {
                url: url.clone(),
                username: e.smtp_username.clone(),
                password: e.smtp_password.clone(),
            }),
            outbox_dir: config.outbox_dir(),
            template_dir: e.template_dir.clone(),
            verification_ttl_ms: e.verification_ttl.as_millis_i64(),
            reset_ttl_ms: e.reset_ttl.as_millis_i64(),
            dashboard_verify_url: e.dashboard_verify_url.clone(),
            dashboard_reset_url: e.dashboard_reset_url.clone(),
            max_queued: e.max_queued,
            max_attempts: e.max_attempts,
            retry_base: e.retry_base.0,
            per_address_interval_ms: e.per_address_interval.as_millis_i64(),
            answer_floor: e.answer_floor.0,
            poll_interval: Duration::from_secs(1),
        }
    }
}
