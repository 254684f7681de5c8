//! The outbox: [`Mail::queue`] writes a rendered mail to storage before the
//! request that caused it is answered; [`run_delivery`] sends what is due,
//! removes what was delivered, and reschedules failures with exponential
//! backoff until `max_attempts`, so an SMTP outage delays mail but loses none.
//! Several nodes on one database may each send a mail once (at least once).
//!
//! Metrics: `tachigo_mail_queued` (gauge), `tachigo_mail_enqueued_total{kind}`,
//! `tachigo_mail_deliveries_total{outcome="sent"|"retried"|"abandoned"}`,
//! `tachigo_mail_refused_total` (queue full).

use std::sync::{Arc, Weak};
use std::time::Duration;

use lettre::message::Mailbox;
use rand::RngCore;
use tachigo_storage::OutboxMailRecord;
use tokio::sync::Notify;

use super::recipient_throttle::RecipientThrottle;
use super::templates::human_duration;
use super::transport::Transport;
use super::{MailKind, MailOptions, Templates};
use crate::engine::Shared;
use crate::model::UnixMillis;
use crate::EngineError;

/// The longest wait between two attempts at one mail.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// Mails sent per look at the queue.
const BATCH: usize = 32;

/// What the engine keeps for mail.
pub(crate) struct Mail {
    pub(crate) options: MailOptions,
    templates: Templates,
    from: Mailbox,
    pub(crate) throttle: RecipientThrottle,
    pub(crate) wake: Arc<Notify>,
}

impl Mail {
    pub(crate) fn new(options: MailOptions) -> Result<Mail, EngineError> {
        let templates = Templates::load(&options.product_name, options.template_dir.as_deref())
            .map_err(EngineError::Config)?;
        let from = options
            .from
            .parse()
            .map_err(|e| EngineError::Config(format!("email.from: {e}")))?;
        Ok(Mail {
            throttle: RecipientThrottle::new(options.per_address_interval_ms),
            options,
            templates,
            from,
            wake: Arc::new(Notify::new()),
        })
    }

    /// Renders and queues one mail durably; [`EngineError::Overloaded`] when
    /// the queue is full (nothing is written).
    pub(crate) async fn queue(
        &self,
        shared: &Shared,
        kind: MailKind,
        recipient: &str,
        link: &str,
        ttl_ms: i64,
    ) -> Result<(), EngineError> {
        let rendered = self
            .templates
            .render(kind, link, &human_duration(ttl_ms), recipient);
        let now = shared.now();
        let mut suffix = [0u8; 8];
        rand::rng().fill_bytes(&mut suffix);
        let mail = OutboxMailRecord {
            id: format!("{:016x}-{:016x}", now.max(0), u64::from_be_bytes(suffix)),
            recipient: recipient.to_string(),
            subject: rendered.subject,
            text_body: rendered.text,
            html_body: rendered.html,
            kind: kind.name().to_string(),
            created_at: now,
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
        };
        if !shared
            .store
            .enqueue_mail(&mail, self.options.max_queued)
            .await?
        {
            metrics::counter!("tachigo_mail_refused_total").increment(1);
            tracing::warn!(
                kind = kind.name(),
                "the mail queue is full; a mail was refused"
            );
            return Err(EngineError::Overloaded);
        }
        metrics::counter!("tachigo_mail_enqueued_total", "kind" => kind.name()).increment(1);
        self.wake.notify_one();
        Ok(())
    }

    fn backoff(&self, attempts: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempts.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.options
            .retry_base
            .saturating_mul(factor)
            .min(MAX_BACKOFF)
    }
}

/// Delivers queued mail until the engine stops. Holds the engine only while it
/// works, so a stopped engine's storage is released; `wake` (the engine's
/// [`Mail::wake`]) brings it back at once for a new mail or a shutdown.
pub(crate) async fn run_delivery(
    shared: Weak<Shared>,
    wake: Arc<Notify>,
    poll: Duration,
    transport: Transport,
) {
    tracing::info!(via = %transport.describe(), "mail delivery started");
    loop {
        {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            if shared.is_stopping() {
                return;
            }
            deliver_due(&shared, &shared.mail, &transport).await;
            if let Ok(count) = shared.store.queued_mail_count().await {
                metrics::gauge!("tachigo_mail_queued").set(count as f64);
            }
        }
        let _ = tokio::time::timeout(poll, wake.notified()).await;
    }
}

async fn deliver_due(shared: &Shared, mail: &Mail, transport: &Transport) {
    let due = match shared.store.due_mails(shared.now(), BATCH).await {
        Ok(due) => due,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the mail queue");
            return;
        }
    };
    for mut queued in due {
        let result = transport.send(&mail.from, &queued).await;
        let stored = match result {
            Ok(()) => {
                metrics::counter!("tachigo_mail_deliveries_total", "outcome" => "sent")
                    .increment(1);
                tracing::info!(id = %queued.id, kind = %queued.kind, "mail delivered");
                shared.store.remove_mail(&queued.id).await
            }
            Err(failure) => {
                queued.attempts += 1;
                if failure.permanent || queued.attempts >= mail.options.max_attempts {
                    metrics::counter!("tachigo_mail_deliveries_total", "outcome" => "abandoned")
                        .increment(1);
                    tracing::error!(
                        id = %queued.id, kind = %queued.kind, attempts = queued.attempts,
                        error = %failure.message, "mail given up"
                    );
                    shared.store.remove_mail(&queued.id).await
                } else {
                    metrics::counter!("tachigo_mail_deliveries_total", "outcome" => "retried")
                        .increment(1);
                    let wait = mail.backoff(queued.attempts);
                    tracing::warn!(
                        id = %queued.id, kind = %queued.kind, attempts = queued.attempts,
                        retry_in = ?wait, error = %failure.message, "mail delivery failed; will retry"
                    );
                    queued.next_attempt_at = shared.now()
                        + UnixMillis::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2);
                    queued.last_error = Some(truncate(&failure.message, 500));
                    shared.store.reschedule_mail(&queued).await
                }
            }
        };
        if let Err(e) = stored {
            tracing::warn!(error = %e, id = %queued.id, "cannot record a mail's delivery");
            return;
        }
    }
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => text[..at].to_string(),
        None => text.to_string(),
    }
}
