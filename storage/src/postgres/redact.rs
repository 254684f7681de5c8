//! [`redacted_url`]: a connection string that is safe to print.

/// `url` with any password replaced by `***`: the user-info password of a
/// `postgres://user:password@host/db` URL, a `password=` query parameter, and
/// a `password=` key (quoted or not) of a libpq key=value string.
pub fn redacted_url(url: &str) -> String {
    let trimmed = url.trim_start();
    for scheme in ["postgres://", "postgresql://"] {
        if let Some(rest) = trimmed.strip_prefix(scheme) {
            return format!("{scheme}{}", redact_url_body(rest));
        }
    }
    redact_key_value(url)
}

/// `user:password@host:port/db?query` after the scheme.
fn redact_url_body(rest: &str) -> String {
    let (before_query, query) = match rest.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (rest, None),
    };
    // The last `@` ends the user info: an unencoded `@` or `/` in a password
    // then still counts as part of the password.
    let mut out = match before_query.rfind('@') {
        Some(at) => {
            let (user_info, host_and_path) = before_query.split_at(at);
            match user_info.split_once(':') {
                Some((user, _password)) => format!("{user}:***{host_and_path}"),
                None => before_query.to_string(),
            }
        }
        None => before_query.to_string(),
    };
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => param.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

/// `host=h password='p w' dbname=d`: values are bare words or single-quoted
/// with backslash escapes.
fn redact_key_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let key_start = rest.len() - rest.trim_start().len();
        out.push_str(&rest[..key_start]);
        rest = &rest[key_start..];
        let Some(eq) = rest.find('=') else {
            out.push_str(rest);
            break;
        };
        let key = rest[..eq].trim();
        out.push_str(&rest[..eq + 1]);
        rest = &rest[eq + 1..];
        let value_start = rest.len() - rest.trim_start().len();
        out.push_str(&rest[..value_start]);
        rest = &rest[value_start..];
        let value_len = value_length(rest);
        if key == "password" {
            out.push_str("***");
        } else {
            out.push_str(&rest[..value_len]);
        }
        rest = &rest[value_len..];
    }
    out
}

/// Bytes taken by the value at the start of `text`.
fn value_length(text: &str) -> usize {
    if let Some(quoted) = text.strip_prefix('\'') {
        let mut escaped = false;
        for (i, c) in quoted.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '\'' => return i + 2,
                _ => {}
            }
        }
        text.len()
    } else {
        text.find(char::is_whitespace).unwrap_or(text.len())
    }
}

#[cfg(test)]
mod tests {
    use super::redacted_url;

    #[test]
    fn passwords_never_survive() {
        let cases = [
            (
                "postgres://app:s3cret@db.internal:5432/tachigo",
                "postgres://app:***@db.internal:5432/tachigo",
            ),
            (
                "postgresql://app:p@ss/w0rd@db/tachigo?sslmode=disable",
                "postgresql://app:***@db/tachigo?sslmode=disable",
            ),
            (
                "postgres://db/tachigo?user=app&password=s3cret&x=1",
                "postgres://db/tachigo?user=app&password=***&x=1",
            ),
            ("postgres://app@db/tachigo", "postgres://app@db/tachigo"),
            (
                "host=db user=app password=s3cret dbname=tachigo",
                "host=db user=app password=*** dbname=tachigo",
            ),
            (
                "host=db password = 'se cr\\'et' dbname=tachigo",
                "host=db password = *** dbname=tachigo",
            ),
        ];
        for (url, expected) in cases {
            let redacted = redacted_url(url);
            assert_eq!(redacted, expected);
            assert!(!redacted.contains("s3cret") && !redacted.contains("cr\\'et"));
        }
    }
}
