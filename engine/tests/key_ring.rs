//! The key ring on a manual clock: a rotated-in key is published at once,
//! signs exactly from its activation time, the key it replaced keeps verifying
//! and stays published until its last token expired; a rotation while one is
//! pending changes nothing; all of it read back the same after a restart.

mod common;

use common::{Harness, T0};
use tachigo_engine::access_token::AUDIENCE_DASHBOARD;
use tachigo_engine::keyring::Rotation;

fn kids(engine: &tachigo_engine::Engine) -> Vec<String> {
    let jwks: serde_json::Value = serde_json::from_str(&engine.keys().jwks_json()).unwrap();
    let mut kids: Vec<String> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect();
    kids.sort();
    kids
}

fn mint(engine: &tachigo_engine::Engine) -> String {
    engine
        .mint_access_token("user", None, AUDIENCE_DASHBOARD, &[], Default::default())
        .0
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_in_key_signs_from_its_activation_and_the_old_one_stays_until_its_tokens_expired()
{
    let options = common::options();
    let ttl = options.access_ttl_ms;
    let lead = options.jwks_cache_lifetime_ms * 3 / 2;
    let mut h = Harness::start(options.clone()).await;
    let old = h.engine.keys().active_kid();

    let Rotation::Started(pending) = h.engine.rotate_signing_key("test").await.unwrap() else {
        panic!("a rotation starts");
    };
    assert_eq!(pending.activates_at, T0 + lead);
    assert_eq!(kids(&h.engine).len(), 2);
    assert!(kids(&h.engine).contains(&pending.kid));
    assert_eq!(
        h.engine.rotate_signing_key("test").await.unwrap(),
        Rotation::AlreadyPending(pending.clone())
    );
    assert_eq!(kids(&h.engine).len(), 2);

    h.clock.advance_ms(lead - 1);
    let last_old = mint(&h.engine);
    assert_eq!(kid_of(&last_old), old);
    h.engine = common::restart(h.engine, h.dir.path(), options, h.clock.clone()).await;
    assert_eq!(h.engine.keys().pending(), Some(pending.clone()));
    h.clock.advance_ms(1);
    let first_new = mint(&h.engine);
    assert_eq!(kid_of(&first_new), pending.kid);
    assert_eq!(h.engine.keys().pending(), None);
    // The old key's last token still verifies until it expires.
    h.engine
        .verify_access_token(&last_old, AUDIENCE_DASHBOARD)
        .unwrap();
    h.clock.advance_ms(ttl - 1);
    assert_eq!(kids(&h.engine).len(), 2);
    h.clock.advance_ms(1);
    assert_eq!(kids(&h.engine), vec![pending.kid.clone()]);
    assert_eq!(kid_of(&mint(&h.engine)), pending.kid);
    h.engine
        .verify_access_token(&last_old, AUDIENCE_DASHBOARD)
        .unwrap_err();
}
