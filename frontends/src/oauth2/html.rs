//! The server's own small HTML pages (the device page, authorization errors
//! that cannot be redirected): no scripts, no external assets, every value
//! escaped, never framed (`frame-ancestors 'none'`), forms posted only here.

use http::header::{HeaderValue, CONTENT_TYPE};
use http::StatusCode;
use warp::http::Response;

use crate::common::Body;

/// `s` safe inside HTML text and double-quoted attributes.
pub(crate) use tachigo_engine::mail::escape_html as escape;

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;line-height:1.5;color:#111;background:#fff}\
h1{font-size:1.4rem}label{display:block;font-weight:600;margin:.5rem 0}\
input[type=text]{font-size:1.3rem;letter-spacing:.15em;padding:.4rem;width:12rem;text-transform:uppercase}\
button{font-size:1rem;padding:.5rem 1.2rem;margin:.8rem .6rem 0 0;cursor:pointer}\
.error{color:#a00;font-weight:600}.muted{color:#555}";

/// A whole page: `title` (escaped here) and `body_html` (already escaped by the caller).
pub(crate) fn page(status: StatusCode, title: &str, body_html: &str) -> Response<Body> {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title}</title><style>{STYLE}</style></head>\
<body><main><h1>{title}</h1>{body_html}</main></body></html>\n",
        title = escape(title),
    );
    let mut response = Response::new(Body::from(html));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    // `same-origin`: the device form's POST must carry its Origin (with
    // `no-referrer` browsers send `Origin: null`), and nothing leaks elsewhere.
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// An error page for a request that cannot be sent back to its client.
pub(crate) fn error_page(status: StatusCode, error: &str, description: &str) -> Response<Body> {
    page(
        status,
        "Sign-in request refused",
        &format!(
            "<p class=\"error\">{}</p><p>{}</p><p class=\"muted\">The application that sent you here made a request this server cannot accept. Close this page and try again from the application.</p>",
            escape(error),
            escape(description)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            escape("<script>\"a\" & 'b'</script>"),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
    }
}
