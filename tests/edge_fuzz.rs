//! Property-based fuzzing of the edges of every contract against ONE running
//! server (with a real OIDC provider, signup on, a Twitch extension secret).
//!
//! Each case is one generated request: a route template with random segments
//! substituted or appended or prefixed, a random method (standard, invented,
//! random), header sets (several `Cookie` fields, duplicate cookies, values up to
//! 12 KiB, random `Origin`, `Authorization` with real, mutated, random, JWT-shaped,
//! `alg: none`, Twitch-signed-with-random-claims or server-minted tokens, random
//! `Content-Type`, obs-text bytes) and a body (random JSON, route-shaped JSON, deep
//! nesting, invalid UTF-8 inside strings, random bytes, oversize).
//!
//! After every case: no 5xx (an overload 503 with `Retry-After` is counted and
//! reported, not failed), the callback never hides an internal error in its
//! redirect, the server still answers `/healthz`, no panic happened, and a
//! response with status >= 400 left storage exactly as it was (a digest of what
//! the test can read of the running server's storage: user count, OAuth state
//! count, the newest audit events, and every known user's record, sessions and
//! refresh families). Across the run: zero panics in the process (a panic hook
//! counts them, the server runs in-process), the number of
//! `tachigo_http_requests_total` series stays under a fixed bound, and no metric
//! label carries text the fuzzer made up (every random path segment and method
//! carries the marker `zz`; random ids are UUID-shaped).
//!
//! Generated cases are symbolic: `@NAME@` stands for a fixture's *current* id or
//! token and `<<tag:hex>>` for a token built at send time (see [`Resolver`]), so
//! a case stays meaningful when the fixtures are repaired after a request that
//! legitimately ended a session. Failures are collected (not stopped at), each
//! distinct one shrunk with proptest's value tree (then by dropping headers,
//! body and query one at a time), and all reported at the end. What is worth
//! knowing but breaks none of these properties (a keep-alive connection closed
//! without `Connection: close` after an unread oversized body, a callback that
//! answers without a redirect) is printed as an observation, not failed.
//!
//! `EDGE_FUZZ_SEED=<u64>` replays a run's generation (the seed is printed; the
//! server's own randomness is not replayed), `EDGE_FUZZ_CASES=<n>` changes the
//! number of cases (the time bound still applies), `EDGE_FUZZ_DUMP_METRICS=<file>`
//! keeps the final `/metrics` text.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use hmac::Mac;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as ProptestConfig, RngSeed, TestRunner};
use serde_json::{json, Value};
use support::oidc_provider::{OidcProvider, TestUser};
use support::{
    add_oidc_provider, browser, location, oauth_sign_in, twitch_claims, twitch_extension_secret,
    twitch_jwt, unix_now, TestServer, DASHBOARD_PASSWORD, FRONTEND,
};
use tachigo_engine::access_token::{AUDIENCE_DASHBOARD, AUDIENCE_EXTENSION};
use tachigo_engine::config::ExtensionSecret;
use tachigo_engine::{AuditEntry, NewSession, NewUser, RefreshFamily, Session, Surface, User};
use tachigo_frontends::common::route_table::method_label;

// ----- bounds of the run -----

/// Cases generated, unless the time bound stops the run first.
const TARGET_CASES: u32 = 3_000;
/// Cases that must have run for the run to count.
const MIN_CASES: usize = 1_000;
/// The fuzz loop stops this long after the test started (setup included), so
/// that the whole test stays under a minute in a debug build on two cores.
const LOOP_DEADLINE: Duration = Duration::from_secs(44);
/// Time all shrinking together may take (inside the loop's deadline).
const SHRINK_BUDGET: Duration = Duration::from_secs(6);
/// Shrink steps per distinct failure, and distinct failures shrunk.
const SHRINK_STEPS: usize = 300;
const SHRINK_FAILURES: usize = 8;
/// Each request's answer must arrive within this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Most series of `tachigo_http_requests_total` allowed at the end. Every label
/// comes from a fixed set (6 mounts + `none`; 42 route templates + `unmatched`;
/// 8 method labels; ~20 status labels), and what a fuzzer can reach of that
/// product saturates at roughly 450-550 (one route sees its own method with a
/// handful of statuses, and 405 for the 7 others); 3,000 cases reach ~380.
/// Labels leaking caller text would add a series per case: thousands.
const SERIES_BOUND: usize = 600;

// ----- what the fuzzer knows about the server -----

/// Every route of every contract (method, template): the contracts' own route
/// tables, so a route added to a contract is fuzzed without a change here.
static ROUTES: std::sync::LazyLock<Vec<(&'static str, &'static str)>> =
    std::sync::LazyLock::new(|| {
        use tachigo_frontends::{admin, dashboard, extension, oauth, oauth2, system};
        let tables = [
            dashboard::route_table(),
            extension::route_table(),
            oauth::route_table(),
            oauth2::route_table(),
            admin::route_table(),
            system::route_table(),
        ];
        tables
            .iter()
            .flat_map(|table| table.rows().map(|(m, t)| (method_label(m), t)))
            .collect()
    });

// Fixture names. None of the fixed strings below contains "zz": that marker is
// reserved for text the fuzzer makes up.
const ADMIN_EMAIL: &str = "admin@edge.example";
const MEMBER_EMAIL: &str = "member@edge.example";
const TWITCH_CLIENT_ID: &str = "edgeclientid";
const TWITCH_USER: &str = "31337";
const TWITCH_CHANNEL: &str = "424242";

const REAL_IDS: &[&str] = &[
    "@ADMIN_UID@",
    "@MEMBER_UID@",
    "@EXT_UID@",
    "@ADMIN_SID@",
    "@MEMBER_SID@",
    "@WEB_SID@",
    "@EXT_SID@",
];
const REAL_UIDS: &[&str] = &["@ADMIN_UID@", "@MEMBER_UID@", "@EXT_UID@"];
const REAL_SIDS: &[&str] = &["@ADMIN_SID@", "@MEMBER_SID@", "@WEB_SID@", "@EXT_SID@"];
const REAL_TOKENS: &[&str] = &[
    "@ADMIN_AT@",
    "@MEMBER_AT@",
    "@EXT_AT@",
    "@REFRESH@",
    "@WEB@",
    "@TWITCH_OK@",
];
const PROVIDERS: &[&str] = &[
    "local",
    "google",
    "twitch",
    "oidc",
    "github",
    "LOCAL",
    "credential",
];
const ODD_IDS: &[&str] = &[
    "",
    ".",
    "%2e",
    "{id}",
    "%7Bid%7D",
    "null",
    "0",
    "-1",
    "undefined",
    "revoke-others",
    "users",
    "me",
];
const SEGMENT_NOISE: &[&str] = &[
    "%00", "%ff%fe", "%2e%2e", "%2F", ";a=b", "é", "..", "~", "%7Bid%7D", "*", "%20x", ".json",
    "-", "_", "%",
];
const PREFIXES: &[&str] = &[
    "/",
    "/api/",
    "/api/v1/",
    "/api/v1/auth/",
    "/api/v1/auth/sessions/",
    "/api/v1/extension/",
    "/api/v1/extension/auth/",
    "/api/auth/",
    "/api/auth/callback/",
    "/api/auth/sign-in/social/",
    "/api/v1/admin/",
    "/api/v1/admin/users/",
    "/.well-known/",
    "/oauth2/",
];
const BARE_PATHS: &[&str] = &[
    "/",
    "/api",
    "/api/v1",
    "/api/auth",
    "/api/v1/admin",
    "/favicon.ico",
    "/metrics/",
    "/healthz/x",
    "/api/v1/auth",
    "/api/v1/extension",
];
const STANDARD_METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"];
const INVENTED_METHODS: &[&str] = &["FOO", "BREW", "TRACE", "get", "Post", "PROPFIND"];
const QUERY_KEYS: &[&str] = &[
    "code",
    "state",
    "error",
    "error_description",
    "callbackURL",
    "errorCallbackURL",
    "newUserCallbackURL",
    "disableRedirect",
    "email",
    "limit",
    "q",
    "iss",
    "provider",
    "id",
];
const QUERY_VALUES: &[&str] = &[
    "http://localhost:3000/after",
    "/dashboard",
    "//evil.example/x",
    "https://evil.example/",
    "javascript:alert(1)",
    "http://localhost:3000@evil.example/",
    "http://localhost:3000.evil.example/",
    "%zz",
    "%ff%fe",
    "",
    "true",
    "false",
    "-1",
    "99999999999999999999",
    "/\\evil.example",
    "http://[::1]:3000/",
    "data:text/html,x",
    "access_denied",
    "member@edge.example",
];
const COOKIE_NAMES: &[&str] = &[
    "tachigo_refresh",
    "tachigo.session_token",
    "tachigo.oauth_state",
    "__Secure-tachigo.session_token",
    "TACHIGO_REFRESH",
    "tachigo_refresh ",
];
const ODD_COOKIES: &[&str] = &[
    "tachigo_refresh",
    "=",
    "tachigo_refresh=",
    "tachigo.session_token=\"\"",
    ";",
    "tachigo_refresh==x",
    " = ",
    "tachigo.session_token=a;tachigo.session_token=b",
];
const ORIGINS: &[&str] = &[
    "http://localhost:3000",
    "http://localhost:3000",
    "http://localhost:3000/",
    "http://localhost:3001",
    "https://localhost:3000",
    "null",
    "https://edgeclientid.ext-twitch.tv",
    "https://evil.example",
    "@BASE@",
    "http://localhost:3000.evil.example",
    "HTTP://LOCALHOST:3000",
    "http://localhost:3000, https://evil.example",
    "",
];
const REFERERS: &[&str] = &[
    "http://localhost:3000/page",
    "https://evil.example/",
    "@BASE@/",
    "not a url",
    "http://localhost:3000",
];
const ODD_AUTHORIZATIONS: &[&str] = &[
    "Bearer",
    "Bearer ",
    "Basic dXNlcjpwYXNz",
    "Bearer null",
    "Bearer undefined",
    "Digest x",
    "Bearer a b c",
];
const CONTENT_TYPES: &[&str] = &[
    "application/json; charset=utf-8",
    "application/json;charset=UTF-8",
    "APPLICATION/JSON",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/json; charset=latin1",
    "application/jsonx",
    "application/vnd.api+json",
    "*/*",
    "",
    "json",
    "application/json, text/plain",
];
const BIG_TARGETS: &[&str] = &[
    "x-edge-pad",
    "cookie",
    "authorization",
    "user-agent",
    "x-request-id",
    "origin",
    "referer",
    "x-forwarded-for",
    "accept",
    "content-type",
];
const REQUEST_IDS: &[&str] = &[
    "edge-request-1",
    "has space",
    "tab\there",
    "../../etc/passwd",
    "<script>",
    "",
    "0",
];
const FORWARDED: &[&str] = &[
    "1.2.3.4",
    "::1",
    "unknown",
    "1.2.3.4, 10.0.0.1",
    "999.999.999.999",
    "",
    "[::1]:80",
];
const OBS_TARGETS: &[&str] = &[
    "cookie",
    "authorization",
    "origin",
    "user-agent",
    "content-type",
    "x-edge-raw",
    "x-request-id",
    "referer",
];
const MISC_HEADERS: &[(&str, &str)] = &[
    ("expect", "100-continue"),
    ("accept", "text/html"),
    ("accept-encoding", "gzip, br"),
    ("x-http-method-override", "DELETE"),
    ("x-original-url", "/api/v1/admin/users"),
    ("forwarded", "for=1.2.3.4;proto=https"),
    ("host", "evil.example"),
    ("user-agent", "curl/8.0"),
];
const FIELDS: &[&str] = &[
    "email",
    "password",
    "name",
    "refresh_token",
    "token",
    "provider",
    "callbackURL",
    "errorCallbackURL",
    "newUserCallbackURL",
    "disableRedirect",
    "id",
    "providerId",
    "roles",
    "scopes",
    "idToken",
    "accountId",
    "requestSignUp",
];
const EMAILS: &[&str] = &[
    "@MEMBER_EMAIL@",
    "admin@edge.example",
    "new-user@edge.example",
    "not-an-email",
    "",
    "a@b",
    "MEMBER@EDGE.EXAMPLE",
    " member@edge.example ",
    "a\u{0}@edge.example",
    "\u{202e}@edge.example",
];
const PASSWORDS: &[&str] = &[
    "correct horse battery staple",
    "short",
    "aaaaaaaaaaaa",
    "",
    "member@edge.example",
    "pässwörd-ünïcode",
];
const RAW_JSON_VALUES: &[&str] = &[
    "null",
    "true",
    "0",
    "-1",
    "1e400",
    "[]",
    "{}",
    "[\"admin\"]",
    "[\"admin\",\"member\"]",
    "[\"ADMIN\"]",
    "[\"\"]",
    "[1]",
    "\"admin\"",
    "[null]",
];
const ODD_BODIES: &[&str] = &[
    "{",
    "}",
    "null",
    "[]",
    "\"\"",
    "0",
    "{\"email\":}",
    "{\"a\":1,}",
    "{'email':'x'}",
    "\u{feff}{}",
    "{} {}",
    "{\"email\":\"a@edge.example\",\"email\":\"b@edge.example\"}",
    "{\"provider\":\"local\",\"provider\":\"google\"}",
];
const VALID_BODIES: &[&str] = &[
    r#"{"email":"@MEMBER_EMAIL@","password":"correct horse battery staple"}"#,
    r#"{"email":"new-@NOW+0@@edge.example","password":"another good passphrase","name":"New"}"#,
    r#"{"refresh_token":"@REFRESH@"}"#,
    r#"{"token":"@TWITCH_OK@"}"#,
    r#"{"provider":"local"}"#,
    r#"{"provider":"local","callbackURL":"/welcome","errorCallbackURL":"/err","newUserCallbackURL":"/new","disableRedirect":true}"#,
    r#"{"provider":"local","callbackURL":"https://evil.example/"}"#,
    r#"{"id":"@WEB_SID@"}"#,
    r#"{"id":"@MEMBER_SID@"}"#,
    r#"{"providerId":"local"}"#,
    r#"{"providerId":"twitch"}"#,
    r#"{"roles":["member"]}"#,
    r#"{"roles":["admin","member"]}"#,
    "{}",
];
const BAD_BYTES: &[&[u8]] = &[
    b"\xff",
    b"\xc3\x28",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xc0\xaf",
    b"\x80",
    b"\xfe\xfe",
    b"\x00",
    br"\ud800",
    br"\udfff\ud800",
];
const JWT_HEADERS: &[&str] = &[
    r#"{"alg":"none"}"#,
    r#"{"alg":"none","typ":"JWT"}"#,
    r#"{"alg":"None"}"#,
    r#"{"alg":"NONE","typ":"JWT"}"#,
    r#"{"alg":"HS256","typ":"JWT"}"#,
    r#"{"alg":"EdDSA","typ":"JWT","kid":"unknown-kid"}"#,
    r#"{"alg":"EdDSA"}"#,
    r#"{"alg":"RS256"}"#,
    r#"{"alg":"ES256"}"#,
    r#"{"typ":"JWT"}"#,
    "{}",
    "[]",
    r#"{"alg":"EdDSA","kid":"../../../../etc/passwd"}"#,
    r#"{"alg":"HS256","jku":"http://evil.example/jwks"}"#,
    "not json",
    r#"{"alg":"EdDSA","crit":["exp"]}"#,
];
const TWITCH_HEADERS: &[&str] = &[
    r#"{"alg":"HS256","typ":"JWT"}"#,
    r#"{"alg":"HS256","typ":"JWT"}"#,
    r#"{"alg":"HS256","typ":"JWT"}"#,
    r#"{"alg":"HS256"}"#,
    r#"{"alg":"none"}"#,
    r#"{"alg":"HS512"}"#,
    r#"{"alg":"RS256"}"#,
    r#"{"alg":"hs256"}"#,
    r#"{"alg":"HS256","kid":"x","crit":["b64"]}"#,
];

// ----- panics anywhere in the process -----

static PANICS: AtomicUsize = AtomicUsize::new(0);
static PANIC_MESSAGES: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn count_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut messages) = PANIC_MESSAGES.lock() {
            if messages.len() < 20 {
                let thread = std::thread::current();
                messages.push(format!("[{}] {info}", thread.name().unwrap_or("?")));
            }
        }
        default(info);
    }));
}

// ----- symbolic cases -----

/// One generated request, symbolic (see the module docs).
#[derive(Debug, Clone)]
struct Case {
    /// Index into [`ROUTES`] of the template the path was made from.
    route: usize,
    method: String,
    /// Path and query.
    path: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

/// A case with every placeholder and span resolved: exactly what was sent.
#[derive(Debug, Clone)]
struct Sent {
    method: String,
    path: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(hex: &[u8]) -> Option<Vec<u8>> {
    if hex.len() % 2 != 0 {
        return None;
    }
    hex.chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}

/// A token built at send time from `inner` (which may hold placeholders).
fn span(tag: &str, inner: &str) -> String {
    format!("<<{tag}:{}>>", hex(inner.as_bytes()))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

// ----- strategies -----

fn marker() -> BoxedStrategy<String> {
    any::<u32>().prop_map(|n| format!("zz{n:x}")).boxed()
}

fn random_uuid() -> BoxedStrategy<String> {
    any::<u128>()
        .prop_map(|n| {
            let h = format!("{n:032x}");
            format!(
                "{}-{}-{}-{}-{}",
                &h[0..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..32]
            )
        })
        .boxed()
}

/// A random path segment: always carries the marker.
fn random_segment() -> BoxedStrategy<String> {
    (marker(), select(SEGMENT_NOISE), 0u8..4)
        .prop_map(|(m, noise, shape)| match shape {
            0 => m,
            1 => format!("{m}{noise}"),
            2 => format!("{noise}{m}"),
            _ => format!("{m}{}", "a".repeat(200)),
        })
        .boxed()
}

/// What goes where a template has `{id}`, `{provider}` or `{session_id}`.
fn id_choice() -> BoxedStrategy<String> {
    prop_oneof![
        3 => select(REAL_IDS).prop_map(String::from),
        2 => select(PROVIDERS).prop_map(String::from),
        2 => random_uuid(),
        3 => random_segment(),
        1 => select(ODD_IDS).prop_map(String::from),
    ]
    .boxed()
}

#[derive(Debug, Clone)]
enum PathShape {
    AsIs,
    Appended(String),
    Prefixed(String),
    UnderPrefix(&'static str, String),
    TrailingSlash,
    DoubleSlash,
    Upper,
    Bare(&'static str),
}

fn path_shape() -> BoxedStrategy<PathShape> {
    prop_oneof![
        16 => Just(PathShape::AsIs),
        3 => random_segment().prop_map(PathShape::Appended),
        2 => random_segment().prop_map(PathShape::Prefixed),
        3 => (select(PREFIXES), random_segment()).prop_map(|(p, s)| PathShape::UnderPrefix(p, s)),
        1 => Just(PathShape::TrailingSlash),
        1 => Just(PathShape::DoubleSlash),
        1 => Just(PathShape::Upper),
        1 => select(BARE_PATHS).prop_map(PathShape::Bare),
    ]
    .boxed()
}

fn query() -> BoxedStrategy<String> {
    let key = prop_oneof![3 => select(QUERY_KEYS).prop_map(String::from), 1 => marker()];
    let value = prop_oneof![
        2 => marker(),
        3 => select(QUERY_VALUES).prop_map(String::from),
        1 => select(REAL_IDS).prop_map(String::from),
        1 => prop::collection::vec(any::<u8>(), 0..40).prop_map(|b| URL_SAFE_NO_PAD.encode(b)),
        1 => "[a-zA-Z0-9%&=+;,:/?@ -]{0,40}",
        1 => (100usize..3000).prop_map(|n| "q".repeat(n)),
    ];
    prop::option::weighted(0.35, prop::collection::vec((key, value), 1..4))
        .prop_map(|pairs| match pairs {
            None => String::new(),
            Some(pairs) => {
                let joined: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("?{}", joined.join("&"))
            }
        })
        .boxed()
}

#[derive(Debug, Clone)]
enum MethodChoice {
    Own,
    Named(&'static str),
    Random(String),
}

fn method_choice() -> BoxedStrategy<MethodChoice> {
    prop_oneof![
        12 => Just(MethodChoice::Own),
        4 => select(STANDARD_METHODS).prop_map(MethodChoice::Named),
        1 => select(INVENTED_METHODS).prop_map(MethodChoice::Named),
        1 => any::<u16>().prop_map(|n| MethodChoice::Random(format!("ZZ{n:X}"))),
    ]
    .boxed()
}

/// `<session id>.<base64url secret>` with a random or real session id.
fn opaque_token() -> BoxedStrategy<String> {
    let session = prop_oneof![
        2 => random_uuid(),
        2 => select(REAL_SIDS).prop_map(String::from),
        1 => marker(),
    ];
    let secret = prop_oneof![
        3 => prop::collection::vec(any::<u8>(), 32..=32),
        1 => prop::collection::vec(any::<u8>(), 0..48),
    ];
    (
        session,
        secret,
        select(&[".", ".", ".", "..", "", ".="][..]),
    )
        .prop_map(|(sid, secret, sep)| format!("{sid}{sep}{}", URL_SAFE_NO_PAD.encode(secret)))
        .boxed()
}

/// JSON text of an object from optional `"key":raw-value` members (raw values
/// may hold placeholders, so this is assembled as text, not as a `Value`).
fn object_text(members: Vec<Option<(&'static str, String)>>) -> String {
    let members: Vec<String> = members
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("\"{k}\":{v}"))
        .collect();
    format!("{{{}}}", members.join(","))
}

/// Claims for a tachigo access token, some plausible, some not.
fn access_claims_text() -> BoxedStrategy<String> {
    let iss = prop::option::weighted(
        0.8,
        select(
            &[
                "\"@ISSUER@\"",
                "\"@ISSUER@\"",
                "\"http://evil.example\"",
                "5",
            ][..],
        ),
    );
    let sub = prop::option::weighted(
        0.9,
        prop_oneof![
            3 => select(REAL_UIDS).prop_map(|s| format!("\"{s}\"")),
            1 => random_uuid().prop_map(|s| format!("\"{s}\"")),
            1 => Just("123".to_string()),
        ],
    );
    let aud = prop::option::weighted(
        0.9,
        select(
            &[
                "\"dashboard\"",
                "\"extension\"",
                "[\"dashboard\"]",
                "\"admin\"",
                "null",
            ][..],
        ),
    );
    let exp = prop::option::weighted(
        0.9,
        select(
            &[
                "@NOW+600@",
                "@NOW+600@",
                "@NOW-600@",
                "\"soon\"",
                "1e300",
                "-1",
                "9223372036854775807",
                "18446744073709551616",
            ][..],
        ),
    );
    let sid = prop::option::weighted(
        0.8,
        prop_oneof![
            3 => select(REAL_SIDS).prop_map(|s| format!("\"{s}\"")),
            1 => random_uuid().prop_map(|s| format!("\"{s}\"")),
            1 => Just("null".to_string()),
        ],
    );
    let roles = prop::option::weighted(
        0.7,
        select(
            &[
                "[\"admin\"]",
                "\"admin\"",
                "[]",
                "[\"admin\",\"member\"]",
                "[1]",
            ][..],
        ),
    );
    (iss, sub, aud, exp, sid, roles)
        .prop_map(|(iss, sub, aud, exp, sid, roles)| {
            object_text(vec![
                iss.map(|v| ("iss", v.to_string())),
                sub.map(|v| ("sub", v)),
                aud.map(|v| ("aud", v.to_string())),
                exp.map(|v| ("exp", v.to_string())),
                Some(("iat", "@NOW+0@".to_string())),
                sid.map(|v| ("sid", v)),
                roles.map(|v| ("roles", v.to_string())),
            ])
        })
        .boxed()
}

/// Three base64url parts: random headers (`alg: none` among them), plausible or
/// absurd claims, a random or empty signature.
fn jwt_shaped() -> BoxedStrategy<String> {
    let signature = prop_oneof![
        2 => select(&["", "", "AAAA", "=", "..", "x"][..]).prop_map(String::from),
        1 => prop::collection::vec(any::<u8>(), 64..=64).prop_map(|b| URL_SAFE_NO_PAD.encode(b)),
    ];
    (select(JWT_HEADERS), access_claims_text(), signature)
        .prop_map(|(h, p, s)| format!("{}.{}.{s}", span("b64", h), span("b64", &p)))
        .boxed()
}

/// Twitch Extension claims, each field valid or not, present or not.
fn twitch_claims_text() -> BoxedStrategy<String> {
    let exp = prop::option::weighted(
        0.85,
        select(
            &[
                "@NOW+300@",
                "@NOW+300@",
                "@NOW+300@",
                "@NOW-3600@",
                "\"@NOW+300@\"",
                "1e300",
                "0",
                "-5",
                "9223372036854775807",
                "null",
            ][..],
        ),
    );
    let digits = any::<u32>().prop_map(|n| format!("\"{n}\""));
    let opaque = prop::option::weighted(
        0.85,
        prop_oneof![
            3 => (select(&["U", "A"][..]), any::<u32>()).prop_map(|(p, n)| format!("\"{p}{n}\"")),
            1 => select(&["\"\"", "5", "null", "\"U\""][..]).prop_map(String::from),
            1 => marker().prop_map(|m| format!("\"{m}\"")),
        ],
    );
    let user_id = prop::option::weighted(
        0.6,
        prop_oneof![
            3 => select(&["1001", "1002", "1003", "31337"][..]).prop_map(|s| format!("\"{s}\"")),
            1 => digits.clone(),
            1 => select(&["\"\"", "12", "null", "\"-1\"", "[\"1\"]"][..]).prop_map(String::from),
            1 => marker().prop_map(|m| format!("\"{m}\"")),
            1 => (300usize..2000).prop_map(|n| format!("\"{}\"", "9".repeat(n))),
        ],
    );
    let channel = prop::option::weighted(
        0.85,
        prop_oneof![
            3 => digits,
            1 => select(&["5", "\"\"", "null"][..]).prop_map(String::from),
        ],
    );
    let role = prop::option::weighted(
        0.9,
        select(
            &[
                "\"broadcaster\"",
                "\"moderator\"",
                "\"viewer\"",
                "\"external\"",
                "\"viewer\"",
                "\"admin\"",
                "\"\"",
                "7",
                "\"VIEWER\"",
            ][..],
        ),
    );
    let unlinked = prop::option::weighted(0.8, select(&["false", "true", "\"false\""][..]));
    let perms = prop::option::weighted(
        0.7,
        select(
            &[
                r#"{"listen":["broadcast","global"],"send":[]}"#,
                "null",
                "\"x\"",
                r#"{"send":["*"]}"#,
            ][..],
        ),
    );
    (exp, opaque, user_id, channel, role, unlinked, perms)
        .prop_map(|(exp, opaque, user_id, channel, role, unlinked, perms)| {
            object_text(vec![
                exp.map(|v| ("exp", v.to_string())),
                opaque.map(|v| ("opaque_user_id", v)),
                user_id.map(|v| ("user_id", v)),
                channel.map(|v| ("channel_id", v)),
                role.map(|v| ("role", v.to_string())),
                unlinked.map(|v| ("is_unlinked", v.to_string())),
                perms.map(|v| ("pubsub_perms", v.to_string())),
            ])
        })
        .boxed()
}

/// A JWT correctly HMAC-signed with the configured Twitch extension secret,
/// with random headers and claims: only the claim and algorithm checks stand
/// between it and a session.
fn twitch_signed() -> BoxedStrategy<String> {
    (select(TWITCH_HEADERS), twitch_claims_text())
        .prop_map(|(h, c)| span("hs", &format!("{h}~|~{c}")))
        .boxed()
}

/// A tachigo access token signed by the server's own key, for any subject,
/// session, audience and roles: what a stolen or stale token could carry.
fn minted() -> BoxedStrategy<String> {
    let sub = prop_oneof![
        3 => select(REAL_UIDS).prop_map(String::from),
        1 => random_uuid(),
        1 => marker(),
    ];
    let sid = prop_oneof![
        3 => select(REAL_SIDS).prop_map(String::from),
        1 => random_uuid(),
        1 => Just("-".to_string()),
    ];
    let aud = select(&["dashboard", "extension", "admin", ""][..]);
    let roles = select(&["admin", "", "member", "admin,member", "guest"][..]);
    (sub, sid, aud, roles)
        .prop_map(|(sub, sid, aud, roles)| {
            span("mint", &format!("{sub}~|~{sid}~|~{aud}~|~{roles}"))
        })
        .boxed()
}

fn token() -> BoxedStrategy<String> {
    let mutations: &'static [(&'static str, &'static str)] = &[
        ("", "x"),
        ("", "."),
        ("", "="),
        ("", " "),
        ("x", ""),
        ("", "%00"),
        ("", ".x.y"),
        ("\"", "\""),
    ];
    prop_oneof![
        3 => select(REAL_TOKENS).prop_map(String::from),
        2 => (select(REAL_TOKENS), select(mutations))
            .prop_map(|(t, (pre, suf))| format!("{pre}{t}{suf}")),
        3 => opaque_token(),
        3 => jwt_shaped(),
        3 => twitch_signed(),
        2 => minted(),
        1 => "[ -~]{0,60}",
        1 => (1000usize..5000, select(&["a", "A.", "-_"][..]))
            .prop_map(|(n, c)| c.repeat(n / c.len())),
    ]
    .boxed()
}

fn cookie_headers(token: BoxedStrategy<String>) -> BoxedStrategy<Vec<(String, Vec<u8>)>> {
    let junk_value = "[a-zA-Z0-9!#$%&'()*+./:<=>?@^_`{|}~-]{0,40}";
    let pair = prop_oneof![
        4 => (select(COOKIE_NAMES), token).prop_map(|(n, v)| format!("{n}={v}")),
        1 => (marker(), junk_value).prop_map(|(n, v)| format!("{n}={v}")),
        1 => select(ODD_COOKIES).prop_map(String::from),
        1 => (select(COOKIE_NAMES), junk_value).prop_map(|(n, v)| format!("{n}={v}")),
    ];
    let line = (
        prop::collection::vec(pair, 1..4),
        select(&["; ", ";", ", ", ";  "][..]),
    )
        .prop_map(|(pairs, sep)| pairs.join(sep));
    prop_oneof![
        2 => Just(Vec::new()),
        3 => prop::collection::vec(line, 1..4),
    ]
    .prop_map(|lines| {
        lines
            .into_iter()
            .map(|l| ("cookie".to_string(), l.into_bytes()))
            .collect()
    })
    .boxed()
}

fn authorizations(token: BoxedStrategy<String>) -> BoxedStrategy<Vec<(String, Vec<u8>)>> {
    let one = prop_oneof![
        6 => token.clone().prop_map(|t| format!("Bearer {t}")),
        1 => token.clone().prop_map(|t| format!("bearer {t}")),
        1 => token.clone().prop_map(|t| format!("BEARER  {t}")),
        1 => token.clone(),
        1 => select(ODD_AUTHORIZATIONS).prop_map(String::from),
        1 => (token.clone(), token).prop_map(|(a, b)| format!("Bearer {a} {b}")),
        1 => prop::collection::vec(any::<u8>(), 0..48)
            .prop_map(|b| format!("Basic {}", STANDARD.encode(b))),
    ]
    .boxed();
    prop_oneof![
        3 => Just(Vec::new()),
        5 => prop::collection::vec(one.clone(), 1..=1),
        1 => prop::collection::vec(one, 2..=3),
    ]
    .prop_map(|values| {
        values
            .into_iter()
            .map(|v| ("authorization".to_string(), v.into_bytes()))
            .collect()
    })
    .boxed()
}

/// Every other header: origin, referer, content type, one very large value,
/// request id, forwarding, preflight, obs-text bytes, random extras.
fn other_headers() -> BoxedStrategy<Vec<(String, Vec<u8>)>> {
    let origin = prop::option::weighted(
        0.6,
        prop_oneof![
            4 => select(ORIGINS).prop_map(String::from),
            1 => marker().prop_map(|m| format!("https://{m}.example")),
        ],
    );
    let referer = prop::option::weighted(0.15, select(REFERERS));
    let content_type = prop::option::weighted(
        0.75,
        prop_oneof![5 => Just("application/json"), 4 => select(CONTENT_TYPES)],
    );
    let big = prop::option::weighted(
        0.15,
        (
            select(BIG_TARGETS),
            1024usize..12 * 1024,
            select(&["a", "Z", "9", ";", ","][..]),
        ),
    );
    let request_id = prop::option::weighted(
        0.2,
        prop_oneof![
            2 => select(REQUEST_IDS).prop_map(String::from),
            1 => marker(),
            1 => (65usize..400).prop_map(|n| "r".repeat(n)),
        ],
    );
    let forwarded = prop::option::weighted(
        0.15,
        prop_oneof![3 => select(FORWARDED).prop_map(String::from), 1 => marker()],
    );
    let preflight = prop::option::weighted(
        0.15,
        (
            select(STANDARD_METHODS),
            prop::option::of(select(
                &["authorization, content-type", "x-unknown-header", "*", ""][..],
            )),
        ),
    );
    let obs = prop::option::weighted(
        0.1,
        (
            select(OBS_TARGETS),
            select(&["", "tachigo_refresh=", "Bearer ", "tachigo.session_token="][..]),
            prop::collection::vec(0x80u8..=0xff, 1..16),
        ),
    );
    let extras = prop::collection::vec((marker(), "[a-zA-Z0-9 ;=,]{0,20}"), 0..2);
    let misc = prop::option::weighted(0.1, select(MISC_HEADERS));
    (
        (origin, referer, content_type, big),
        (request_id, forwarded, preflight),
        (obs, extras, misc),
    )
        .prop_map(
            |(
                (origin, referer, content_type, big),
                (request_id, forwarded, preflight),
                (obs, extras, misc),
            )| {
                let mut h: Vec<(String, Vec<u8>)> = Vec::new();
                let mut push = |name: &str, value: Vec<u8>| h.push((name.to_string(), value));
                if let Some(o) = origin {
                    push("origin", o.into_bytes());
                }
                if let Some(r) = referer {
                    push("referer", r.as_bytes().to_vec());
                }
                if let Some(c) = content_type {
                    push("content-type", c.as_bytes().to_vec());
                }
                if let Some((target, n, fill)) = big {
                    let filler = fill.repeat(n);
                    let value = match target {
                        "cookie" => format!("tachigo_refresh={filler}"),
                        "authorization" => format!("Bearer {filler}"),
                        "content-type" => format!("application/json; x={filler}"),
                        _ => filler,
                    };
                    push(target, value.into_bytes());
                }
                if let Some(id) = request_id {
                    push("x-request-id", id.into_bytes());
                }
                if let Some(f) = forwarded {
                    push("x-forwarded-for", f.into_bytes());
                }
                if let Some((method, request_headers)) = preflight {
                    push("access-control-request-method", method.as_bytes().to_vec());
                    if let Some(rh) = request_headers {
                        push("access-control-request-headers", rh.as_bytes().to_vec());
                    }
                }
                if let Some((target, prefix, bytes)) = obs {
                    let mut value = prefix.as_bytes().to_vec();
                    value.extend(bytes);
                    push(target, value);
                }
                for (name, value) in extras {
                    push(&format!("x-{name}"), value.into_bytes());
                }
                if let Some((name, value)) = misc {
                    push(name, value.as_bytes().to_vec());
                }
                h
            },
        )
        .boxed()
}

fn json_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "\\PC{0,20}".prop_map(Value::String),
        select(FIELDS).prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        let key = prop_oneof![select(FIELDS).prop_map(String::from), "[a-z]{1,8}"];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

/// An object with the fields the routes read, holding anything.
fn route_json(token: BoxedStrategy<String>) -> BoxedStrategy<Vec<u8>> {
    let value = prop_oneof![
        3 => token.prop_map(|t| json_string(&t)),
        2 => select(EMAILS).prop_map(json_string),
        1 => select(PASSWORDS).prop_map(json_string),
        2 => select(PROVIDERS).prop_map(json_string),
        2 => select(QUERY_VALUES).prop_map(json_string),
        2 => select(REAL_IDS).prop_map(json_string),
        2 => select(RAW_JSON_VALUES).prop_map(String::from),
        1 => random_uuid().prop_map(|u| json_string(&u)),
        1 => json_value().prop_map(|v| v.to_string()),
        1 => (1000usize..15_000).prop_map(|n| json_string(&"e".repeat(n))),
    ];
    let key = prop_oneof![6 => select(FIELDS).prop_map(String::from), 1 => marker()];
    prop::collection::vec((key, value), 0..5)
        .prop_map(|members| {
            let members: Vec<String> = members
                .iter()
                .map(|(k, v)| format!("{}:{v}", json_string(k)))
                .collect();
            format!("{{{}}}", members.join(",")).into_bytes()
        })
        .boxed()
}

fn deep_nesting() -> BoxedStrategy<Vec<u8>> {
    let shapes: &'static [(&'static str, &'static str)] = &[
        ("[", "]"),
        ("{\"a\":", "}"),
        ("{\"email\":[", "]}"),
        ("[{\"x\":", "}]"),
    ];
    (1usize..6000, select(shapes), any::<bool>())
        .prop_map(|(n, (open, close), balanced)| {
            let mut body = open.repeat(n);
            body.push('1');
            body.push_str(&close.repeat(if balanced { n } else { n - 1 }));
            body.into_bytes()
        })
        .boxed()
}

/// JSON whose string holds bytes that are not UTF-8 (or escapes of lone surrogates).
fn invalid_utf8_json() -> BoxedStrategy<Vec<u8>> {
    (
        select(FIELDS),
        "[a-z@.]{0,8}",
        select(BAD_BYTES),
        "[a-z]{0,8}",
    )
        .prop_map(|(field, pre, bad, post)| {
            let mut body = format!("{{\"{field}\":\"{pre}").into_bytes();
            body.extend_from_slice(bad);
            body.extend_from_slice(post.as_bytes());
            body.extend_from_slice(b"\"}");
            body
        })
        .boxed()
}

fn body(token: BoxedStrategy<String>) -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        3 => Just(Vec::new()),
        5 => route_json(token),
        2 => select(VALID_BODIES).prop_map(|b| b.as_bytes().to_vec()),
        2 => json_value().prop_map(|v| serde_json::to_vec(&v).expect("a value serializes")),
        1 => deep_nesting(),
        2 => invalid_utf8_json(),
        1 => prop::collection::vec(any::<u8>(), 0..512),
        1 => (15_000usize..20_000, any::<u8>()).prop_map(|(n, b)| vec![b; n]),
        1 => (select(FIELDS), 16_400usize..20_000)
            .prop_map(|(f, n)| format!("{{\"{f}\":\"{}\"}}", "a".repeat(n)).into_bytes()),
        1 => select(ODD_BODIES).prop_map(|b| b.as_bytes().to_vec()),
    ]
    .boxed()
}

fn case() -> BoxedStrategy<Case> {
    let token = token();
    let headers = (
        cookie_headers(token.clone()),
        authorizations(token.clone()),
        other_headers(),
    )
        .prop_map(|(mut cookies, auth, other)| {
            cookies.extend(auth);
            cookies.extend(other);
            cookies
        });
    (
        any::<Index>(),
        method_choice(),
        (path_shape(), id_choice(), id_choice(), query()),
        headers,
        body(token),
    )
        .prop_map(
            |(route, method, (shape, id, session_id, query), headers, body)| {
                let route = route.index(ROUTES.len());
                let (own, template) = ROUTES[route];
                let method = match method {
                    MethodChoice::Own => own.to_string(),
                    MethodChoice::Named(m) => m.to_string(),
                    MethodChoice::Random(m) => m,
                };
                let filled = template
                    .replace("{id}", &id)
                    .replace("{provider}", &id)
                    .replace("{session_id}", &session_id);
                let path = match shape {
                    PathShape::AsIs => filled,
                    PathShape::Appended(seg) => format!("{filled}/{seg}"),
                    PathShape::Prefixed(seg) => format!("/{seg}{filled}"),
                    PathShape::UnderPrefix(prefix, seg) => format!("{prefix}{seg}"),
                    PathShape::TrailingSlash => format!("{filled}/"),
                    PathShape::DoubleSlash => filled.replacen('/', "//", 2),
                    PathShape::Upper => filled.to_uppercase(),
                    PathShape::Bare(p) => p.to_string(),
                };
                Case {
                    route,
                    method,
                    path: format!("{path}{query}"),
                    headers,
                    body,
                }
            },
        )
        .boxed()
}

// ----- resolution -----

/// Turns a symbolic case into bytes on the wire. `@NAME@` is a fixture's
/// current value (`@NOW+N@` the Unix time plus N seconds, `@TWITCH_OK@` a fresh
/// valid Twitch JWT); `<<tag:hex>>` is built from its hex-encoded inner text
/// (placeholders resolved first): `b64` base64url, `hs` a JWT `header~|~payload`
/// HMAC-SHA256-signed with the Twitch secret, `mint` a tachigo access token
/// `sub~|~sid~|~aud~|~roles` signed by the server's own key.
struct Resolver {
    vars: BTreeMap<&'static str, String>,
    twitch_secret: String,
    twitch_key: Vec<u8>,
    engine: tachigo_engine::Engine,
}

impl Resolver {
    fn resolve(&self, input: &[u8]) -> Vec<u8> {
        self.placeholders(&self.spans(input))
    }

    fn resolve_str(&self, input: &str) -> String {
        String::from_utf8_lossy(&self.resolve(input.as_bytes())).into_owned()
    }

    fn placeholders(&self, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(input.len() + 64);
        let mut i = 0;
        while i < input.len() {
            if input[i] == b'@' {
                let rest = &input[i + 1..];
                if let Some(end) = rest.iter().take(24).position(|&b| b == b'@') {
                    let value = std::str::from_utf8(&rest[..end])
                        .ok()
                        .and_then(|name| self.lookup(name));
                    if let Some(value) = value {
                        out.extend_from_slice(value.as_bytes());
                        i += end + 2;
                        continue;
                    }
                }
            }
            out.push(input[i]);
            i += 1;
        }
        out
    }

    fn lookup(&self, name: &str) -> Option<String> {
        if let Some(offset) = name.strip_prefix("NOW") {
            let offset: i64 = offset.parse().ok()?;
            return Some((unix_now() + offset).to_string());
        }
        if name == "TWITCH_OK" {
            let claims = twitch_claims(Some(TWITCH_USER), TWITCH_CHANNEL, "viewer");
            return Some(twitch_jwt(&self.twitch_secret, &claims));
        }
        self.vars.get(name).cloned()
    }

    fn spans(&self, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(input.len());
        let mut i = 0;
        while i < input.len() {
            if input[i..].starts_with(b"<<") {
                if let Some((len, value)) = self.span_at(&input[i..]) {
                    out.extend_from_slice(value.as_bytes());
                    i += len;
                    continue;
                }
            }
            out.push(input[i]);
            i += 1;
        }
        out
    }

    /// The span at the start of `s`: its length and what it stands for.
    fn span_at(&self, s: &[u8]) -> Option<(usize, String)> {
        let colon = s.iter().take(8).position(|&b| b == b':')?;
        let tag = std::str::from_utf8(&s[2..colon]).ok()?;
        let end = colon + 1 + find(&s[colon + 1..], b">>")?;
        let inner = self.placeholders(&unhex(&s[colon + 1..end])?);
        let value = match tag {
            "b64" => URL_SAFE_NO_PAD.encode(&inner),
            "hs" => self.hmac_jwt(&inner),
            "mint" => self.mint(&inner)?,
            _ => return None,
        };
        Some((end + 2, value))
    }

    fn hmac_jwt(&self, inner: &[u8]) -> String {
        let (header, payload) = match find(inner, b"~|~") {
            Some(at) => (&inner[..at], &inner[at + 3..]),
            None => (inner, &b""[..]),
        };
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.twitch_key)
            .expect("HMAC takes any key");
        mac.update(signing_input.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{signature}")
    }

    fn mint(&self, inner: &[u8]) -> Option<String> {
        let text = String::from_utf8_lossy(inner);
        let parts: Vec<&str> = text.split("~|~").collect();
        let [sub, sid, aud, roles] = parts.as_slice() else {
            return None;
        };
        let roles: Vec<String> = roles
            .split(',')
            .filter(|r| !r.is_empty())
            .map(String::from)
            .collect();
        let sid = (*sid != "-").then_some(*sid);
        let (token, _) =
            self.engine
                .mint_access_token(sub, sid, aud, &roles, serde_json::Map::new());
        Some(token)
    }

    fn resolve_case(&self, case: &Case) -> Sent {
        let headers = case
            .headers
            .iter()
            .map(|(name, value)| (name.clone(), self.resolve(value)))
            // What a client library would refuse to send is left out (and so
            // is not part of the reproduction either).
            .filter(|(name, value)| {
                reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_ok()
                    && reqwest::header::HeaderValue::from_bytes(value).is_ok()
            })
            .collect();
        Sent {
            method: case.method.clone(),
            path: self.resolve_str(&case.path),
            headers,
            body: self.resolve(&case.body),
        }
    }
}

// ----- storage digest -----

/// What the test can read of the server's storage, cheaply.
#[derive(Debug, PartialEq)]
struct Digest {
    users: u64,
    oauth_states: usize,
    /// The newest audit events (an appended event changes these).
    audit_head: Vec<AuditEntry>,
    per_user: Vec<UserDigest>,
}

#[derive(Debug, PartialEq)]
struct UserDigest {
    id: String,
    user: Option<User>,
    sessions: Vec<Session>,
    families: Vec<Option<RefreshFamily>>,
}

/// What changed between two digests, in words.
fn digest_diff(before: &Digest, after: &Digest) -> String {
    let mut changes = Vec::new();
    if before.users != after.users {
        changes.push(format!("user count {} -> {}", before.users, after.users));
    }
    if before.oauth_states != after.oauth_states {
        changes.push(format!(
            "pending OAuth states {} -> {}",
            before.oauth_states, after.oauth_states
        ));
    }
    if before.audit_head != after.audit_head {
        let kinds: Vec<String> = after
            .audit_head
            .iter()
            .take_while(|e| !before.audit_head.contains(e))
            .map(|e| format!("{}({})", e.kind, e.detail))
            .collect();
        changes.push(format!("new audit events {kinds:?}"));
    }
    for (b, a) in before.per_user.iter().zip(&after.per_user) {
        if b.user != a.user {
            changes.push(format!(
                "user {} record changed: {:?} -> {:?}",
                b.id,
                b.user
                    .as_ref()
                    .map(|u| (&u.roles, u.accounts.len(), u.updated_at)),
                a.user
                    .as_ref()
                    .map(|u| (&u.roles, u.accounts.len(), u.updated_at)),
            ));
        }
        if b.sessions != a.sessions {
            let ids = |s: &[Session]| s.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
            changes.push(format!(
                "user {} sessions {:?} -> {:?} (or a session record changed)",
                b.id,
                ids(&b.sessions),
                ids(&a.sessions)
            ));
        }
        if b.families != a.families && b.sessions == a.sessions {
            changes.push(format!("user {} refresh families changed", b.id));
        }
    }
    changes.join("; ")
}

// ----- fixtures -----

/// The signed-in identities the fuzzer's real tokens and ids stand for.
struct Fixtures {
    admin_uid: String,
    admin_sid: String,
    admin_at: String,
    member_uid: String,
    member_sid: String,
    member_at: String,
    refresh: String,
    /// The generation of `member_sid`'s refresh family when `refresh` was its
    /// current token: a rotation by anyone else moves the family past it.
    refresh_generation: u32,
    web_sid: String,
    web: String,
    ext_uid: String,
    ext_sid: String,
    ext_at: String,
}

fn new_session(surface: Surface) -> NewSession {
    NewSession {
        surface,
        user_agent: Some("edge-fuzz".into()),
        ip: Some("127.0.0.1".into()),
        context: None,
    }
}

// ----- the harness -----

#[derive(Debug)]
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

/// What one case did.
struct Outcome {
    status: Option<u16>,
    /// (kind, detail) of every property the case broke.
    failures: Vec<(&'static str, String)>,
    overload: bool,
    /// (kind, detail) of what is worth reporting but breaks no property here.
    observations: Vec<(&'static str, String)>,
    sent: Sent,
}

struct Harness {
    server: TestServer,
    client: reqwest::Client,
    resolver: Resolver,
    fixtures: Fixtures,
    known_users: BTreeSet<String>,
    repairs: usize,
}

impl Harness {
    fn engine(&self) -> &tachigo_engine::Engine {
        self.server.engine()
    }

    async fn digest(&self) -> Digest {
        let engine = self.engine();
        let mut per_user = Vec::with_capacity(self.known_users.len());
        for id in &self.known_users {
            let sessions = engine.stored_sessions(id).await.unwrap_or_default();
            let mut families = Vec::with_capacity(sessions.len());
            for s in &sessions {
                families.push(engine.stored_refresh_family(&s.id).await.ok().flatten());
            }
            per_user.push(UserDigest {
                id: id.clone(),
                user: engine.stored_user(id).await.ok().flatten(),
                sessions,
                families,
            });
        }
        Digest {
            users: engine.user_count().await.unwrap_or_default(),
            oauth_states: engine.pending_authorization_count(),
            audit_head: engine.recent_audit_events(3).await.unwrap_or_default(),
            per_user,
        }
    }

    fn sync_vars(&mut self) {
        let f = &self.fixtures;
        let vars: [(&'static str, &String); 12] = [
            ("ADMIN_UID", &f.admin_uid),
            ("ADMIN_SID", &f.admin_sid),
            ("ADMIN_AT", &f.admin_at),
            ("MEMBER_UID", &f.member_uid),
            ("MEMBER_SID", &f.member_sid),
            ("MEMBER_AT", &f.member_at),
            ("REFRESH", &f.refresh),
            ("WEB_SID", &f.web_sid),
            ("WEB", &f.web),
            ("EXT_UID", &f.ext_uid),
            ("EXT_SID", &f.ext_sid),
            ("EXT_AT", &f.ext_at),
        ];
        for (name, value) in vars {
            self.resolver.vars.insert(name, value.clone());
        }
    }

    async fn session_alive(&self, user_id: &str, session_id: &str) -> bool {
        self.engine()
            .stored_sessions(user_id)
            .await
            .map(|s| s.iter().any(|r| r.id == session_id))
            .unwrap_or(false)
    }

    /// Puts back every fixture a successful request legitimately ended or
    /// changed (a revoked session, a rotated refresh token, an admin's roles),
    /// so the next case's real tokens are real again. Never inside a case's
    /// before/after window.
    async fn repair(&mut self) {
        let engine = self.engine().clone();
        let mut repaired = false;

        let admin_roles_ok = engine
            .stored_user(&self.fixtures.admin_uid)
            .await
            .ok()
            .flatten()
            .is_some_and(|u| u.roles.iter().any(|r| r == "admin"));
        if !admin_roles_ok {
            engine
                .set_roles(&self.fixtures.admin_uid, vec!["admin".into()])
                .await
                .expect("the admin's roles are restored");
        }
        if !admin_roles_ok
            || !self
                .session_alive(&self.fixtures.admin_uid, &self.fixtures.admin_sid)
                .await
        {
            let created = engine
                .create_session(&self.fixtures.admin_uid, new_session(Surface::Dashboard))
                .await
                .expect("an admin session");
            self.fixtures.admin_sid = created.session.id.clone();
            self.fixtures.admin_at = engine
                .mint_session_access_token(
                    &created.user.id,
                    &created.session,
                    AUDIENCE_DASHBOARD,
                    &created.user.roles,
                    serde_json::Map::new(),
                )
                .0;
            repaired = true;
        }

        let member = &self.fixtures.member_uid;
        // The fixture's token is still the family's current one: the family is
        // live, the token is the family's, and nobody rotated it since.
        let family_current = engine
            .stored_refresh_family(&self.fixtures.member_sid)
            .await
            .ok()
            .flatten()
            .filter(|f| f.revoked.is_none())
            .zip(tachigo_engine::opaque_token::parse(&self.fixtures.refresh))
            .is_some_and(|(family, parsed)| {
                parsed.session_id == family.session_id
                    && family.generation == self.fixtures.refresh_generation
            });
        if !family_current || !self.session_alive(member, &self.fixtures.member_sid).await {
            let created = engine
                .create_session(member, new_session(Surface::Dashboard))
                .await
                .expect("a member dashboard session");
            self.fixtures.member_sid = created.session.id.clone();
            self.fixtures.refresh = created.token.clone().expect("a refresh token");
            self.fixtures.refresh_generation = engine
                .stored_refresh_family(&created.session.id)
                .await
                .expect("the new family is readable")
                .expect("a dashboard session has a refresh family")
                .generation;
            self.fixtures.member_at = engine
                .mint_session_access_token(
                    &created.user.id,
                    &created.session,
                    AUDIENCE_DASHBOARD,
                    &created.user.roles,
                    serde_json::Map::new(),
                )
                .0;
            repaired = true;
        }
        if !self.session_alive(member, &self.fixtures.web_sid).await {
            let created = engine
                .create_session(member, new_session(Surface::Web))
                .await
                .expect("a member web session");
            self.fixtures.web_sid = created.session.id.clone();
            self.fixtures.web = created.token.clone().expect("a session cookie token");
            repaired = true;
        }
        if !self
            .session_alive(&self.fixtures.ext_uid, &self.fixtures.ext_sid)
            .await
        {
            let (uid, sid, at) = extension_login(&self.client, &self.server, &self.resolver).await;
            self.fixtures.ext_uid = uid;
            self.fixtures.ext_sid = sid;
            self.fixtures.ext_at = at;
            repaired = true;
        }
        if repaired {
            self.repairs += 1;
            self.sync_vars();
        }
    }

    /// Notes the users a successful request created, so the digest covers them.
    async fn learn_users(&mut self, answer: &Answer) {
        if let Ok(body) = serde_json::from_slice::<Value>(&answer.body) {
            for id in [
                &body["user"]["id"],
                &body["session"]["userId"],
                &body["userId"],
            ] {
                if let Some(id) = id.as_str() {
                    self.known_users.insert(id.to_string());
                }
            }
        }
        let engine = self.engine().clone();
        if engine.user_count().await.unwrap_or_default() > self.known_users.len() as u64 {
            for user in engine
                .find_users_by_email("", 100_000)
                .await
                .unwrap_or_default()
            {
                self.known_users.insert(user.id);
            }
        }
    }

    async fn send(&self, sent: &Sent) -> Result<Answer, String> {
        let method = reqwest::Method::from_bytes(sent.method.as_bytes())
            .map_err(|e| format!("unsendable method: {e}"))?;
        let url = reqwest::Url::parse(&format!("{}{}", self.server.base, sent.path))
            .map_err(|e| format!("unsendable path: {e}"))?;
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in &sent.headers {
            if let (Ok(n), Ok(v)) = (
                reqwest::header::HeaderName::from_bytes(name.as_bytes()),
                reqwest::header::HeaderValue::from_bytes(value),
            ) {
                headers.append(n, v);
            }
        }
        let response = self
            .client
            .request(method, url)
            .headers(headers)
            .body(sent.body.clone())
            .send()
            .await
            .map_err(|e| format!("no response: {e:?}"))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("the body broke off: {e:?}"))?
            .to_vec();
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    async fn healthy(&self, client: &reqwest::Client) -> Result<(), String> {
        match client.get(self.server.url("/healthz")).send().await {
            Ok(r) if r.status() == 200 => Ok(()),
            Ok(r) => Err(format!("/healthz answered {}", r.status())),
            Err(e) => Err(format!("/healthz did not answer: {e:?}")),
        }
    }

    /// Sends one case and checks every per-case property.
    async fn run_case(&mut self, case: &Case) -> Outcome {
        let sent = self.resolver.resolve_case(case);
        let panics_before = PANICS.load(Ordering::SeqCst);
        let before = self.digest().await;
        let mut failures: Vec<(&'static str, String)> = Vec::new();
        let mut overload = false;
        let answer = self.send(&sent).await;
        let status = answer.as_ref().ok().map(|a| a.status);
        let mut observations: Vec<(&'static str, String)> = Vec::new();
        match &answer {
            // A body the server does not read (over the 16 KiB limit, or sent to
            // a route that takes none, such as `GET /metrics`) is left unread; the
            // server answers and closes the connection, and with unread bytes in
            // its receive buffer the kernel resets it, so the client can see a
            // reset instead of the answer. Reported, not failed: the server stays
            // up (checked below) and the contract allows refusing such a body.
            Err(e) if !sent.body.is_empty() && connection_level(e) => {
                observations.push(("connection_dropped_after_unread_body", e.clone()))
            }
            Err(e) => failures.push(("no_response", e.clone())),
            Ok(a) => {
                if a.status >= 500 {
                    if is_overload(a) {
                        overload = true;
                    } else {
                        failures.push((
                            "server_error",
                            format!("{} {}", a.status, body_excerpt(&a.body, 200)),
                        ));
                    }
                }
                if a.status >= 400 {
                    let after = self.digest().await;
                    if after != before {
                        failures.push(("storage_changed", digest_diff(&before, &after)));
                    }
                } else {
                    self.learn_users(a).await;
                }
                let path = sent.path.split('?').next().unwrap_or_default();
                if template_matches("/api/auth/callback/{provider}", path)
                    && sent.method == "GET"
                    && !matches!(a.status, 302 | 404 | 405)
                {
                    observations.push((
                        "callback_answered_without_redirect",
                        format!("{} {}", a.status, body_excerpt(&a.body, 200)),
                    ));
                }
                if (300..400).contains(&a.status) {
                    let to = a
                        .headers
                        .get(reqwest::header::LOCATION)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    if to.contains("internal_server_error") || to.contains("internal_error") {
                        failures.push(("internal_error_redirect", to.to_string()));
                    }
                }
            }
        }
        if let Err(e) = self.healthy(&self.client).await {
            // The pooled connection may have been closed by the server after
            // its answer without `Connection: close`: ask on a new one.
            match self.healthy(&fresh_client()).await {
                Ok(()) => observations.push(("keep_alive_connection_closed_unannounced", e)),
                Err(e) => failures.push(("not_answering", e)),
            }
        }
        let panics_after = PANICS.load(Ordering::SeqCst);
        if panics_after > panics_before {
            failures.push((
                "panic",
                format!("{} panic(s) during this case", panics_after - panics_before),
            ));
        }
        Outcome {
            status,
            failures,
            overload,
            observations,
            sent,
        }
    }
}

/// Whether a request failed at the connection (reset, broken pipe, cut short).
fn connection_level(error: &str) -> bool {
    [
        "ConnectionReset",
        "BrokenPipe",
        "IncompleteMessage",
        "BodyWrite",
    ]
    .iter()
    .any(|k| error.contains(k))
}

/// A client that never reuses a connection.
fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("an HTTP client")
}

/// A 503 from an overload guard: `Retry-After` and the `unavailable` code.
fn is_overload(answer: &Answer) -> bool {
    if answer.status != 503 || !answer.headers.contains_key(reqwest::header::RETRY_AFTER) {
        return false;
    }
    let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    let code = body["error"]["code"]
        .as_str()
        .or(body["code"].as_str())
        .unwrap_or_default();
    code.eq_ignore_ascii_case("unavailable")
}

fn body_excerpt(body: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(body);
    if text.chars().count() > max {
        format!(
            "{}… ({} bytes)",
            text.chars().take(max).collect::<String>(),
            body.len()
        )
    } else {
        text.into_owned()
    }
}

fn show_sent(sent: &Sent) -> String {
    let mut out = format!(
        "    {} {}\n",
        sent.method,
        body_excerpt(sent.path.as_bytes(), 300)
    );
    for (name, value) in &sent.headers {
        out.push_str(&format!("    {name}: {}\n", body_excerpt(value, 160)));
    }
    if sent.body.is_empty() {
        out.push_str("    (no body)\n");
    } else {
        out.push_str(&format!(
            "    body ({} bytes): {:?}\n",
            sent.body.len(),
            body_excerpt(&sent.body, 300)
        ));
    }
    out
}

/// What in `bytes` stands for a fixture or a built token, readable: spans
/// decoded (`<<mint:sub~|~sid~|~aud~|~roles>>`), placeholders kept.
fn readable(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut rest = bytes;
    while let Some(at) = find(rest, b"<<") {
        out.push_str(&String::from_utf8_lossy(&rest[..at]));
        let span = &rest[at..];
        let decoded = span
            .iter()
            .take(8)
            .position(|&b| b == b':')
            .and_then(|colon| {
                let end = colon + 1 + find(&span[colon + 1..], b">>")?;
                let inner = unhex(&span[colon + 1..end])?;
                let tag = String::from_utf8_lossy(&span[2..colon]);
                Some((
                    format!("<<{tag}:{}>>", String::from_utf8_lossy(&inner)),
                    end + 2,
                ))
            });
        match decoded {
            Some((text, len)) => {
                out.push_str(&text);
                rest = &span[len..];
            }
            None => {
                out.push_str("<<");
                rest = &span[2..];
            }
        }
    }
    out.push_str(&String::from_utf8_lossy(rest));
    out
}

/// The symbolic parts of a case (those with placeholders or built tokens).
fn show_symbolic(case: &Case) -> String {
    let symbolic = |b: &[u8]| find(b, b"<<").is_some() || b.contains(&b'@');
    let mut out = String::from("    as generated (symbolic parts):\n");
    if symbolic(case.path.as_bytes()) {
        out.push_str(&format!("      path {}\n", readable(case.path.as_bytes())));
    }
    for (name, value) in &case.headers {
        if symbolic(value) {
            out.push_str(&format!("      {name}: {}\n", readable(value)));
        }
    }
    if symbolic(&case.body) {
        out.push_str(&format!(
            "      body {}\n",
            body_excerpt(readable(&case.body).as_bytes(), 400)
        ));
    }
    out
}

/// Logs the extension fixture in over HTTP; returns (user id, session id, token).
async fn extension_login(
    client: &reqwest::Client,
    server: &TestServer,
    resolver: &Resolver,
) -> (String, String, String) {
    let twitch = resolver.lookup("TWITCH_OK").expect("a Twitch JWT");
    let r = client
        .post(server.url("/api/v1/extension/auth/login"))
        .bearer_auth(twitch)
        .send()
        .await
        .expect("the extension login answers");
    assert_eq!(r.status(), 200, "the extension fixture logs in");
    let body: Value = r.json().await.expect("a JSON login answer");
    let token = body["access_token"]
        .as_str()
        .expect("an access token")
        .to_string();
    let claims = server
        .engine()
        .verify_access_token(&token, AUDIENCE_EXTENSION)
        .expect("the server's own extension token verifies");
    let sid = claims.sid.expect("an extension token names its session");
    (claims.sub, sid, token)
}

// ----- metrics -----

/// The label sets of every `tachigo_http_requests_total` series.
fn request_series(metrics: &str) -> Vec<BTreeMap<String, String>> {
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix("tachigo_http_requests_total{"))
        .filter_map(|rest| {
            rest.rsplit_once('}')
                .map(|(labels, _)| parse_labels(labels))
        })
        .collect()
}

/// Every label set of every series in the exposition.
fn all_series(metrics: &str) -> Vec<(String, BTreeMap<String, String>)> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, rest) = l.split_once('{')?;
            let (labels, _) = rest.rsplit_once('}')?;
            Some((name.to_string(), parse_labels(labels)))
        })
        .collect()
}

fn parse_labels(s: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        let key = key.trim_start_matches(',').trim().to_string();
        if key.is_empty() || chars.next() != Some('"') {
            break;
        }
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => break,
                },
                '"' => break,
                c => value.push(c),
            }
        }
        labels.insert(key, value);
    }
    labels
}

fn contains_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.windows(36).any(|w| {
        w.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
    })
}

/// Whether a label value holds text the fuzzer made up.
fn fuzzer_text(value: &str) -> bool {
    value.to_ascii_lowercase().contains("zz") || contains_uuid(value)
}

async fn metrics_text(h: &Harness) -> String {
    h.client
        .get(h.server.url("/metrics"))
        .send()
        .await
        .expect("/metrics answers")
        .text()
        .await
        .expect("/metrics has a body")
}

// ----- warm-up -----

/// Method, path, headers, body.
type WarmUpRow = (
    &'static str,
    &'static str,
    Vec<(&'static str, &'static str)>,
    &'static str,
);

/// One request to each real route, the way its client would send it.
fn warm_up_cases() -> Vec<Case> {
    let json_ct = ("content-type", "application/json");
    let origin = ("origin", FRONTEND);
    let web = ("cookie", "tachigo.session_token=@WEB@");
    let member = ("authorization", "Bearer @MEMBER_AT@");
    let admin = ("authorization", "Bearer @ADMIN_AT@");
    let list: Vec<WarmUpRow> = vec![
        ("GET", "/healthz", vec![], ""),
        ("GET", "/readyz", vec![], ""),
        ("GET", "/metrics", vec![], ""),
        ("GET", "/.well-known/jwks.json", vec![], ""),
        (
            "POST",
            "/api/v1/auth/register",
            vec![json_ct, origin],
            r#"{"email":"warm-up@edge.example","password":"another good passphrase","name":"Warm"}"#,
        ),
        (
            "POST",
            "/api/v1/auth/login",
            vec![json_ct, origin],
            r#"{"email":"@MEMBER_EMAIL@","password":"correct horse battery staple"}"#,
        ),
        (
            "POST",
            "/api/v1/auth/refresh",
            vec![origin, ("cookie", "tachigo_refresh=@REFRESH@")],
            "",
        ),
        (
            "POST",
            "/api/v1/auth/logout",
            vec![json_ct, origin],
            r#"{"refresh_token":"@MEMBER_SID@.AAAA"}"#,
        ),
        ("GET", "/api/v1/auth/me", vec![member], ""),
        ("GET", "/api/v1/auth/sessions", vec![member], ""),
        (
            "DELETE",
            "/api/v1/auth/sessions/00000000-0000-4000-8000-000000000000",
            vec![member],
            "",
        ),
        (
            "POST",
            "/api/v1/auth/sessions/revoke-others",
            vec![member, origin],
            "",
        ),
        (
            "POST",
            "/api/v1/extension/auth/login",
            vec![("authorization", "Bearer @TWITCH_OK@")],
            "",
        ),
        (
            "GET",
            "/api/v1/extension/me",
            vec![("authorization", "Bearer @EXT_AT@")],
            "",
        ),
        ("GET", "/api/auth/get-session", vec![web], ""),
        (
            "POST",
            "/api/auth/sign-in/social",
            vec![json_ct, origin],
            r#"{"provider":"local"}"#,
        ),
        (
            "GET",
            "/api/auth/sign-in/social/local?callbackURL=/welcome",
            vec![],
            "",
        ),
        ("GET", "/api/auth/callback/local", vec![], ""),
        ("GET", "/api/auth/list-sessions", vec![web], ""),
        (
            "POST",
            "/api/auth/revoke-session",
            vec![web, origin, json_ct],
            r#"{"id":"00000000-0000-4000-8000-000000000000"}"#,
        ),
        ("GET", "/api/auth/list-accounts", vec![web], ""),
        (
            "POST",
            "/api/auth/link-social",
            vec![web, origin, json_ct],
            r#"{"provider":"local","callbackURL":"/settings"}"#,
        ),
        (
            "POST",
            "/api/auth/unlink-account",
            vec![web, origin, json_ct],
            r#"{"providerId":"nothing-linked"}"#,
        ),
        (
            "POST",
            "/api/auth/revoke-other-sessions",
            vec![web, origin],
            "",
        ),
        ("POST", "/api/auth/revoke-sessions", vec![web, origin], ""),
        (
            "POST",
            "/api/auth/sign-out",
            vec![web, origin, json_ct],
            "{}",
        ),
        ("GET", "/api/auth/ok", vec![], ""),
        ("GET", "/api/v1/admin/users?email=member", vec![admin], ""),
        ("GET", "/api/v1/admin/users/@MEMBER_UID@", vec![admin], ""),
        (
            "PUT",
            "/api/v1/admin/users/@MEMBER_UID@/roles",
            vec![admin, json_ct],
            r#"{"roles":["member"]}"#,
        ),
        (
            "GET",
            "/api/v1/admin/users/@MEMBER_UID@/sessions",
            vec![admin],
            "",
        ),
        (
            "DELETE",
            "/api/v1/admin/users/@MEMBER_UID@/sessions/00000000-0000-4000-8000-000000000000",
            vec![admin],
            "",
        ),
        (
            "DELETE",
            "/api/v1/admin/users/@MEMBER_UID@/sessions",
            vec![admin],
            "",
        ),
    ];
    list.into_iter()
        .map(|(method, path, headers, body)| {
            let template_path = path.split('?').next().unwrap_or(path);
            let route = ROUTES
                .iter()
                .position(|(m, t)| *m == method && template_matches(t, template_path))
                .unwrap_or_else(|| panic!("warm-up path {path} is one of ROUTES"));
            Case {
                route,
                method: method.to_string(),
                path: path.to_string(),
                headers: headers
                    .into_iter()
                    .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                    .collect(),
                body: body.as_bytes().to_vec(),
            }
        })
        .collect()
}

fn template_matches(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| t == p || (t.starts_with('{') && t.ends_with('}')))
}

// ----- the run -----

/// A request that was sent, its status and what it showed.
type Example = (Sent, Option<u16>, String);

/// What one distinct failure looked like.
struct Found {
    count: usize,
    detail: String,
    status: Option<u16>,
    first: Sent,
    minimal: Option<Example>,
    /// The minimal case as generated (placeholders and spans readable).
    minimal_case: Option<Case>,
}

/// `kind @ METHOD template` of what was really sent: the template the path
/// matches (any method's), the method folded to the standard ones or `other`.
fn signature(kind: &str, sent: &Sent) -> String {
    let path = sent.path.split('?').next().unwrap_or_default();
    let matching: Vec<&(&str, &str)> = ROUTES
        .iter()
        .filter(|(_, t)| template_matches(t, path))
        .collect();
    let template = matching
        .iter()
        .find(|(m, _)| *m == sent.method)
        .or(matching.first())
        .map_or("(no route)", |(_, t)| *t);
    let method = if STANDARD_METHODS.contains(&sent.method.as_str()) {
        sent.method.as_str()
    } else {
        "other"
    };
    format!("{kind} @ {method} {template}")
}

#[test]
fn every_route_survives_generated_requests() {
    let test_started = Instant::now();
    count_panics();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let problems = runtime.block_on(fuzz(test_started));
    drop(runtime);
    assert!(
        problems.is_empty(),
        "edge fuzzing found {} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

async fn fuzz(test_started: Instant) -> Vec<String> {
    let seed = std::env::var("EDGE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(rand::random);
    println!("edge_fuzz: seed {seed} (replay with EDGE_FUZZ_SEED={seed})");

    // ----- one server for the whole run -----
    let provider = OidcProvider::start().await;
    provider.set_user(TestUser::verified("edge-user"));
    let twitch_secret = twitch_extension_secret();
    let server = TestServer::start_with(|config| {
        add_oidc_provider(config, "local", &provider);
        config.dashboard.allow_signup = true;
        config.extension.client_ids = vec![TWITCH_CLIENT_ID.into()];
        config.extension.secrets = vec![ExtensionSecret {
            secret: twitch_secret.clone(),
            ..ExtensionSecret::default()
        }];
    })
    .await;
    let engine = server.engine().clone();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("an HTTP client");

    // ----- fixtures -----
    let admin = engine
        .create_user(NewUser {
            email: Some(ADMIN_EMAIL.into()),
            name: Some("Edge Admin".into()),
            password: None,
            roles: vec!["admin".into()],
        })
        .await
        .expect("the admin is created");
    let member = engine
        .create_user(NewUser {
            email: Some(MEMBER_EMAIL.into()),
            name: Some("Edge Member".into()),
            password: Some(DASHBOARD_PASSWORD.into()),
            roles: vec!["member".into()],
        })
        .await
        .expect("the member is created");
    let mut vars = BTreeMap::new();
    vars.insert("MEMBER_EMAIL", MEMBER_EMAIL.to_string());
    vars.insert("ISSUER", server.config.server.public_url.clone());
    vars.insert("BASE", server.base.clone());
    let resolver = Resolver {
        vars,
        twitch_key: STANDARD.decode(&twitch_secret).expect("a base64 secret"),
        twitch_secret,
        engine: engine.clone(),
    };
    let (ext_uid, ext_sid, ext_at) = extension_login(&client, &server, &resolver).await;
    let mut h = Harness {
        server,
        client,
        resolver,
        fixtures: Fixtures {
            admin_uid: admin.id.clone(),
            admin_sid: String::new(),
            admin_at: String::new(),
            member_uid: member.id.clone(),
            member_sid: String::new(),
            member_at: String::new(),
            refresh: String::new(),
            refresh_generation: 0,
            web_sid: String::new(),
            web: String::new(),
            ext_uid: ext_uid.clone(),
            ext_sid,
            ext_at,
        },
        known_users: [admin.id, member.id, ext_uid].into_iter().collect(),
        repairs: 0,
    };
    h.repair().await;
    h.repairs = 0;
    // The digest must notice a write: one outside any case, before and after.
    let unchanged = h.digest().await;
    engine
        .create_session(&h.fixtures.member_uid, new_session(Surface::Web))
        .await
        .expect("a spare web session");
    assert_ne!(
        h.digest().await,
        unchanged,
        "the storage digest sees a new session"
    );

    let mut problems: Vec<String> = Vec::new();
    let mut found: BTreeMap<String, Found> = BTreeMap::new();

    // ----- warm-up: each real route once, and a whole sign-in with the provider -----
    let sign_in = oauth_sign_in(&h.server, &browser(), "local", json!({})).await;
    let landed = sign_in.status().as_u16();
    let landed_at = if landed == 302 {
        location(&sign_in)
    } else {
        String::new()
    };
    println!("edge_fuzz: warm-up social sign-in through the provider: {landed} -> {landed_at}");
    if landed != 302 || !landed_at.starts_with(FRONTEND) || landed_at.contains("error=") {
        problems.push(format!(
            "warm-up: a social sign-in through the local OIDC provider did not land on the frontend ({landed} {landed_at})"
        ));
    }
    let mut warm_up_statuses = Vec::new();
    for case in warm_up_cases() {
        let outcome = h.run_case(&case).await;
        warm_up_statuses.push(format!(
            "{} {} -> {}",
            case.method,
            case.path,
            outcome.status.map_or("none".to_string(), |s| s.to_string())
        ));
        for (kind, detail) in outcome.failures {
            problems.push(format!(
                "warm-up {kind} on {} {}: {detail}\n{}",
                case.method,
                case.path,
                show_sent(&outcome.sent)
            ));
        }
        h.repair().await;
    }
    for user in h
        .engine()
        .find_users_by_email("", 100_000)
        .await
        .unwrap_or_default()
    {
        h.known_users.insert(user.id);
    }
    println!("edge_fuzz: warm-up:\n  {}", warm_up_statuses.join("\n  "));
    let warm_metrics = metrics_text(&h).await;
    let series_after_warm_up = request_series(&warm_metrics).len();
    println!(
        "edge_fuzz: {series_after_warm_up} tachigo_http_requests_total series after the warm-up ({:.1}s since start)",
        test_started.elapsed().as_secs_f64()
    );

    // ----- the fuzz loop -----
    let mut runner = TestRunner::new(ProptestConfig {
        cases: TARGET_CASES,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let strategy = case();
    let loop_started = Instant::now();
    let mut cases = 0usize;
    let mut shrink_runs = 0usize;
    let mut shrink_time = Duration::ZERO;
    let mut overloads = 0usize;
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_route = vec![0usize; ROUTES.len()];
    let mut stopped_by_time = false;
    let mut observed: BTreeMap<String, (usize, Example)> = BTreeMap::new();
    let mut series_at_half = None;
    let target = std::env::var("EDGE_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(runner.config().cases as usize);
    while cases < target {
        if test_started.elapsed() >= LOOP_DEADLINE {
            stopped_by_time = true;
            break;
        }
        let mut tree = strategy
            .new_tree(&mut runner)
            .expect("the strategy generates");
        let case = tree.current();
        let outcome = h.run_case(&case).await;
        cases += 1;
        per_route[case.route] += 1;
        *statuses
            .entry(outcome.status.map_or("none".to_string(), |s| s.to_string()))
            .or_default() += 1;
        if outcome.overload {
            overloads += 1;
        }
        for (kind, detail) in &outcome.observations {
            let seen = observed
                .entry(signature(kind, &outcome.sent))
                .or_insert_with(|| (0, (outcome.sent.clone(), outcome.status, detail.clone())));
            seen.0 += 1;
        }
        if cases == TARGET_CASES as usize / 2 {
            series_at_half = Some(request_series(&metrics_text(&h).await).len());
        }
        h.repair().await;
        let mut to_shrink = None;
        for (kind, detail) in &outcome.failures {
            let sig = signature(kind, &outcome.sent);
            match found.get_mut(&sig) {
                Some(f) => f.count += 1,
                None => {
                    found.insert(
                        sig.clone(),
                        Found {
                            count: 1,
                            detail: detail.clone(),
                            status: outcome.status,
                            first: outcome.sent.clone(),
                            minimal: None,
                            minimal_case: None,
                        },
                    );
                    if to_shrink.is_none() && found.len() <= SHRINK_FAILURES {
                        to_shrink = Some((*kind, sig));
                    }
                }
            }
        }
        if let Some((kind, sig)) = to_shrink {
            if shrink_time < SHRINK_BUDGET && test_started.elapsed() < LOOP_DEADLINE {
                let started = Instant::now();
                let deadline =
                    (started + (SHRINK_BUDGET - shrink_time)).min(test_started + LOOP_DEADLINE);
                let (minimal, runs) = shrink(&mut h, &mut *tree, &sig, deadline).await;
                shrink_time += started.elapsed();
                shrink_runs += runs;
                if let (Some((minimal_case, outcome)), Some(f)) = (minimal, found.get_mut(&sig)) {
                    f.minimal_case = Some(minimal_case);
                    let detail = outcome
                        .failures
                        .iter()
                        .find(|(k, _)| *k == kind)
                        .map(|(_, d)| d.clone())
                        .unwrap_or_default();
                    f.minimal = Some((outcome.sent, outcome.status, detail));
                }
            }
        }
    }
    let loop_time = loop_started.elapsed();

    // ----- across the run -----
    let final_metrics = metrics_text(&h).await;
    if let Ok(path) = std::env::var("EDGE_FUZZ_DUMP_METRICS") {
        std::fs::write(path, &final_metrics).expect("the metrics dump is written");
    }
    let series = request_series(&final_metrics);
    let mut leaked: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for labels in &series {
        for (key, value) in labels {
            if fuzzer_text(value) {
                leaked.entry(key.clone()).or_default().insert(value.clone());
            }
        }
    }
    let mut leaked_elsewhere: BTreeSet<String> = BTreeSet::new();
    for (name, labels) in all_series(&final_metrics) {
        if name == "tachigo_http_requests_total" {
            continue;
        }
        for (key, value) in labels {
            if fuzzer_text(&value) {
                leaked_elsewhere.insert(format!("{name}{{{key}=\"{value}\"}}"));
            }
        }
    }
    let panics = PANICS.load(Ordering::SeqCst);

    // ----- report -----
    println!(
        "edge_fuzz: {cases} cases in {:.1}s ({:.0}/s){}, {shrink_runs} shrink runs in {:.1}s, {} fixture repairs, test time so far {:.1}s",
        loop_time.as_secs_f64(),
        cases as f64 / loop_time.as_secs_f64().max(0.001),
        if stopped_by_time { ", stopped by the time bound" } else { "" },
        shrink_time.as_secs_f64(),
        h.repairs,
        test_started.elapsed().as_secs_f64()
    );
    println!("edge_fuzz: statuses {statuses:?}");
    let routes: Vec<String> = ROUTES
        .iter()
        .zip(&per_route)
        .map(|((m, t), n)| format!("{m} {t}: {n}"))
        .collect();
    println!(
        "edge_fuzz: cases per route template:\n  {}",
        routes.join("\n  ")
    );
    println!(
        "edge_fuzz: {} known users, {} users in storage, {} pending OAuth states",
        h.known_users.len(),
        h.engine().user_count().await.unwrap(),
        h.engine().pending_authorization_count()
    );
    println!(
        "edge_fuzz: tachigo_http_requests_total series: {series_after_warm_up} after the warm-up, {} at the end (bound {SERIES_BOUND})",
        series.len()
    );
    if let Some(half) = series_at_half {
        println!("edge_fuzz: {half} series after half the target cases");
    }
    for (sig, (count, (sent, status, detail))) in &observed {
        println!(
            "edge_fuzz: observation (not failed) {sig}: {count} case(s); first: status {status:?}, {detail}\n{}",
            show_sent(sent)
        );
    }
    if overloads > 0 {
        println!(
            "edge_fuzz: {overloads} overload answers (503 + Retry-After + `unavailable`), accepted"
        );
    }

    if cases < MIN_CASES {
        problems.push(format!(
            "only {cases} cases ran (at least {MIN_CASES} must, in {LOOP_DEADLINE:?})"
        ));
    }
    if panics > 0 {
        let messages = PANIC_MESSAGES.lock().map(|m| m.clone()).unwrap_or_default();
        problems.push(format!(
            "{panics} panic(s) in the process:\n  {}",
            messages.join("\n  ")
        ));
    }
    if series.len() > SERIES_BOUND {
        problems.push(format!(
            "tachigo_http_requests_total has {} series at the end (bound {SERIES_BOUND}; {series_after_warm_up} after the warm-up)",
            series.len()
        ));
    }
    for (key, values) in &leaked {
        let sample: Vec<&String> = values.iter().take(12).collect();
        problems.push(format!(
            "tachigo_http_requests_total label `{key}` carries fuzzer-made text in {} distinct values, e.g. {sample:?}",
            values.len()
        ));
    }
    if !leaked_elsewhere.is_empty() {
        let sample: Vec<&String> = leaked_elsewhere.iter().take(12).collect();
        problems.push(format!(
            "{} other metric series carry fuzzer-made label values, e.g. {sample:?}",
            leaked_elsewhere.len()
        ));
    }
    for (sig, f) in &found {
        let mut text = format!(
            "{sig}: {} case(s); first: status {:?}, {}\n{}",
            f.count,
            f.status,
            f.detail,
            show_sent(&f.first)
        );
        if let Some((sent, status, detail)) = &f.minimal {
            text.push_str(&format!(
                "  shrunk to: status {status:?}, {detail}\n{}{}",
                show_sent(sent),
                f.minimal_case
                    .as_ref()
                    .map_or_else(String::new, show_symbolic)
            ));
        }
        problems.push(text);
    }

    // Every engine handle must be gone for the database to close at stop.
    let Harness {
        mut server,
        client,
        resolver,
        ..
    } = h;
    drop(client);
    drop(resolver);
    drop(engine);
    let stopping = Instant::now();
    let stopped = tokio::time::timeout(Duration::from_secs(10), server.stop()).await;
    drop(provider);
    println!(
        "edge_fuzz: server stop took {:.1}s{}",
        stopping.elapsed().as_secs_f64(),
        if stopped.is_err() { " (timed out)" } else { "" }
    );
    println!(
        "edge_fuzz: done in {:.1}s, {} problem(s)",
        test_started.elapsed().as_secs_f64(),
        problems.len()
    );
    problems
}

/// Whether `case` still fails with signature `wanted` (see [`signature`]).
async fn still_fails(h: &mut Harness, case: &Case, wanted: &str) -> Option<Outcome> {
    let outcome = h.run_case(case).await;
    h.repair().await;
    let same = outcome
        .failures
        .iter()
        .any(|(k, _)| signature(k, &outcome.sent) == wanted);
    same.then_some(outcome)
}

/// Shrinks a failing case with proptest's value tree, keeping each simpler
/// candidate that still fails with the same signature (property, method, route),
/// then drops by hand what the failure does not need (each header, the body,
/// the query). Returns the smallest failing case found (if any is smaller than
/// the original) and how many requests that took.
async fn shrink(
    h: &mut Harness,
    tree: &mut dyn ValueTree<Value = Case>,
    wanted: &str,
    deadline: Instant,
) -> (Option<(Case, Outcome)>, usize) {
    let mut best: Option<(Case, Outcome)> = None;
    let mut runs = 0;
    let mut advanced = tree.simplify();
    while advanced && runs < SHRINK_STEPS && Instant::now() < deadline {
        let candidate = tree.current();
        runs += 1;
        advanced = match still_fails(h, &candidate, wanted).await {
            Some(outcome) => {
                best = Some((candidate, outcome));
                tree.simplify()
            }
            None => tree.complicate(),
        };
    }
    let mut case = best
        .as_ref()
        .map_or_else(|| tree.current(), |(c, _)| c.clone());
    // Headers first (one at a time, each judged on what is left), then body, query.
    let mut i = 0;
    while i < case.headers.len() + 2 && Instant::now() < deadline {
        let mut c = case.clone();
        let header_count = case.headers.len();
        if i < header_count {
            c.headers.remove(header_count - 1 - i);
        } else if i == header_count {
            if c.body.is_empty() {
                i += 1;
                continue;
            }
            c.body.clear();
        } else {
            match c.path.split_once('?') {
                Some((path, _)) => c.path = path.to_string(),
                None => break,
            }
        }
        runs += 1;
        match still_fails(h, &c, wanted).await {
            Some(outcome) => {
                best = Some((c.clone(), outcome));
                if i >= header_count {
                    i += 1;
                }
                case = c;
            }
            None => i += 1,
        }
    }
    (best, runs)
}

/// The helpers the run's verdict rests on, checked without a server.
#[test]
fn metric_labels_are_parsed_and_fuzzer_text_is_recognised() {
    let text = "# TYPE tachigo_http_requests_total counter\n\
        tachigo_http_requests_total{contract=\"oauth\",method=\"GET\",route=\"/api/auth/callback/{provider}\",status=\"302\"} 3\n\
        tachigo_http_requests_total{contract=\"none\",method=\"ZZ1F\",route=\"/a\\\"b/zz12\",status=\"404\"} 1\n\
        tachigo_other{x=\"y\"} 1\n";
    let series = request_series(text);
    assert_eq!(series.len(), 2);
    assert_eq!(series[0]["route"], "/api/auth/callback/{provider}");
    assert_eq!(series[1]["route"], "/a\"b/zz12");
    assert!(!fuzzer_text(&series[0]["route"]));
    assert!(fuzzer_text(&series[1]["route"]));
    assert!(fuzzer_text(&series[1]["method"]));
    assert!(fuzzer_text(
        "/api/v1/auth/sessions/3f2c9a4e-0000-4000-8000-000000000000"
    ));
    assert_eq!(all_series(text).len(), 3);
    assert!(template_matches(
        "/api/v1/admin/users/{id}/roles",
        "/api/v1/admin/users/x/roles"
    ));
    assert!(!template_matches(
        "/api/v1/admin/users/{id}",
        "/api/v1/admin/users/x/roles"
    ));
}
