//! Mail: what tachigo sends (verification and password-reset links), how it
//! is queued durably before a request is answered, and how a background task
//! delivers it over SMTP (or into `<data_dir>/outbox/` and the log when no
//! SMTP server is configured), with retries and backoff.

mod delivery;
mod options;
mod recipient_throttle;
mod templates;
mod transport;

pub use options::{MailOptions, SmtpOptions};
pub use templates::{escape_html, MailKind, Templates};

pub(crate) use delivery::{run_delivery, Mail};
pub(crate) use transport::Transport;
