//! What the extension's tachigo token is worth after login: `GET /me`, the
//! extension session in the user's session list and its revocation, verification
//! with nothing but the published JWKS (as a separate watch service does), and
//! CORS for the Twitch iframe's origin. Also the stricter Twitch JWT rules (`crit`
//! header, `nbf`, `exp` at most a day ahead, canonical decimal ids), each refusal
//! checked to leave storage unchanged.

mod support;

use serde_json::{json, Value};
use support::{
    plain_client, twitch_claims, twitch_extension_secret, twitch_jwt, unix_now, TestServer,
};
use tachigo_engine::config::ExtensionSecret;
use tachigo_engine::{RevokeScope, Surface};

const CLIENT_ID: &str = "p9x2extclient";
const EXTENSION_ORIGIN: &str = "https://p9x2extclient.ext-twitch.tv";

struct Panel {
    server: TestServer,
    key: String,
}

async fn start() -> Panel {
    let key = twitch_extension_secret();
    let configured = key.clone();
    let server = TestServer::start_with(|config| {
        config.extension.client_ids = vec![CLIENT_ID.into()];
        config.extension.secrets = vec![ExtensionSecret {
            secret: configured,
            ..ExtensionSecret::default()
        }];
    })
    .await;
    Panel { server, key }
}

impl Panel {
    /// Logs a Twitch viewer in; returns the login reply.
    async fn login(&self, twitch_user_id: &str, channel_id: &str, role: &str) -> Value {
        let token = twitch_jwt(
            &self.key,
            &twitch_claims(Some(twitch_user_id), channel_id, role),
        );
        let r = plain_client()
            .post(self.server.url("/api/v1/extension/auth/login"))
            .bearer_auth(token)
            .header("user-agent", "tachimint-panel/1.0")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    async fn me(&self, token: &str) -> reqwest::Response {
        plain_client()
            .get(self.server.url("/api/v1/extension/me"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }
}

async fn error_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_answers_the_user_and_the_twitch_context_of_the_token() {
    let mut panel = start().await;
    let login = panel.login("77001", "314", "moderator").await;
    let token = login["access_token"].as_str().unwrap();

    let r = panel.me(token).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["user"]["id"], login["user"]["id"]);
    assert_eq!(me["user"]["roles"], json!([]));
    assert_eq!(me["user"]["guest"], false);
    assert_eq!(
        me["twitch"],
        json!({"channel_id": "314", "role": "moderator", "opaque_user_id": "U77001"})
    );
    assert!(me["session"]["id"].is_string());
    panel.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_refuses_missing_forged_and_foreign_tokens() {
    let mut panel = start().await;
    let login = panel.login("77002", "314", "viewer").await;
    let token = login["access_token"].as_str().unwrap().to_string();
    let user_id = login["user"]["id"].as_str().unwrap();

    let r = plain_client()
        .get(panel.server.url("/api/v1/extension/me"))
        .send()
        .await
        .unwrap();
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    assert_eq!(error_code(r).await, (401, "invalid_access_token".into()));

    let mut tampered = token.clone();
    tampered.replace_range(token.len() - 4.., "AAAA");
    // A dashboard token of the same user: right signature, wrong audience.
    let (dashboard_token, _) = panel.server.engine().mint_access_token(
        user_id,
        None,
        "dashboard",
        &[],
        Default::default(),
    );
    // The Twitch JWT itself is not a tachigo token.
    let twitch_token = twitch_jwt(&panel.key, &twitch_claims(Some("77002"), "314", "viewer"));
    for (name, bad) in [
        ("garbage", "garbage".to_string()),
        ("tampered signature", tampered),
        ("dashboard audience", dashboard_token),
        ("twitch jwt", twitch_token),
    ] {
        assert_eq!(
            error_code(panel.me(&bad).await).await,
            (401, "invalid_access_token".into()),
            "{name}"
        );
    }
    panel.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extension_login_is_a_listed_session_that_revoke_all_ends() {
    let mut panel = start().await;
    let login = panel.login("77003", "2718", "broadcaster").await;
    let token = login["access_token"].as_str().unwrap();
    let user_id = login["user"]["id"].as_str().unwrap();
    let engine = panel.server.engine();

    let sessions = engine.list_sessions(user_id).await.unwrap();
    assert_eq!(sessions.len(), 1);
    let session = &sessions[0];
    assert_eq!(session.surface, Surface::Extension);
    assert_eq!(session.user_agent.as_deref(), Some("tachimint-panel/1.0"));
    assert_eq!(session.ip.as_deref(), Some("127.0.0.1"));
    let context: Value = serde_json::from_str(session.context.as_deref().unwrap()).unwrap();
    assert_eq!(
        context,
        json!({"channel_id": "2718", "role": "broadcaster", "opaque_user_id": "U77003"})
    );
    let claims = engine.verify_access_token(token, "extension").unwrap();
    assert_eq!(claims.sid.as_deref(), Some(session.id.as_str()));
    // The session lives as long as the token.
    assert!(
        (session.expires_at / 1000 - claims.exp).abs() <= 1,
        "{} vs {}",
        session.expires_at,
        claims.exp
    );
    assert_eq!(panel.me(token).await.status(), 200);

    let ended = engine
        .revoke_sessions(user_id, RevokeScope::All)
        .await
        .unwrap();
    assert_eq!(ended, vec![session.id.clone()]);
    assert_eq!(
        error_code(panel.me(token).await).await,
        (401, "session_revoked".into())
    );
    assert!(engine.list_sessions(user_id).await.unwrap().is_empty());

    // Logging in again gives a new, working session.
    let again = panel.login("77003", "2718", "broadcaster").await;
    assert_eq!(again["user"]["id"], user_id);
    assert_eq!(
        panel
            .me(again["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
    panel.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_service_verifies_the_token_with_only_the_jwks_document() {
    let mut panel = start().await;
    let login = panel.login("77004", "1618", "viewer").await;
    let token = login["access_token"].as_str().unwrap();
    let issuer = panel.server.config.server.public_url.clone();
    let jwks_url = panel.server.url("/.well-known/jwks.json");

    // From here on, nothing but HTTP and the JWKS, as another service would do it.
    let jwks: jsonwebtoken::jwk::JwkSet = plain_client()
        .get(&jwks_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("the token's kid is published");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&["extension"]);
    validation.set_issuer(&[issuer.as_str()]);
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["sub"], login["user"]["id"]);
    assert_eq!(claims["aud"], "extension");
    assert_eq!(claims["roles"], json!([]));
    assert!(claims["sid"].is_string());
    assert_eq!(claims["channel_id"], "1618");
    assert_eq!(claims["twitch_role"], "viewer");
    assert_eq!(claims["opaque_user_id"], "U77004");

    // And the same check refuses a token whose payload was changed.
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    let mut forged = claims.clone();
    forged["twitch_role"] = json!("broadcaster");
    parts[1] = {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged.to_string())
    };
    assert!(jsonwebtoken::decode::<Value>(parts.join("."), &key, &validation).is_err());
    panel.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_admits_the_extension_origin_without_credentials_and_no_one_else() {
    let mut panel = start().await;
    let url = panel.server.url("/api/v1/extension/auth/login");
    let client = plain_client();
    let preflight = |origin: &'static str| {
        client
            .request(reqwest::Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization")
            .send()
    };

    let r = preflight(EXTENSION_ORIGIN).await.unwrap();
    assert_eq!(r.status(), 204);
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], EXTENSION_ORIGIN);
    assert!(h["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    assert!(h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("authorization"));
    assert!(!h.contains_key("access-control-allow-credentials"));

    // The actual request from the panel.
    let token = twitch_jwt(&panel.key, &twitch_claims(Some("77005"), "1", "viewer"));
    let r = client
        .post(&url)
        .header("origin", EXTENSION_ORIGIN)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], EXTENSION_ORIGIN);
    assert!(!r.headers().contains_key("access-control-allow-credentials"));
    let access: Value = r.json().await.unwrap();
    let r = client
        .get(panel.server.url("/api/v1/extension/me"))
        .header("origin", EXTENSION_ORIGIN)
        .bearer_auth(access["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], EXTENSION_ORIGIN);

    // server.trusted_origins are admitted too, still without credentials.
    let r = preflight("http://localhost:3000").await.unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://localhost:3000"
    );
    assert!(!r.headers().contains_key("access-control-allow-credentials"));

    // Anyone else, including another extension's origin, gets no CORS headers.
    for origin in [
        "https://evil.example",
        "https://someoneelse.ext-twitch.tv",
        "http://p9x2extclient.ext-twitch.tv",
    ] {
        let r = preflight(origin).await.unwrap();
        assert!(
            !r.headers().contains_key("access-control-allow-origin"),
            "{origin}"
        );
        assert!(
            !r.headers().contains_key("access-control-allow-methods"),
            "{origin}"
        );
        let r = client
            .post(&url)
            .header("origin", origin)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert!(
            !r.headers().contains_key("access-control-allow-origin"),
            "{origin}"
        );
        assert!(
            !r.headers().contains_key("access-control-allow-credentials"),
            "{origin}"
        );
    }
    // Close the kept-alive connections first: the server's graceful stop waits for them.
    drop(client);
    panel.server.stop().await;
}

// ----- Twitch JWT strictness: what login refuses, and that a refusal stores nothing -----

impl Panel {
    /// Presents a Twitch JWT to the login endpoint; any answer.
    async fn present(&self, twitch_token: &str) -> reqwest::Response {
        plain_client()
            .post(self.server.url("/api/v1/extension/auth/login"))
            .bearer_auth(twitch_token)
            .send()
            .await
            .unwrap()
    }

    /// What a refused login must leave as it was: the user count, the audit trail,
    /// and which user (if any) each of `twitch_ids` is linked to.
    async fn storage_state(&self, twitch_ids: &[&str]) -> (u64, usize, Vec<Option<String>>) {
        let engine = self.server.engine();
        let mut accounts = Vec::with_capacity(twitch_ids.len());
        for id in twitch_ids {
            accounts.push(engine.user_id_by_account("twitch", id).await.unwrap());
        }
        (
            engine.user_count().await.unwrap(),
            engine.recent_audit_events(10_000).await.unwrap().len(),
            accounts,
        )
    }

    /// Presents each token, expects 401 `invalid_extension_token` for all, and
    /// that storage did not change (in particular: no account for `twitch_ids`).
    async fn assert_refused_and_nothing_stored(
        &self,
        twitch_ids: &[&str],
        cases: Vec<(String, String)>,
    ) {
        let before = self.storage_state(twitch_ids).await;
        assert!(
            before.2.iter().all(Option::is_none),
            "no account exists yet"
        );
        for (name, token) in cases {
            assert_eq!(
                error_code(self.present(&token).await).await,
                (401, "invalid_extension_token".into()),
                "{name}"
            );
        }
        assert_eq!(self.storage_state(twitch_ids).await, before);
    }
}

/// A token with a header `jsonwebtoken::encode` would not write, HS256-signed
/// with the base64-decoded secret as Twitch does.
fn hand_signed(secret_base64: &str, header: &Value, claims: &Value) -> String {
    use base64::Engine as _;
    let b64 = |v: &Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
    };
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret_base64)
        .unwrap();
    let message = format!("{}.{}", b64(header), b64(claims));
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &jsonwebtoken::EncodingKey::from_secret(&key),
        jsonwebtoken::Algorithm::HS256,
    )
    .unwrap();
    format!("{message}.{signature}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_whose_header_carries_crit_is_refused_and_stores_nothing() {
    let mut panel = start().await;
    let claims = twitch_claims(Some("88001"), "314", "viewer");
    let mut cases = vec![(
        "crit [\"exp\"] written by jsonwebtoken".to_string(),
        jsonwebtoken::encode(
            &jsonwebtoken::Header {
                crit: Some(vec!["exp".into()]),
                ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
            },
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(&{
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD
                    .decode(&panel.key)
                    .unwrap()
            }),
        )
        .unwrap(),
    )];
    for crit in [json!(["b64"]), json!([]), json!(null), json!("exp")] {
        cases.push((
            format!("crit {crit}"),
            hand_signed(
                &panel.key,
                &json!({"alg": "HS256", "typ": "JWT", "crit": crit}),
                &claims,
            ),
        ));
    }
    panel
        .assert_refused_and_nothing_stored(&["88001"], cases)
        .await;

    // The same claims under a header without `crit` log in.
    let plain = hand_signed(&panel.key, &json!({"alg": "HS256", "typ": "JWT"}), &claims);
    assert_eq!(panel.present(&plain).await.status(), 200);
    panel.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_not_yet_valid_by_nbf_is_refused_and_a_past_nbf_is_accepted() {
    let mut panel = start().await;
    let with_nbf = |nbf: Value| {
        let mut claims = twitch_claims(Some("88002"), "314", "viewer");
        claims["nbf"] = nbf;
        twitch_jwt(&panel.key, &claims)
    };
    panel
        .assert_refused_and_nothing_stored(
            &["88002"],
            vec![
                // Beyond the 30 s leeway for clock skew.
                (
                    "nbf 2 minutes ahead".into(),
                    with_nbf(json!(unix_now() + 120)),
                ),
                (
                    "nbf a day ahead".into(),
                    with_nbf(json!(unix_now() + 86_400)),
                ),
                ("nbf a string".into(), with_nbf(json!("0"))),
                ("nbf null".into(), with_nbf(json!(null))),
                ("nbf negative".into(), with_nbf(json!(-1))),
            ],
        )
        .await;

    let r = panel.present(&with_nbf(json!(unix_now() - 60))).await;
    assert_eq!(r.status(), 200);
    let user_id = r.json::<Value>().await.unwrap()["user"]["id"].clone();
    assert_eq!(
        panel.storage_state(&["88002"]).await.2,
        vec![Some(user_id.as_str().unwrap().to_string())]
    );
    // Within the leeway: accepted.
    assert_eq!(
        panel
            .present(&with_nbf(json!(unix_now() + 5)))
            .await
            .status(),
        200
    );
    panel.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exp_more_than_a_day_ahead_is_refused_and_an_hour_ahead_is_accepted() {
    let mut panel = start().await;
    let with_exp = |exp: Value| {
        let mut claims = twitch_claims(Some("88003"), "314", "viewer");
        claims["exp"] = exp;
        twitch_jwt(&panel.key, &claims)
    };
    panel
        .assert_refused_and_nothing_stored(
            &["88003"],
            vec![
                (
                    "exp 2 days ahead".into(),
                    with_exp(json!(unix_now() + 2 * 86_400)),
                ),
                (
                    "exp a day and a minute ahead".into(),
                    with_exp(json!(unix_now() + 86_400 + 60)),
                ),
                ("exp u64::MAX".into(), with_exp(json!(u64::MAX))),
            ],
        )
        .await;

    assert_eq!(
        panel
            .present(&with_exp(json!(unix_now() + 3600)))
            .await
            .status(),
        200
    );
    panel.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_id_with_a_leading_zero_is_refused_and_never_becomes_a_second_account() {
    let mut panel = start().await;
    let token_for =
        |user_id: &str| twitch_jwt(&panel.key, &twitch_claims(Some(user_id), "314", "viewer"));
    let non_canonical = ["04242", "004242", "0", "+4242", "4242 ", "4.242e3"];
    let cases = non_canonical
        .iter()
        .map(|id| (format!("user_id {id:?}"), token_for(id)))
        .collect();
    let mut ids = non_canonical.to_vec();
    ids.push("4242");
    panel.assert_refused_and_nothing_stored(&ids, cases).await;

    // The canonical spelling is the account.
    let users = panel.server.engine().user_count().await.unwrap();
    let login = panel.login("4242", "314", "viewer").await;
    let user_id = login["user"]["id"].as_str().unwrap().to_string();
    assert_eq!(panel.server.engine().user_count().await.unwrap(), users + 1);

    // Once it exists, "04242" still does not reach it, nor make another one.
    let before = panel.storage_state(&ids).await;
    assert_eq!(before.2.last().unwrap().as_deref(), Some(user_id.as_str()));
    assert_eq!(
        error_code(panel.present(&token_for("04242")).await).await,
        (401, "invalid_extension_token".into())
    );
    assert_eq!(panel.storage_state(&ids).await, before);
    panel.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_id_with_a_leading_zero_or_non_digits_is_refused() {
    let mut panel = start().await;
    let cases = [
        "0314",
        "0",
        "31a4",
        "+314",
        "-314",
        " 314",
        "314\n",
        "3\u{0661}4",
        "123456789012345678901",
    ]
    .iter()
    .map(|channel| {
        (
            format!("channel_id {channel:?}"),
            twitch_jwt(&panel.key, &twitch_claims(Some("88005"), channel, "viewer")),
        )
    })
    .collect();
    panel
        .assert_refused_and_nothing_stored(&["88005"], cases)
        .await;

    let login = panel.login("88005", "314", "viewer").await;
    assert_eq!(login["twitch"]["channel_id"], "314");
    panel.server.stop().await;
}
