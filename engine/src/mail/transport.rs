//! Where a mail goes: an SMTP server (lettre, STARTTLS or implicit TLS, with
//! credentials), or, without one, a `.eml` file in the outbox directory plus
//! a log line with the whole text body, so a developer can click the link.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tachigo_storage::OutboxMailRecord;

use super::SmtpOptions;

/// Why an attempt failed, and whether trying again can help.
#[derive(Debug)]
pub(crate) struct SendFailure {
    pub message: String,
    /// The server refused for good (a 5xx), or the mail cannot be built.
    pub permanent: bool,
}

pub(crate) enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(PathBuf),
}

const SMTP_TIMEOUT: Duration = Duration::from_secs(15);

impl Transport {
    /// Builds the SMTP transport from `[email]` (validated at load), or the outbox.
    pub(crate) fn new(smtp: Option<&SmtpOptions>, outbox: PathBuf) -> Result<Transport, String> {
        let Some(smtp) = smtp else {
            std::fs::create_dir_all(&outbox)
                .map_err(|e| format!("cannot create {}: {e}", outbox.display()))?;
            return Ok(Transport::Outbox(outbox));
        };
        let url = url::Url::parse(&smtp.url).map_err(|e| format!("email.smtp_url: {e}"))?;
        let host = url
            .host_str()
            .ok_or("email.smtp_url has no host")?
            .to_string();
        let tls_mode = url
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        let builder = match (url.scheme(), tls_mode.as_deref()) {
            ("smtps", _) => AsyncSmtpTransport::<Tokio1Executor>::relay(&host),
            (_, Some("none")) => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                &host,
            )),
            (_, Some("opportunistic")) => TlsParameters::new(host.clone()).map(|params| {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host)
                    .port(587)
                    .tls(Tls::Opportunistic(params))
            }),
            _ => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&host),
        }
        .map_err(|e| format!("email.smtp_url: {e}"))?;
        let mut builder = builder.timeout(Some(SMTP_TIMEOUT));
        if let Some(port) = url.port() {
            builder = builder.port(port);
        }
        if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Transport::Smtp(builder.build()))
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Transport::Smtp(_) => "smtp".into(),
            Transport::Outbox(dir) => format!("outbox directory {}", dir.display()),
        }
    }

    /// One delivery attempt.
    pub(crate) async fn send(
        &self,
        from: &Mailbox,
        mail: &OutboxMailRecord,
    ) -> Result<(), SendFailure> {
        let message = build(from, mail).map_err(|message| SendFailure {
            message,
            permanent: true,
        })?;
        match self {
            Transport::Smtp(smtp) => {
                smtp.send(message)
                    .await
                    .map(|_| ())
                    .map_err(|e| SendFailure {
                        permanent: e.is_permanent(),
                        message: e.to_string(),
                    })
            }
            Transport::Outbox(dir) => {
                let path = dir.join(format!("{}.eml", mail.id));
                let partial = dir.join(format!(".{}.eml.partial", mail.id));
                let bytes = message.formatted();
                let written = async {
                    tokio::fs::write(&partial, &bytes).await?;
                    tokio::fs::rename(&partial, &path).await
                }
                .await;
                written.map_err(|e| SendFailure {
                    message: format!("cannot write {}: {e}", path.display()),
                    permanent: false,
                })?;
                tracing::info!(
                    to = %mail.recipient,
                    subject = %mail.subject,
                    file = %path.display(),
                    "mail written to the outbox (no SMTP server configured):\n{}",
                    mail.text_body
                );
                Ok(())
            }
        }
    }
}

fn build(from: &Mailbox, mail: &OutboxMailRecord) -> Result<Message, String> {
    let to: Mailbox = mail
        .recipient
        .parse()
        .map_err(|e| format!("the recipient `{}` is not a mailbox: {e}", mail.recipient))?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.subject.clone())
        .multipart(MultiPart::alternative_plain_html(
            mail.text_body.clone(),
            mail.html_body.clone(),
        ))
        .map_err(|e| format!("cannot build the mail: {e}"))
}
