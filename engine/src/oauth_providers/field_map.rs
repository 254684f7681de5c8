//! Reading an identity out of a plain OAuth 2.0 provider's userinfo JSON:
//! each part (subject, email, email-verified, name, picture) at one or more
//! dotted paths (`id`, `data.user.email`, `accounts.0.id`), the first that
//! holds a value winning. Subjects may be JSON numbers (GitHub and Discord
//! ids): they are read as their decimal text.

use serde_json::Value;

use super::identity::ProfileClaims;
use super::ProviderError;
use crate::config::{FieldPaths, UserinfoFields};

/// The longest subject accepted (OpenID Connect's bound for `sub`).
const MAX_SUBJECT_BYTES: usize = 255;

/// Where each identity field is, every path split into its segments.
#[derive(Debug, Clone, Default)]
pub(crate) struct FieldMap {
    subject: Vec<Vec<String>>,
    email: Vec<Vec<String>>,
    email_verified: Vec<Vec<String>>,
    name: Vec<Vec<String>>,
    picture: Vec<Vec<String>>,
}

fn split(paths: &Option<FieldPaths>) -> Vec<Vec<String>> {
    paths
        .iter()
        .flat_map(|p| p.paths())
        .map(|path| path.split('.').map(|s| s.trim().to_string()).collect())
        .collect()
}

/// The value at `path`, through objects by key and arrays by index.
fn lookup<'a>(json: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(json, |at, segment| match at {
        Value::Object(map) => map.get(segment),
        Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// The first non-null value among `paths`.
fn first<'a>(json: &'a Value, paths: &[Vec<String>]) -> Option<&'a Value> {
    paths
        .iter()
        .filter_map(|path| lookup(json, path))
        .find(|v| !v.is_null())
}

fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

impl FieldMap {
    /// `configured` over `defaults`, field by field.
    pub(crate) fn new(configured: Option<&UserinfoFields>, defaults: &UserinfoFields) -> FieldMap {
        let pick = |own: Option<&Option<FieldPaths>>, default: &Option<FieldPaths>| match own {
            Some(Some(paths)) => split(&Some(paths.clone())),
            _ => split(default),
        };
        FieldMap {
            subject: pick(configured.map(|c| &c.subject), &defaults.subject),
            email: pick(configured.map(|c| &c.email), &defaults.email),
            email_verified: pick(
                configured.map(|c| &c.email_verified),
                &defaults.email_verified,
            ),
            name: pick(configured.map(|c| &c.name), &defaults.name),
            picture: pick(configured.map(|c| &c.picture), &defaults.picture),
        }
    }

    /// Whether a picture path is configured (else a preset may build one).
    pub(crate) fn has_picture(&self) -> bool {
        !self.picture.is_empty()
    }

    /// The subject as text: a non-empty string, or an integer's digits.
    pub(crate) fn subject(&self, userinfo: &Value) -> Option<String> {
        let subject = match first(userinfo, &self.subject)? {
            Value::String(s) => s.trim().to_string(),
            Value::Number(n) if n.is_u64() || n.is_i64() => n.to_string(),
            _ => return None,
        };
        (!subject.is_empty() && subject.len() <= MAX_SUBJECT_BYTES).then_some(subject)
    }

    /// The claims the userinfo JSON holds; no usable subject is an error.
    pub(crate) fn read(&self, userinfo: &Value) -> Result<ProfileClaims, ProviderError> {
        let sub = self.subject(userinfo).ok_or_else(|| {
            ProviderError::UserInfo("the userinfo response has no usable subject".into())
        })?;
        let email_verified = match first(userinfo, &self.email_verified) {
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::String(s)) => Some(s.eq_ignore_ascii_case("true")),
            _ => None,
        };
        Ok(ProfileClaims {
            sub,
            email: text(first(userinfo, &self.email)),
            email_verified,
            name: text(first(userinfo, &self.name)),
            preferred_username: None,
            picture: text(first(userinfo, &self.picture)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn paths(p: &[&str]) -> Option<FieldPaths> {
        Some(FieldPaths::Many(p.iter().map(|s| s.to_string()).collect()))
    }

    #[test]
    fn dotted_paths_numbers_and_fallbacks() {
        let map = FieldMap::new(
            Some(&UserinfoFields {
                subject: paths(&["data.id"]),
                email: paths(&["data.emails.0.address"]),
                email_verified: paths(&["data.emails.0.verified"]),
                name: paths(&["data.display_name", "data.login"]),
                ..UserinfoFields::default()
            }),
            &UserinfoFields {
                picture: paths(&["data.avatar"]),
                name: paths(&["ignored"]),
                ..UserinfoFields::default()
            },
        );
        let claims = map
            .read(&json!({"data": {
                "id": 583231, "login": "octocat", "display_name": null,
                "emails": [{"address": "o@example.com", "verified": "true"}],
                "avatar": "https://cdn.example.com/o.png"
            }}))
            .unwrap();
        assert_eq!(claims.sub, "583231");
        assert_eq!(claims.email.as_deref(), Some("o@example.com"));
        assert_eq!(claims.email_verified, Some(true));
        assert_eq!(claims.name.as_deref(), Some("octocat"));
        assert_eq!(
            claims.picture.as_deref(),
            Some("https://cdn.example.com/o.png")
        );
    }

    #[test]
    fn a_missing_empty_or_unusable_subject_is_refused() {
        let map = FieldMap::new(
            Some(&UserinfoFields {
                subject: Some(FieldPaths::One("id".into())),
                ..UserinfoFields::default()
            }),
            &UserinfoFields::default(),
        );
        for userinfo in [
            json!({}),
            json!({"id": ""}),
            json!({"id": null}),
            json!({"id": 1.5}),
            json!({"id": {"nested": 1}}),
            json!({"id": true}),
            json!({"id": "x".repeat(256)}),
            json!([1, 2]),
        ] {
            assert!(
                matches!(map.read(&userinfo), Err(ProviderError::UserInfo(_))),
                "{userinfo}"
            );
        }
        let claims = map.read(&json!({"id": "abc", "email": 5})).unwrap();
        assert_eq!(claims.sub, "abc");
        assert_eq!(claims.email, None, "no email path configured");
        assert_eq!(claims.email_verified, None);
    }
}
