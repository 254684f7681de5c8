//! A real SMTP server for tests: aiosmtpd (Python) on a free loopback port,
//! storing every mail it accepts in a Maildir, which tests read back and parse
//! with `mailparse`. It can be stopped and started again on the same port
//! (an outage), keeping what it received.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tachigo_engine::config::{Config, ConfigDuration};
use tempfile::TempDir;

pub struct SmtpServer {
    pub port: u16,
    maildir: TempDir,
    child: Option<Child>,
}

/// One mail as the server received it.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub to: String,
    pub from: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The Maildir file name (unique per mail).
    pub file: String,
}

impl ReceivedMail {
    /// The first http(s) URL of the text body.
    pub fn link(&self) -> String {
        let start = self
            .text
            .find("http://")
            .or_else(|| self.text.find("https://"))
            .unwrap_or_else(|| panic!("no link in the mail: {}", self.text));
        self.text[start..]
            .split(|c: char| c.is_whitespace())
            .next()
            .unwrap()
            .to_string()
    }

    /// The link's `token` query parameter, or else its last path segment.
    pub fn token(&self) -> String {
        let url = url::Url::parse(&self.link()).expect("the mail's link is a URL");
        if let Some((_, token)) = url.query_pairs().find(|(k, _)| k == "token") {
            return token.into_owned();
        }
        url.path_segments()
            .and_then(|mut s| s.next_back().map(str::to_string))
            .expect("the link has a path")
    }
}

/// Points `[email]` at `smtp` with short retries, so outages heal within a test.
pub fn use_smtp(config: &mut Config, smtp: &SmtpServer) {
    config.email.smtp_url = Some(smtp.smtp_url());
    config.email.retry_base = ConfigDuration::from_millis(200);
    config.email.from = "tachigo tests <auth@tachigo.test>".into();
}

/// aiosmtpd is installed from PyPI the first time a test needs it (so the
/// README's test command works on a fresh machine), once per test process.
fn ensure_aiosmtpd() {
    static INSTALLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let importable = || {
        Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .status()
            .is_ok_and(|s| s.success())
    };
    let present = *INSTALLED.get_or_init(|| {
        importable() || {
            let _ = Command::new("python3")
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .arg("aiosmtpd==1.4.6")
                .status();
            importable()
        }
    });
    assert!(
        present,
        "the SMTP test server needs aiosmtpd and `python3 -m pip install aiosmtpd==1.4.6` failed"
    );
}

impl SmtpServer {
    pub async fn start() -> SmtpServer {
        ensure_aiosmtpd();
        let mut server = SmtpServer {
            port: super::free_port(),
            maildir: TempDir::new().unwrap(),
            child: None,
        };
        server.spawn().await;
        server
    }

    pub fn smtp_url(&self) -> String {
        format!("smtp://127.0.0.1:{}?tls=none", self.port)
    }

    async fn spawn(&mut self) {
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(self.maildir.path().join("mail"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting aiosmtpd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not start listening"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the server (an outage); what it received stays readable.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_ok()
        {
            assert!(Instant::now() < deadline, "aiosmtpd did not stop");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts again on the same port, with the same mailbox.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.spawn().await;
    }

    /// Every mail received so far, in arrival order.
    pub fn mails(&self) -> Vec<ReceivedMail> {
        let mut mails = Vec::new();
        for sub in ["new", "cur"] {
            let dir = self.maildir.path().join("mail").join(sub);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                mails.push(parse(&entry.path()));
            }
        }
        // Maildir names (Python's mailbox) start `<seconds>.M<microseconds>P…`;
        // the microseconds are not zero-padded, so compare them as numbers.
        mails.sort_by_key(|m| delivery_time(&m.file));
        mails
    }

    pub fn mails_to(&self, to: &str) -> Vec<ReceivedMail> {
        self.mails()
            .into_iter()
            .filter(|m| m.to.eq_ignore_ascii_case(to))
            .collect()
    }

    /// Waits for the `n`th mail (1-based count) to `to` and returns the newest.
    pub async fn wait_for_mails(&self, to: &str, n: usize, limit: Duration) -> ReceivedMail {
        let deadline = Instant::now() + limit;
        loop {
            let mails = self.mails_to(to);
            if mails.len() >= n {
                return mails[n - 1].clone();
            }
            assert!(
                Instant::now() < deadline,
                "{} mail(s) to {to} within {limit:?}; got {}",
                n,
                mails.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the first mail to `to`.
    pub async fn wait_for_mail(&self, to: &str, limit: Duration) -> ReceivedMail {
        self.wait_for_mails(to, 1, limit).await
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn parse(path: &Path) -> ReceivedMail {
    let raw = std::fs::read(path).expect("reading a mail");
    let mail = mailparse::parse_mail(&raw).expect("a parsable mail");
    let header = |name: &str| {
        mail.headers
            .iter()
            .find(|h| h.get_key().eq_ignore_ascii_case(name))
            .map(|h| h.get_value())
            .unwrap_or_default()
    };
    let mut text = String::new();
    let mut html = String::new();
    collect_bodies(&mail, &mut text, &mut html);
    let to = header("To");
    let address = to
        .rsplit_once('<')
        .map(|(_, a)| a.trim_end_matches('>').to_string())
        .unwrap_or(to.clone());
    ReceivedMail {
        to: address.trim().to_string(),
        from: header("From"),
        subject: header("Subject"),
        text,
        html,
        file: file_name(path),
    }
}

fn collect_bodies(part: &mailparse::ParsedMail, text: &mut String, html: &mut String) {
    if part.subparts.is_empty() {
        let body = part.get_body().unwrap_or_default();
        match part.ctype.mimetype.as_str() {
            "text/html" => html.push_str(&body),
            _ => text.push_str(&body),
        }
    }
    for sub in &part.subparts {
        collect_bodies(sub, text, html);
    }
}

/// (seconds, microseconds) from a Maildir file name, then the name itself.
fn delivery_time(file: &str) -> (u64, u64, String) {
    let mut parts = file.split('.');
    let secs = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let micros = parts
        .next()
        .and_then(|p| p.strip_prefix('M'))
        .and_then(|p| p.split('P').next())
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    (secs, micros, file.to_string())
}

fn file_name(path: &Path) -> String {
    PathBuf::from(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
