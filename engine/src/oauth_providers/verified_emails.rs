//! Which email of a plain OAuth 2.0 user is verified, from a GitHub-shaped
//! list of their addresses (`[{"email", "primary", "verified"}]`, GitHub's
//! `/user/emails`, also Gitea's and Forgejo's). The userinfo's own email is
//! kept when the list marks it verified; otherwise the primary verified
//! address is taken; with none, the email stays unverified (so it never joins
//! an existing user). A list that cannot be read fails the sign-in rather
//! than guessing.

use serde::Deserialize;

use super::http::get_json;
use super::identity::ProfileClaims;
use super::ProviderError;

#[derive(Debug, Deserialize)]
struct ListedEmail {
    email: String,
    #[serde(default)]
    primary: bool,
    #[serde(default)]
    verified: bool,
}

pub(crate) async fn settle(
    http: &reqwest::Client,
    url: &str,
    access_token: &str,
    claims: &mut ProfileClaims,
) -> Result<(), ProviderError> {
    let listed: Vec<ListedEmail> = get_json(http, "email list", url, Some(access_token))
        .await
        .map_err(|e| ProviderError::UserInfo(e.to_string()))?
        .map_err(|status| ProviderError::UserInfo(format!("email list: status {status}")))?;
    choose(&listed, claims);
    Ok(())
}

fn choose(listed: &[ListedEmail], claims: &mut ProfileClaims) {
    let own = claims.email.as_deref().map(str::trim).and_then(|own| {
        listed
            .iter()
            .find(|l| l.email.trim().eq_ignore_ascii_case(own))
    });
    if let Some(own) = own.filter(|l| l.verified) {
        claims.email = Some(own.email.clone());
        claims.email_verified = Some(true);
    } else if let Some(primary) = listed.iter().find(|l| l.primary && l.verified) {
        claims.email = Some(primary.email.clone());
        claims.email_verified = Some(true);
    } else {
        if claims.email.is_none() {
            claims.email = listed.iter().find(|l| l.primary).map(|l| l.email.clone());
        }
        claims.email_verified = Some(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(email: &str, primary: bool, verified: bool) -> ListedEmail {
        ListedEmail {
            email: email.into(),
            primary,
            verified,
        }
    }

    fn with_email(email: Option<&str>, verified: Option<bool>) -> ProfileClaims {
        ProfileClaims {
            sub: "1".into(),
            email: email.map(str::to_string),
            email_verified: verified,
            ..ProfileClaims::default()
        }
    }

    #[test]
    fn the_list_alone_decides_what_is_verified() {
        let list = [
            listed("public@example.com", false, false),
            listed("main@example.com", true, true),
            listed("other@example.com", false, true),
        ];
        // A public email the list does not verify gives way to the primary verified one.
        let mut c = with_email(Some("public@example.com"), Some(true));
        choose(&list, &mut c);
        assert_eq!(c.email.as_deref(), Some("main@example.com"));
        assert_eq!(c.email_verified, Some(true));
        // A verified public email is kept.
        let mut c = with_email(Some("Other@Example.com"), None);
        choose(&list, &mut c);
        assert_eq!(c.email.as_deref(), Some("other@example.com"));
        assert_eq!(c.email_verified, Some(true));
        // No public email: the primary verified one.
        let mut c = with_email(None, None);
        choose(&list, &mut c);
        assert_eq!(c.email.as_deref(), Some("main@example.com"));
        // Nothing verified: the email stays, unverified, whatever userinfo claimed.
        let unverified = [listed("only@example.com", true, false)];
        let mut c = with_email(Some("only@example.com"), Some(true));
        choose(&unverified, &mut c);
        assert_eq!(c.email.as_deref(), Some("only@example.com"));
        assert_eq!(c.email_verified, Some(false));
        let mut c = with_email(None, None);
        choose(&[], &mut c);
        assert_eq!(c.email, None);
        assert_eq!(c.email_verified, Some(false));
    }
}
