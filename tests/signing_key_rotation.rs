//! Online signing-key rotation over HTTP: a verifier that caches the JWKS for
//! exactly its advertised `max-age` never meets an unknown `kid` across an
//! operator-started and a scheduled rotation; a new key is in the JWKS at
//! least a cache lifetime before a token carries it; a retired key stays until
//! its last token expired, then goes; `POST /api/v1/admin/keys/rotate` refuses
//! bad callers and bad input and changes nothing then; a pending key survives
//! a restart and still activates at its time.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use support::*;
use tachigo_engine::access_token::{AccessClaims, AUDIENCE_DASHBOARD};
use tachigo_engine::config::{Config, ConfigDuration};
use tachigo_engine::RevokeScope;

/// `tokens.jwks_cache_lifetime` in these tests (the JWKS `max-age`).
const CACHE_S: u64 = 1;
/// `tokens.access_ttl` in these tests.
const ACCESS_TTL_S: i64 = 2;

fn short_timing(c: &mut Config) {
    c.tokens.jwks_cache_lifetime = ConfigDuration::from_secs(CACHE_S);
    c.tokens.access_ttl = ConfigDuration::from_secs(ACCESS_TTL_S as u64);
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The JWKS as served: the kids it lists, their `x`, and the `max-age` it advertises.
struct Jwks {
    keys: BTreeMap<String, String>,
    max_age_s: u64,
}

async fn fetch_jwks(server: &TestServer) -> Jwks {
    let r = plain_client()
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cache_control = r.headers()["cache-control"].to_str().unwrap().to_string();
    let max_age_s = cache_control
        .strip_prefix("public, max-age=")
        .unwrap_or_else(|| panic!("Cache-Control {cache_control:?}"))
        .parse()
        .unwrap();
    let body: Value = r.json().await.unwrap();
    let keys = body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            assert_eq!(k["alg"], "EdDSA");
            (
                k["kid"].as_str().unwrap().to_string(),
                k["x"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    Jwks { keys, max_age_s }
}

fn jwt_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn kid_of(token: &str) -> String {
    jwt_part(token, 0)["kid"].as_str().unwrap().to_string()
}

/// A relying service that verifies tokens offline and keeps the JWKS for
/// exactly the advertised `max-age` — never re-fetching on an unknown kid.
struct CachingVerifier {
    cached: Option<(Instant, Jwks)>,
    fetches: usize,
}

impl CachingVerifier {
    async fn verify(&mut self, server: &TestServer, token: &str) -> Result<Value, String> {
        let expired = self
            .cached
            .as_ref()
            .is_none_or(|(at, jwks)| at.elapsed() >= Duration::from_secs(jwks.max_age_s));
        if expired {
            self.cached = Some((Instant::now(), fetch_jwks(server).await));
            self.fetches += 1;
        }
        let jwks = &self.cached.as_ref().unwrap().1;
        let kid = kid_of(token);
        let x = jwks
            .keys
            .get(&kid)
            .ok_or_else(|| format!("unknown kid {kid} (cached JWKS: {:?})", jwks.keys.keys()))?;
        let key = jsonwebtoken::DecodingKey::from_ed_components(x).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
        validation.set_audience(&[AUDIENCE_DASHBOARD]);
        jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map(|t| t.claims)
            .map_err(|e| format!("{e}"))
    }
}

/// A dashboard session refreshed over HTTP; each refresh yields an access token.
struct RefreshingClient {
    refresh: String,
}

impl RefreshingClient {
    async fn start(server: &TestServer, email: &str) -> RefreshingClient {
        create_dashboard_user(server, email).await;
        let r = dashboard_login(server, &plain_client(), email).await;
        assert_eq!(r.status(), 200);
        RefreshingClient {
            refresh: refresh_cookie_value(&r),
        }
    }

    async fn access_token(&mut self, server: &TestServer) -> String {
        let r = dashboard_refresh_with(server, &self.refresh).await;
        assert_eq!(r.status(), 200);
        self.refresh = refresh_cookie_value(&r);
        let body: Value = r.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_string()
    }
}

/// What one observation loop saw.
#[derive(Default)]
struct Observed {
    /// kid → first time (ms) an uncached JWKS fetch listed it.
    first_in_jwks: BTreeMap<String, i64>,
    /// kid → last time an uncached JWKS fetch listed it.
    last_in_jwks: BTreeMap<String, i64>,
    /// kid → first time a token carried it.
    first_in_token: BTreeMap<String, i64>,
    /// kid → latest `exp` (s) of a token it signed.
    last_exp: BTreeMap<String, i64>,
    /// (time, kids) of every uncached JWKS fetch.
    polls: Vec<(i64, BTreeSet<String>)>,
    tokens: usize,
}

impl Observed {
    fn poll(&mut self, at: i64, jwks: &Jwks) {
        for kid in jwks.keys.keys() {
            self.first_in_jwks.entry(kid.clone()).or_insert(at);
            self.last_in_jwks.insert(kid.clone(), at);
        }
        self.polls.push((at, jwks.keys.keys().cloned().collect()));
    }

    fn token(&mut self, at: i64, token: &str, claims: &Value) {
        let kid = kid_of(token);
        self.first_in_token.entry(kid.clone()).or_insert(at);
        let exp = claims["exp"].as_i64().unwrap();
        let last = self.last_exp.entry(kid).or_insert(exp);
        *last = (*last).max(exp);
        self.tokens += 1;
    }

    /// Every token-carrying kid was in the JWKS at least a cache lifetime
    /// before its first token, and in every fetch from then until its last
    /// token expired.
    fn check_publication(&self) {
        for (kid, first_token) in &self.first_in_token {
            let first_jwks = self.first_in_jwks[kid];
            if first_jwks == self.polls[0].0 && self.polls[0].1.contains(kid) {
                continue; // signing from before the loop started
            }
            assert!(
                first_token - first_jwks >= CACHE_S as i64 * 1000,
                "{kid} in the JWKS at {first_jwks}, in a token at {first_token}"
            );
        }
        for (kid, exp) in &self.last_exp {
            let published = self.first_in_jwks[kid];
            for (at, kids) in &self.polls {
                if (published..exp * 1000).contains(at) {
                    assert!(
                        kids.contains(kid),
                        "{kid} (a token of it lives until {exp}) missing from the JWKS at {at}"
                    );
                }
            }
        }
    }
}

/// Issues and verifies tokens, and polls the JWKS uncached, until `end`.
async fn observe_until(
    server: &TestServer,
    client: &mut RefreshingClient,
    verifier: &mut CachingVerifier,
    observed: &mut Observed,
    end: Instant,
) {
    while Instant::now() < end {
        observed.poll(now_ms(), &fetch_jwks(server).await);
        let token = client.access_token(server).await;
        let at = now_ms();
        let claims = verifier
            .verify(server, &token)
            .await
            .unwrap_or_else(|e| panic!("the caching verifier refused a fresh token: {e}"));
        observed.token(at, &token, &claims);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn rotate(server: &TestServer, admin: &str) -> reqwest::Response {
    plain_client()
        .post(server.url("/api/v1/admin/keys/rotate"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap()
}

fn iso_ms(value: &Value) -> i64 {
    let text = value.as_str().unwrap();
    let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{text}: {e}"));
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caching_verifier_never_meets_an_unknown_kid_across_two_rotations() {
    // The schedule rotates every 4 s; an operator rotates once first.
    let mut server = TestServer::start_with(|c| {
        short_timing(c);
        c.tokens.signing_key_rotation = Some(ConfigDuration::from_secs(4));
    })
    .await;
    let (_, _, admin) = signed_in(&server, "ops@example.com", &["admin"]).await;
    let mut client = RefreshingClient::start(&server, "verified@example.com").await;
    let mut verifier = CachingVerifier {
        cached: None,
        fetches: 0,
    };
    let mut observed = Observed::default();
    let first = fetch_jwks(&server).await;
    assert_eq!(first.max_age_s, CACHE_S);
    assert_eq!(first.keys.len(), 1);
    let k0 = first.keys.keys().next().unwrap().clone();
    observed.poll(now_ms(), &first);

    observe_until(
        &server,
        &mut client,
        &mut verifier,
        &mut observed,
        Instant::now() + Duration::from_millis(400),
    )
    .await;
    let r = rotate(&server, &admin).await;
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    let k1 = body["kid"].as_str().unwrap().to_string();
    assert_eq!(body["active_kid"], k0.as_str());
    let activates_at = iso_ms(&body["activates_at"]);
    // Activation waits for the cache lifetime plus every node's reload.
    assert!(activates_at - now_ms() >= CACHE_S as i64 * 1000, "{body}");

    // The operator's key and then the schedule's (due 4 s after the first
    // activation): 10 s covers both activations and the first key's drop.
    observe_until(
        &server,
        &mut client,
        &mut verifier,
        &mut observed,
        Instant::now() + Duration::from_secs(10),
    )
    .await;
    let signers: Vec<&String> = observed.first_in_token.keys().collect();
    assert_eq!(signers.len(), 3, "three keys signed: {signers:?}");
    assert!(observed.first_in_token.contains_key(&k1));
    assert!(observed.first_in_token[&k1] >= activates_at);
    let k2 = observed
        .first_in_token
        .keys()
        .find(|k| **k != k0 && **k != k1)
        .unwrap()
        .clone();
    // The operator's key, retired by the schedule's, leaves the JWKS once its
    // last token has expired: go on until then (bounded).
    let give_up = Instant::now() + Duration::from_secs(4);
    while observed.polls.last().unwrap().1.contains(&k1) && Instant::now() < give_up {
        observe_until(
            &server,
            &mut client,
            &mut verifier,
            &mut observed,
            Instant::now() + Duration::from_millis(200),
        )
        .await;
    }
    observed.check_publication();
    let last = observed.polls.last().unwrap();
    for gone in [&k0, &k1] {
        assert!(!last.1.contains(gone), "{gone} still published at the end");
        assert!(
            observed.last_in_jwks[gone] < observed.last_exp[gone] * 1000 + 2000,
            "{gone} published long after its last token expired"
        );
    }
    assert!(last.1.contains(&k2));
    assert!(verifier.fetches >= 5, "the verifier refetched as told");
    assert!(observed.tokens >= 30, "{} tokens", observed.tokens);

    // Both rotations are in the audit log.
    let events = server.engine().recent_audit_events(50).await.unwrap();
    let rotations: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == "signing_key_rotated")
        .map(|e| e.detail.as_str())
        .collect();
    assert!(rotations.len() >= 2, "{rotations:?}");
    assert!(rotations
        .iter()
        .any(|d| d.contains(&k1) && d.contains("admin")));
    assert!(rotations
        .iter()
        .any(|d| d.contains(&k2) && d.contains("schedule")));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rotate_endpoint_refuses_bad_callers_and_input_and_changes_nothing() {
    let mut server = TestServer::start_with(short_timing).await;
    let (_, _, member) = signed_in(&server, "member@example.com", &[]).await;
    let (admin_id, admin_session, admin) =
        signed_in(&server, "admin@example.com", &["admin"]).await;
    let (_, _, other_admin) = signed_in(&server, "admin2@example.com", &["admin"]).await;
    let url = server.url("/api/v1/admin/keys/rotate");
    let client = plain_client();
    let before = fetch_jwks(&server).await.keys;

    let mut forged = admin.clone();
    forged.pop();
    forged.push(if admin.ends_with('A') { 'B' } else { 'A' });
    let mut claims: AccessClaims = server
        .engine()
        .verify_access_token(&admin, AUDIENCE_DASHBOARD)
        .unwrap();
    claims.exp = claims.iat - 1;
    let expired = server.engine().keys().sign(&claims);
    let mut other_audience = claims.clone();
    other_audience.exp = other_audience.iat + 60;
    other_audience.aud = "extension".into();
    let other_audience = server.engine().keys().sign(&other_audience);

    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (client.post(&url), 401, "invalid_access_token"),
        (
            client
                .post(&url)
                .header("authorization", "Bearer not.a.jwt"),
            401,
            "invalid_access_token",
        ),
        (
            client.post(&url).header("authorization", "Basic YTpi"),
            401,
            "invalid_access_token",
        ),
        (
            client.post(&url).bearer_auth(&forged),
            401,
            "invalid_access_token",
        ),
        (
            client.post(&url).bearer_auth(&expired),
            401,
            "invalid_access_token",
        ),
        (
            client.post(&url).bearer_auth(&other_audience),
            401,
            "invalid_access_token",
        ),
        (client.post(&url).bearer_auth(&member), 403, "forbidden"),
        (
            client
                .post(&url)
                .bearer_auth(&admin)
                .json(&json!({"kid": "mine"})),
            400,
            "invalid_body",
        ),
        (
            client
                .post(&url)
                .bearer_auth(&admin)
                .header("content-type", "application/json")
                .body("{not json"),
            400,
            "invalid_body",
        ),
        (
            client
                .post(&url)
                .bearer_auth(&admin)
                .header("content-type", "text/plain")
                .body("rotate"),
            415,
            "",
        ),
        (
            client
                .post(&url)
                .bearer_auth(&admin)
                .header("content-type", "application/json")
                .body(format!("{{\"pad\":\"{}\"}}", "x".repeat(20_000))),
            413,
            "",
        ),
    ];
    for (request, status, code) in cases {
        let r = request.send().await.unwrap();
        let got = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert_eq!(got, status, "{text}");
        if !code.is_empty() {
            let body: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(body["error"]["code"], code, "{text}");
        }
        assert_eq!(fetch_jwks(&server).await.keys, before, "nothing changed");
    }

    // A revoked admin session is refused (its token replayed after the end).
    server
        .engine()
        .revoke_sessions(&admin_id, RevokeScope::One(admin_session))
        .await
        .unwrap();
    let r = rotate(&server, &admin).await;
    assert_eq!(r.status(), 401);
    assert_eq!(error_code(r).await, "session_revoked");
    assert_eq!(fetch_jwks(&server).await.keys, before);
    let events = server.engine().recent_audit_events(50).await.unwrap();
    assert!(!events.iter().any(|e| e.kind == "signing_key_rotated"));

    // An empty JSON object is accepted; the new key is published at once.
    let r = client
        .post(&url)
        .bearer_auth(&other_admin)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    let pending = body["kid"].as_str().unwrap().to_string();
    let after = fetch_jwks(&server).await.keys;
    assert_eq!(after.len(), 2);
    assert!(after.contains_key(&pending));
    // While it is pending a second rotation is refused and changes nothing.
    let r = rotate(&server, &other_admin).await;
    assert_eq!(r.status(), 409);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "key_rotation_pending");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&pending),
        "{body}"
    );
    assert_eq!(fetch_jwks(&server).await.keys, after);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_key_survives_a_restart_and_activates_at_its_time() {
    // A 2 s cache lifetime: activation 3 s after the rotation, time enough to restart.
    let mut server = TestServer::start_with(|c| {
        short_timing(c);
        c.tokens.jwks_cache_lifetime = ConfigDuration::from_secs(2);
    })
    .await;
    let (_, _, admin) = signed_in(&server, "ops@example.com", &["admin"]).await;
    let old = server.engine().keys().active_kid();
    let r = rotate(&server, &admin).await;
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    let pending = body["kid"].as_str().unwrap().to_string();
    let activates_at = iso_ms(&body["activates_at"]);

    server.restart().await;
    assert!(now_ms() < activates_at, "restarted before the activation");
    assert_eq!(server.engine().keys().active_kid(), old);
    assert_eq!(server.engine().keys().pending().unwrap().kid, pending);
    let mut client = RefreshingClient::start(&server, "after-restart@example.com").await;
    let jwks = fetch_jwks(&server).await;
    assert!(jwks.keys.contains_key(&pending) && jwks.keys.contains_key(&old));
    // Still pending after the restart: tokens carry the old kid until the time.
    let end = Instant::now() + Duration::from_secs(5);
    let mut seen_new = false;
    while Instant::now() < end {
        let before = now_ms();
        let token = client.access_token(&server).await;
        let after = now_ms();
        let kid = kid_of(&token);
        if after < activates_at {
            assert_eq!(kid, old, "the new key signed before {activates_at}");
        }
        if before >= activates_at {
            assert_eq!(kid, pending, "the old key signed after {activates_at}");
            seen_new = true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen_new);
    // The server verifies what it signs with the activated key.
    let token = client.access_token(&server).await;
    let r = plain_client()
        .get(server.url("/api/v1/auth/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_shorter_than_twice_the_cache_lifetime_is_refused_at_start() {
    let dir = tempfile::TempDir::new().unwrap();
    let mut config = test_config(&dir, free_port());
    use_test_store(&mut config).await;
    config.tokens.jwks_cache_lifetime = ConfigDuration::from_secs(60);
    config.tokens.signing_key_rotation = Some(ConfigDuration::from_secs(90));
    let refused = tachigo_auth::server::start(config.clone()).await;
    let message = format!("{:#}", refused.err().expect("the start is refused"));
    assert!(message.contains("tokens.signing_key_rotation"), "{message}");
    config.tokens.signing_key_rotation = None;
    config.tokens.jwks_cache_lifetime = ConfigDuration::from_millis(300);
    let refused = tachigo_auth::server::start(config).await;
    let message = format!("{:#}", refused.err().expect("the start is refused"));
    assert!(message.contains("tokens.jwks_cache_lifetime"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_on_one_postgresql_serves_a_new_key_before_it_signs() {
    // Two nodes on one PostgreSQL database (whatever store the suite runs on).
    let database = tachigo_testkit::postgres().fresh_database().await;
    let on_shared_database = |c: &mut Config| {
        short_timing(c);
        c.storage.backend = tachigo_engine::config::StorageBackend::Postgres;
        c.storage.postgres.url = Some(database.clone());
    };
    let mut a = TestServer::start_with(on_shared_database).await;
    let mut b = TestServer::start_with(on_shared_database).await;
    let old = a.engine().keys().active_kid();
    assert_eq!(b.engine().keys().active_kid(), old);
    let (_, _, admin) = signed_in(&a, "ops@example.com", &["admin"]).await;
    let (_, _, admin_on_b) = signed_in(&b, "ops-b@example.com", &["admin"]).await;
    let mut client_of_b = RefreshingClient::start(&b, "on-b@example.com").await;

    let r = rotate(&a, &admin).await;
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    let new = body["kid"].as_str().unwrap().to_string();
    let activates_at = iso_ms(&body["activates_at"]);
    assert!(fetch_jwks(&a).await.keys.contains_key(&new));
    // Node B sees the rotation under way in storage and starts no other.
    // (Each node is its own issuer here, so node B's operator signs in there.)
    let r = rotate(&b, &admin_on_b).await;
    assert_eq!(r.status(), 409);
    assert_eq!(error_code(r).await, "key_rotation_pending");

    // Node B lists the new key a whole cache lifetime before it signs,
    // signs with the old one until then and with the new one after.
    let mut listed_by_b = None;
    let mut b_signed_new = false;
    let end = Instant::now() + Duration::from_secs(3);
    while Instant::now() < end {
        let before = now_ms();
        if listed_by_b.is_none() && fetch_jwks(&b).await.keys.contains_key(&new) {
            listed_by_b = Some(before);
        }
        let token = client_of_b.access_token(&b).await;
        let after = now_ms();
        let kid = kid_of(&token);
        if after < activates_at {
            assert_eq!(kid, old, "node B signed with the new key early");
        }
        if before >= activates_at {
            assert_eq!(kid, new, "node B signed with the old key late");
            b_signed_new = true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let listed_by_b = listed_by_b.expect("node B lists the new key");
    assert!(
        listed_by_b <= activates_at - CACHE_S as i64 * 1000,
        "node B listed the key {} ms before it signed",
        activates_at - listed_by_b
    );
    assert!(b_signed_new);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_survives_the_server_being_killed_before_the_key_activates() {
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path().join("data");
    let store_env = test_store_env().await;
    let env: Vec<(&str, &str)> = [
        ("TACHIGO__TOKENS__JWKS_CACHE_LIFETIME", "2s"),
        ("TACHIGO__TOKENS__ACCESS_TTL", "2s"),
    ]
    .into_iter()
    .chain(store_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    .collect();
    let out = support::process::run_cli(
        &data,
        &[
            "user",
            "create",
            "--email",
            "ops@example.com",
            "--role",
            "admin",
            "--password-stdin",
        ],
        &format!("{DASHBOARD_PASSWORD}\n"),
        &env,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let login = |base: String| async move {
        let r = plain_client()
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"email": "ops@example.com", "password": DASHBOARD_PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_string()
    };
    let jwks_kids = |base: String| async move {
        let body: Value = plain_client()
            .get(format!("{base}/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_string())
            .collect::<BTreeSet<String>>()
    };

    let server = support::process::ServerChild::spawn(&data, &env).await;
    let admin = login(server.base.clone()).await;
    let old = kid_of(&admin);
    let r = plain_client()
        .post(server.url("/api/v1/admin/keys/rotate"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    let new = body["kid"].as_str().unwrap().to_string();
    let activates_at = iso_ms(&body["activates_at"]);
    server.kill_hard();

    // After the crash: both keys published, the old one signing until the time.
    let server = support::process::ServerChild::spawn(&data, &env).await;
    let kids = jwks_kids(server.base.clone()).await;
    assert_eq!(kids, BTreeSet::from([old.clone(), new.clone()]));
    let token = login(server.base.clone()).await;
    assert!(now_ms() < activates_at, "restarted within the 3 s lead");
    assert_eq!(kid_of(&token), old);
    let wait = (activates_at - now_ms()).max(0) as u64;
    tokio::time::sleep(Duration::from_millis(wait + 100)).await;
    let token = login(server.base.clone()).await;
    assert_eq!(kid_of(&token), new, "the pending key activated at its time");
    // The old key leaves the JWKS once its tokens have expired (2 s).
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    assert_eq!(
        jwks_kids(server.base.clone()).await,
        BTreeSet::from([new.clone()])
    );
    server.kill_hard();
}
