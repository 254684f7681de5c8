//! The links the dashboard's mails carry: the dashboard page configured for
//! the mail (`email.dashboard_verify_url`, `email.dashboard_reset_url`) with
//! `token=<token>` added to its query. A query the page already has is kept
//! (only a `token` parameter of its own is replaced), and so is a fragment.
//! The token is base64url, so it needs no escaping, but it goes through the
//! URL serializer all the same.

use tachigo_engine::config::EmailConfig;
use url::Url;

/// The two pages a dashboard mail links to.
pub struct MailLinks {
    verify_page: String,
    reset_page: String,
}

impl MailLinks {
    pub fn from_config(email: &EmailConfig) -> MailLinks {
        MailLinks {
            verify_page: email.dashboard_verify_url.clone(),
            reset_page: email.dashboard_reset_url.clone(),
        }
    }

    /// The link of a verification mail.
    pub fn verify(&self, token: &str) -> String {
        with_token(&self.verify_page, token)
    }

    /// The link of a password-reset mail.
    pub fn reset(&self, token: &str) -> String {
        with_token(&self.reset_page, token)
    }
}

/// `page` with `token=<token>` in its query.
fn with_token(page: &str, token: &str) -> String {
    let Ok(mut url) = Url::parse(page) else {
        // The loader refuses a page that is not an absolute URL; a
        // configuration built in code may still carry one.
        let separator = if page.contains('?') { '&' } else { '?' };
        return format!("{page}{separator}token={token}");
    };
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(name, _)| name != "token")
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    url.set_query(None);
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in &kept {
            query.append_pair(name, value);
        }
        query.append_pair("token", token);
    }
    url.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "abcDEF123-_abcDEF123-_abcDEF123-_abcDEF1234";

    #[test]
    fn the_token_joins_the_query_of_the_page() {
        assert_eq!(
            with_token("http://localhost:3000/verify-email", TOKEN),
            format!("http://localhost:3000/verify-email?token={TOKEN}")
        );
        assert_eq!(
            with_token("https://app.example/auth?mode=reset&lang=de", TOKEN),
            format!("https://app.example/auth?mode=reset&lang=de&token={TOKEN}")
        );
        assert_eq!(
            with_token("https://app.example/r?token=stale#top", TOKEN),
            format!("https://app.example/r?token={TOKEN}#top")
        );
    }

    #[test]
    fn a_page_that_is_no_url_still_gets_the_token() {
        assert_eq!(with_token("/reset?a=1", "t"), "/reset?a=1&token=t");
        assert_eq!(with_token("/reset", "t"), "/reset?token=t");
    }
}
