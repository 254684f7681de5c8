//! Mail bodies: a subject, a plain-text and an HTML body per kind, built in or
//! read from the operator's template directory (`<kind>.subject`, `<kind>.txt`,
//! `<kind>.html`; a missing file keeps the built-in text). `{{product}}`,
//! `{{link}}`, `{{expires_in}}` and `{{email}}` are filled in; values are
//! HTML-escaped in the HTML body. A template that names an unknown placeholder,
//! or a body without `{{link}}`, is refused at start, naming the file.

use std::path::Path;

/// What a mail is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailKind {
    VerifyEmail,
    ResetPassword,
}

impl MailKind {
    pub const ALL: [MailKind; 2] = [MailKind::VerifyEmail, MailKind::ResetPassword];

    /// The stable name used in file names, records and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            MailKind::VerifyEmail => "verify_email",
            MailKind::ResetPassword => "reset_password",
        }
    }
}

const PLACEHOLDERS: [&str; 4] = ["product", "link", "expires_in", "email"];

const VERIFY_SUBJECT: &str = "Confirm your email address for {{product}}";
const VERIFY_TEXT: &str = "Hello,

please confirm that {{email}} is your address for {{product}} by opening this link:

{{link}}

The link works for {{expires_in}} and only once. If you did not sign up for {{product}}, ignore this mail.
";
const VERIFY_HTML: &str = "<!doctype html>
<html><body>
<p>Hello,</p>
<p>please confirm that {{email}} is your address for {{product}}:</p>
<p><a href=\"{{link}}\">Confirm my email address</a></p>
<p>The link works for {{expires_in}} and only once. If you did not sign up for {{product}}, ignore this mail.</p>
</body></html>
";
const RESET_SUBJECT: &str = "Reset your {{product}} password";
const RESET_TEXT: &str = "Hello,

someone asked to reset the {{product}} password of {{email}}. To choose a new password, open this link:

{{link}}

The link works for {{expires_in}} and only once; resetting signs you out everywhere. If you did not ask for this, ignore this mail: your password stays as it is.
";
const RESET_HTML: &str = "<!doctype html>
<html><body>
<p>Hello,</p>
<p>someone asked to reset the {{product}} password of {{email}}.</p>
<p><a href=\"{{link}}\">Choose a new password</a></p>
<p>The link works for {{expires_in}} and only once; resetting signs you out everywhere. If you did not ask for this, ignore this mail: your password stays as it is.</p>
</body></html>
";

#[derive(Debug, Clone)]
struct KindTemplates {
    subject: String,
    text: String,
    html: String,
}

/// The loaded templates of every kind.
#[derive(Debug, Clone)]
pub struct Templates {
    product: String,
    verify: KindTemplates,
    reset: KindTemplates,
}

/// A mail ready to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedMail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Templates {
    /// The built-in templates, each overridden by a file in `dir` when present.
    pub fn load(product: &str, dir: Option<&Path>) -> Result<Templates, String> {
        let load_kind = |kind: MailKind, defaults: [&str; 3]| -> Result<KindTemplates, String> {
            let mut parts = defaults.map(str::to_string);
            for (part, ext) in parts.iter_mut().zip(["subject", "txt", "html"]) {
                let Some(dir) = dir else { continue };
                let path = dir.join(format!("{}.{ext}", kind.name()));
                match std::fs::read_to_string(&path) {
                    Ok(text) => *part = text,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
                }
                check(part, ext != "subject")
                    .map_err(|problem| format!("{}: {problem}", path.display()))?;
            }
            let [subject, text, html] = parts;
            Ok(KindTemplates {
                subject: subject.trim().to_string(),
                text,
                html,
            })
        };
        if let Some(dir) = dir {
            if !dir.is_dir() {
                return Err(format!(
                    "email.template_dir `{}` is not a directory",
                    dir.display()
                ));
            }
        }
        Ok(Templates {
            product: product.to_string(),
            verify: load_kind(
                MailKind::VerifyEmail,
                [VERIFY_SUBJECT, VERIFY_TEXT, VERIFY_HTML],
            )?,
            reset: load_kind(
                MailKind::ResetPassword,
                [RESET_SUBJECT, RESET_TEXT, RESET_HTML],
            )?,
        })
    }

    /// Fills in one kind's templates.
    pub fn render(
        &self,
        kind: MailKind,
        link: &str,
        expires_in: &str,
        email: &str,
    ) -> RenderedMail {
        let t = match kind {
            MailKind::VerifyEmail => &self.verify,
            MailKind::ResetPassword => &self.reset,
        };
        let values = [
            ("product", self.product.as_str()),
            ("link", link),
            ("expires_in", expires_in),
            ("email", email),
        ];
        let subject = fill(&t.subject, &values, |v| v.replace(['\r', '\n'], " "));
        RenderedMail {
            subject,
            text: fill(&t.text, &values, str::to_string),
            html: fill(&t.html, &values, escape_html),
        }
    }
}

/// Refuses unknown placeholders, unclosed braces and (in bodies) a missing link.
fn check(template: &str, needs_link: bool) -> Result<(), String> {
    let mut rest = template;
    let mut has_link = false;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| "a `{{` is never closed".to_string())?;
        let name = after[..end].trim();
        if !PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "unknown placeholder `{{{{{name}}}}}`; known: {}",
                PLACEHOLDERS.join(", ")
            ));
        }
        has_link |= name == "link";
        rest = &after[end + 2..];
    }
    if needs_link && !has_link {
        return Err("the body must contain `{{link}}`".into());
    }
    Ok(())
}

fn fill(template: &str, values: &[(&str, &str)], encode: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(template.len() + 128);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = after[..end].trim();
        match values.iter().find(|(n, _)| *n == name) {
            Some((_, value)) => out.push_str(&encode(value)),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// `value` safe inside HTML text and double-quoted attributes.
pub fn escape_html(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// "24 hours", "1 hour", "30 minutes".
pub(crate) fn human_duration(ms: i64) -> String {
    let minutes = (ms / 60_000).max(1);
    let (n, unit) = if minutes % (24 * 60) == 0 {
        (minutes / (24 * 60), "day")
    } else if minutes % 60 == 0 {
        (minutes / 60, "hour")
    } else {
        (minutes, "minute")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_templates_fill_every_placeholder_and_escape_html() {
        let t = Templates::load("Tachi<go>", None).unwrap();
        let m = t.render(
            MailKind::ResetPassword,
            "https://x.example/r?token=a&b=1",
            "1 hour",
            "a@example.com",
        );
        assert_eq!(m.subject, "Reset your Tachi<go> password");
        assert!(m.text.contains("https://x.example/r?token=a&b=1"));
        assert!(m.text.contains("1 hour"));
        assert!(m
            .html
            .contains("href=\"https://x.example/r?token=a&amp;b=1\""));
        assert!(m.html.contains("Tachi&lt;go&gt;"));
        assert!(!m.text.contains("{{") && !m.html.contains("{{"));
    }

    #[test]
    fn overrides_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("verify_email.subject"),
            "Hi from {{product}}\n",
        )
        .unwrap();
        let t = Templates::load("P", Some(dir.path())).unwrap();
        let m = t.render(MailKind::VerifyEmail, "L", "1 day", "e@x");
        assert_eq!(m.subject, "Hi from P");
        assert!(m.text.contains('L'));

        std::fs::write(dir.path().join("reset_password.txt"), "no link here").unwrap();
        let e = Templates::load("P", Some(dir.path())).unwrap_err();
        assert!(
            e.contains("reset_password.txt") && e.contains("{{link}}"),
            "{e}"
        );
        std::fs::write(dir.path().join("reset_password.txt"), "{{link}} {{nope}}").unwrap();
        let e = Templates::load("P", Some(dir.path())).unwrap_err();
        assert!(e.contains("unknown placeholder `{{nope}}`"), "{e}");
        assert!(Templates::load("P", Some(&dir.path().join("missing"))).is_err());
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(3_600_000), "1 hour");
        assert_eq!(human_duration(86_400_000), "1 day");
        assert_eq!(human_duration(2 * 86_400_000), "2 days");
        assert_eq!(human_duration(30 * 60_000), "30 minutes");
    }
}
