//! Pins the engine's user and session operations as seen from outside and in
//! storage: unique emails and password policy, password checks, provider sign-in
//! (idempotent, race-free, linking by email only when verified and allowed),
//! unlinking (never the last sign-in method), roles, revocation scopes, refresh
//! expiry, web sessions' sliding expiry, and that all of it survives an engine
//! restart on the same data directory.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::{
    dashboard_login, forged_token, new_session, open_engine, plain_user, restart, rotated, Harness,
    T0,
};
use tachigo_engine::clock::{Clock, ManualClock, SystemClock};
use tachigo_engine::{
    Engine, EngineError, NewUser, ProviderIdentity, Revocation, RevokeScope, Session, Surface,
};

const PASSWORD: &str = "correct horse battery staple";

fn identity(
    provider: &str,
    subject: &str,
    email: Option<&str>,
    verified: bool,
) -> ProviderIdentity {
    ProviderIdentity {
        provider: provider.into(),
        subject: subject.into(),
        email: email.map(str::to_string),
        email_verified: verified,
        name: Some(format!("{provider} {subject}")),
        image: None,
    }
}

fn with_password(email: &str, password: &str) -> NewUser {
    NewUser {
        email: Some(email.into()),
        password: Some(password.into()),
        ..NewUser::default()
    }
}

async fn audit_kinds(engine: &Engine) -> Vec<String> {
    engine
        .recent_audit_events(1_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

async fn stored_sessions(engine: &Engine, user_id: &str) -> Vec<Session> {
    engine.stored_sessions(user_id).await.unwrap()
}

async fn stored_session_ids(engine: &Engine, user_id: &str) -> HashSet<String> {
    stored_sessions(engine, user_id)
        .await
        .into_iter()
        .map(|s| s.id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_is_registered_once() {
    let h = Harness::start(common::options()).await;
    let user = h
        .engine
        .create_user(with_password(" Ada@Example.COM ", PASSWORD))
        .await
        .unwrap();
    assert_eq!(user.email.as_deref(), Some("ada@example.com"));
    assert!(user.has_password);
    assert_eq!(
        h.engine.stored_user(&user.id).await.unwrap(),
        Some(user.clone())
    );
    assert_eq!(
        h.engine.user_id_by_email("ada@example.com").await.unwrap(),
        Some(user.id.clone())
    );

    // The same address, however written, with or without a password.
    let again = h
        .engine
        .create_user(with_password("ADA@example.com", "another good password"))
        .await;
    assert!(matches!(again, Err(EngineError::EmailTaken)), "{again:?}");
    let again = h
        .engine
        .create_user(NewUser {
            email: Some("ada@example.com".into()),
            ..NewUser::default()
        })
        .await;
    assert!(matches!(again, Err(EngineError::EmailTaken)), "{again:?}");
    let invalid = h
        .engine
        .create_user(with_password("not an email", PASSWORD))
        .await;
    assert!(
        matches!(invalid, Err(EngineError::InvalidEmail)),
        "{invalid:?}"
    );

    assert_eq!(
        h.engine.user_count().await.unwrap(),
        1,
        "nothing was stored twice"
    );
    assert_eq!(
        h.engine.find_users_by_email("ada", 10).await.unwrap(),
        vec![user.clone()]
    );
    let created = audit_kinds(&h.engine)
        .await
        .iter()
        .filter(|k| *k == "user_created")
        .count();
    assert_eq!(created, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weak_passwords_are_refused_and_nothing_is_stored() {
    let h = Harness::start(common::options()).await;
    for (email, password) in [
        ("a@example.com", "short1!"),
        ("b@example.com", "aaaaaaaaaaaaaaaa"),
        ("c@example.com", "abababababababab"),
        (
            "dora.the.explorer@example.com",
            "Dora.The.Explorer@example.com",
        ),
    ] {
        let got = h.engine.create_user(with_password(email, password)).await;
        assert!(
            matches!(got, Err(EngineError::WeakPassword(_))),
            "{password:?} was accepted: {got:?}"
        );
        assert_eq!(h.engine.user_id_by_email(email).await.unwrap(), None);
    }
    assert_eq!(h.engine.user_count().await.unwrap(), 0);
    assert!(audit_kinds(&h.engine).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_password_accepts_only_the_right_password() {
    let h = Harness::start(common::options()).await;
    let user = h
        .engine
        .create_user(with_password("grace@example.com", PASSWORD))
        .await
        .unwrap();
    let (provider_only, _) = h
        .engine
        .find_or_create_by_account(
            &identity("google", "g-1", Some("prov@example.com"), true),
            false,
        )
        .await
        .unwrap();
    assert_eq!(provider_only.email.as_deref(), Some("prov@example.com"));

    let ok = h
        .engine
        .verify_password("Grace@Example.com", PASSWORD)
        .await
        .unwrap();
    assert_eq!(ok.id, user.id);
    for (email, password) in [
        ("grace@example.com", "correct horse battery stapler"),
        ("grace@example.com", ""),
        ("nobody@example.com", PASSWORD),
        ("not an email", PASSWORD),
        ("prov@example.com", PASSWORD),
    ] {
        let got = h.engine.verify_password(email, password).await;
        assert!(
            matches!(got, Err(EngineError::InvalidCredentials)),
            "{email} / {password:?}: {got:?}"
        );
    }
    // Checking changes nothing.
    assert_eq!(h.engine.stored_user(&user.id).await.unwrap(), Some(user));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_or_create_by_account_is_idempotent() {
    let h = Harness::start(common::options()).await;
    let google = identity("google", "g-42", Some("Lin@Example.com"), true);
    let (first, created) = h
        .engine
        .find_or_create_by_account(&google, true)
        .await
        .unwrap();
    assert!(created);
    assert_eq!(first.email.as_deref(), Some("lin@example.com"));
    assert!(first.email_verified);
    assert_eq!(first.accounts.len(), 1);
    for _ in 0..3 {
        let (again, created) = h
            .engine
            .find_or_create_by_account(&google, true)
            .await
            .unwrap();
        assert!(!created);
        assert_eq!(again, first);
    }
    assert_eq!(h.engine.user_count().await.unwrap(), 1);
    assert_eq!(
        h.engine.user_id_by_account("google", "g-42").await.unwrap(),
        Some(first.id.clone())
    );
    assert_eq!(h.engine.stored_user(&first.id).await.unwrap(), Some(first));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_sign_ins_of_one_account_make_one_user() {
    let h = Harness::start(common::options()).await;
    let twitch = identity("twitch", "tw-7", Some("racer@example.com"), true);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let engine = h.engine.clone();
            let twitch = twitch.clone();
            tokio::spawn(async move { engine.find_or_create_by_account(&twitch, true).await })
        })
        .collect();
    let mut ids = HashSet::new();
    let mut created = 0;
    for task in tasks {
        let (user, was_created) = task.await.unwrap().expect("every sign-in succeeds");
        ids.insert(user.id);
        created += usize::from(was_created);
    }
    assert_eq!(ids.len(), 1, "one user for one provider account");
    assert_eq!(created, 1, "exactly one sign-in created it");
    let id = ids.into_iter().next().unwrap();
    assert_eq!(h.engine.user_count().await.unwrap(), 1);
    assert_eq!(
        h.engine.user_id_by_account("twitch", "tw-7").await.unwrap(),
        Some(id.clone())
    );
    assert_eq!(
        h.engine
            .user_id_by_email("racer@example.com")
            .await
            .unwrap(),
        Some(id.clone())
    );
    assert_eq!(
        h.engine
            .stored_user(&id)
            .await
            .unwrap()
            .unwrap()
            .accounts
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_joins_a_user_by_email_only_when_verified_and_allowed() {
    let h = Harness::start(common::options()).await;
    let (existing, _) = h
        .engine
        .find_or_create_by_account(
            &identity("google", "g-1", Some("kim@example.com"), true),
            true,
        )
        .await
        .unwrap();

    // Verified email, linking not allowed (provider not trusted): refused, nothing stored.
    let twitch = identity("twitch", "tw-1", Some("kim@example.com"), true);
    let refused = h.engine.find_or_create_by_account(&twitch, false).await;
    assert!(
        matches!(refused, Err(EngineError::AccountNotLinked)),
        "{refused:?}"
    );
    assert_eq!(
        h.engine.user_id_by_account("twitch", "tw-1").await.unwrap(),
        None
    );
    assert_eq!(
        h.engine.stored_user(&existing.id).await.unwrap(),
        Some(existing.clone())
    );
    assert_eq!(h.engine.user_count().await.unwrap(), 1);

    // An unverified email is never used to find a user: the identity does not join
    // the existing user (it gets a user of its own, without that email).
    let unverified = identity("oidc", "o-1", Some("kim@example.com"), false);
    let (other, created) = h
        .engine
        .find_or_create_by_account(&unverified, true)
        .await
        .unwrap();
    assert!(created);
    assert_ne!(other.id, existing.id);
    assert_eq!(other.email, None);
    assert!(!other.email_verified);
    assert_eq!(
        h.engine.stored_user(&existing.id).await.unwrap(),
        Some(existing.clone())
    );
    assert_eq!(
        h.engine.user_id_by_email("kim@example.com").await.unwrap(),
        Some(existing.id.clone())
    );

    // A user whose own email is unverified (anyone can register any address)
    // is not joined by an untrusted provider...
    let unverified_owner = h
        .engine
        .create_user(with_password("pat@example.com", PASSWORD))
        .await
        .unwrap();
    let squatted = identity("twitch", "tw-2", Some("pat@example.com"), true);
    let refused = h.engine.find_or_create_by_account(&squatted, false).await;
    assert!(
        matches!(refused, Err(EngineError::AccountNotLinked)),
        "{refused:?}"
    );
    assert_eq!(
        h.engine.user_id_by_account("twitch", "tw-2").await.unwrap(),
        None
    );
    assert_eq!(
        h.engine.stored_user(&unverified_owner.id).await.unwrap(),
        Some(unverified_owner.clone())
    );
    // ...but a trusted provider's verified sign-in takes the address over: the
    // registered password goes, the address is verified, the account is linked.
    let (owner, created) = h
        .engine
        .find_or_create_by_account(&squatted, true)
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(owner.id, unverified_owner.id);
    assert!(owner.email_verified);
    assert!(!owner.has_password);
    assert!(matches!(
        h.engine.verify_password("pat@example.com", PASSWORD).await,
        Err(EngineError::InvalidCredentials)
    ));
    assert_eq!(
        h.engine.user_id_by_account("twitch", "tw-2").await.unwrap(),
        Some(owner.id.clone())
    );
    assert!(audit_kinds(&h.engine)
        .await
        .contains(&"email_taken_over".to_string()));

    // Verified on both sides and allowed: joins the existing user.
    let (joined, created) = h
        .engine
        .find_or_create_by_account(&twitch, true)
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(joined.id, existing.id);
    let providers: Vec<&str> = joined
        .accounts
        .iter()
        .map(|a| a.provider.as_str())
        .collect();
    assert_eq!(providers, vec!["google", "twitch"]);
    assert_eq!(
        h.engine.user_id_by_account("twitch", "tw-1").await.unwrap(),
        Some(existing.id.clone())
    );
    assert_eq!(
        h.engine.stored_user(&existing.id).await.unwrap(),
        Some(joined)
    );
    assert_eq!(h.engine.user_count().await.unwrap(), 3);
    assert!(audit_kinds(&h.engine)
        .await
        .contains(&"account_linked".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_way_to_sign_in_cannot_be_unlinked() {
    let h = Harness::start(common::options()).await;
    let (user, _) = h
        .engine
        .find_or_create_by_account(&identity("google", "g-1", None, false), false)
        .await
        .unwrap();
    let refused = h.engine.unlink_account(&user.id, "google", None).await;
    assert!(
        matches!(refused, Err(EngineError::LastSignInMethod)),
        "{refused:?}"
    );
    assert_eq!(
        h.engine.stored_user(&user.id).await.unwrap(),
        Some(user.clone())
    );
    assert_eq!(
        h.engine.user_id_by_account("google", "g-1").await.unwrap(),
        Some(user.id.clone())
    );

    let twitch = identity("twitch", "tw-1", None, false);
    let linked = h.engine.link_account(&user.id, &twitch).await.unwrap();
    assert_eq!(linked.accounts.len(), 2);
    // Linking again is a no-op; linking it to someone else is refused.
    assert_eq!(
        h.engine.link_account(&user.id, &twitch).await.unwrap(),
        linked
    );
    let someone_else = plain_user(&h.engine).await;
    let taken = h.engine.link_account(&someone_else.id, &twitch).await;
    assert!(matches!(taken, Err(EngineError::AccountTaken)), "{taken:?}");
    assert!(h
        .engine
        .stored_user(&someone_else.id)
        .await
        .unwrap()
        .unwrap()
        .accounts
        .is_empty());

    let missing = h.engine.unlink_account(&user.id, "github", None).await;
    assert!(
        matches!(missing, Err(EngineError::AccountNotFound)),
        "{missing:?}"
    );

    let unlinked = h
        .engine
        .unlink_account(&user.id, "google", Some("g-1"))
        .await
        .unwrap();
    assert_eq!(unlinked.accounts.len(), 1);
    assert_eq!(
        h.engine.user_id_by_account("google", "g-1").await.unwrap(),
        None
    );
    assert_eq!(
        h.engine.stored_user(&user.id).await.unwrap(),
        Some(unlinked.clone())
    );
    let refused = h.engine.unlink_account(&user.id, "twitch", None).await;
    assert!(
        matches!(refused, Err(EngineError::LastSignInMethod)),
        "{refused:?}"
    );
    assert_eq!(
        h.engine.stored_user(&user.id).await.unwrap(),
        Some(unlinked)
    );

    // A password counts as a way to sign in.
    let with_pw = h
        .engine
        .create_user(with_password("pw@example.com", PASSWORD))
        .await
        .unwrap();
    h.engine
        .link_account(&with_pw.id, &identity("google", "g-2", None, false))
        .await
        .unwrap();
    let left = h
        .engine
        .unlink_account(&with_pw.id, "google", None)
        .await
        .unwrap();
    assert!(left.accounts.is_empty());
    assert_eq!(
        h.engine.user_id_by_account("google", "g-2").await.unwrap(),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_are_validated_sorted_and_stored() {
    let h = Harness::start(common::options()).await;
    let user = plain_user(&h.engine).await;
    let updated = h
        .engine
        .set_roles(&user.id, vec!["ops".into(), "admin".into(), "ops".into()])
        .await
        .unwrap();
    assert_eq!(updated.roles, vec!["admin".to_string(), "ops".to_string()]);
    assert_eq!(
        h.engine.stored_user(&user.id).await.unwrap(),
        Some(updated.clone())
    );
    assert!(h
        .engine
        .set_roles(&user.id, vec!["Not A Role".into()])
        .await
        .is_err());
    assert_eq!(h.engine.stored_user(&user.id).await.unwrap(), Some(updated));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_ends_exactly_the_sessions_in_scope() {
    let h = Harness::start(common::options()).await;
    let user = plain_user(&h.engine).await;
    let (dash_id, refresh) = dashboard_login(&h.engine, &user.id).await;
    let web = h
        .engine
        .create_session(&user.id, new_session(Surface::Web))
        .await
        .unwrap();
    let cookie = web.token.clone().unwrap();
    let ext = h
        .engine
        .create_session(&user.id, new_session(Surface::Extension))
        .await
        .unwrap();
    assert!(ext.token.is_none());
    assert_eq!(stored_session_ids(&h.engine, &user.id).await.len(), 3);

    let unknown = h
        .engine
        .revoke_sessions(&user.id, RevokeScope::One("no-such-session".into()))
        .await;
    assert!(
        matches!(unknown, Err(EngineError::SessionNotFound)),
        "{unknown:?}"
    );
    assert_eq!(stored_session_ids(&h.engine, &user.id).await.len(), 3);

    let ended = h
        .engine
        .revoke_sessions(&user.id, RevokeScope::One(web.session.id.clone()))
        .await
        .unwrap();
    assert_eq!(ended, vec![web.session.id.clone()]);
    assert!(!stored_session_ids(&h.engine, &user.id)
        .await
        .contains(&web.session.id));
    // Gone for good: it cannot be revoked again (the session→owner index is
    // storage's own and not visible through the engine).
    let again = h
        .engine
        .revoke_sessions(&user.id, RevokeScope::One(web.session.id.clone()))
        .await;
    assert!(
        matches!(again, Err(EngineError::SessionNotFound)),
        "{again:?}"
    );
    assert!(matches!(
        h.engine.session_by_token(&cookie).await,
        Err(EngineError::SessionInvalid)
    ));
    assert!(matches!(
        h.engine.live_session(&user.id, &web.session.id).await,
        Err(EngineError::SessionInvalid)
    ));

    let ended = h
        .engine
        .revoke_sessions(&user.id, RevokeScope::AllExcept(dash_id.clone()))
        .await
        .unwrap();
    assert_eq!(ended, vec![ext.session.id.clone()]);
    assert_eq!(
        stored_session_ids(&h.engine, &user.id).await,
        HashSet::from([dash_id.clone()])
    );
    assert!(h.engine.live_session(&user.id, &dash_id).await.is_ok());
    assert!(matches!(
        h.engine.live_session(&user.id, &ext.session.id).await,
        Err(EngineError::SessionInvalid)
    ));
    let none = h
        .engine
        .revoke_sessions(&user.id, RevokeScope::AllExcept(dash_id.clone()))
        .await
        .unwrap();
    assert!(none.is_empty());

    let ended = h
        .engine
        .revoke_sessions(&user.id, RevokeScope::All)
        .await
        .unwrap();
    assert_eq!(ended, vec![dash_id.clone()]);
    assert!(stored_session_ids(&h.engine, &user.id).await.is_empty());
    assert!(h.engine.list_sessions(&user.id).await.unwrap().is_empty());
    let family = h
        .engine
        .stored_refresh_family(&dash_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(family.revoked, Some(Revocation::Revoked));
    assert!(matches!(
        h.engine.rotate_refresh_token(&refresh).await,
        Err(EngineError::InvalidRefreshToken)
    ));
    assert!(audit_kinds(&h.engine)
        .await
        .contains(&"all_sessions_revoked".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_revokes_the_family_and_is_idempotent() {
    let h = Harness::start(common::options()).await;
    let user = plain_user(&h.engine).await;
    let (sid, t0) = dashboard_login(&h.engine, &user.id).await;
    let t1 = rotated(&h.engine, &t0).await;
    let (other_sid, other) = dashboard_login(&h.engine, &user.id).await;

    assert!(!h
        .engine
        .logout_refresh_token(&forged_token(&sid))
        .await
        .unwrap());
    assert!(!h.engine.logout_refresh_token("garbage").await.unwrap());
    assert!(h
        .engine
        .stored_refresh_family(&sid)
        .await
        .unwrap()
        .unwrap()
        .revoked
        .is_none());

    assert!(h.engine.logout_refresh_token(&t1).await.unwrap());
    assert!(!h.engine.logout_refresh_token(&t1).await.unwrap());
    let family = h.engine.stored_refresh_family(&sid).await.unwrap().unwrap();
    assert_eq!(family.revoked, Some(Revocation::Revoked));
    for token in [&t1, &t0] {
        assert!(matches!(
            h.engine.rotate_refresh_token(token).await,
            Err(EngineError::InvalidRefreshToken)
        ));
    }
    // The other login is untouched.
    let stored: Vec<String> = h
        .engine
        .stored_sessions(&user.id)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(stored, vec![other_sid]);
    assert!(!h.engine.rotate_refresh_token(&other).await.unwrap().grace);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_families_expire_when_idle_and_at_their_absolute_limit() {
    let mut options = common::options();
    options.refresh_idle_ttl_ms = 10_000;
    options.session_absolute_ttl_ms = 25_000;
    let h = Harness::start(options).await;
    let user = plain_user(&h.engine).await;

    // Idle: not used for the idle TTL.
    let (idle_sid, idle_token) = dashboard_login(&h.engine, &user.id).await;
    // Absolute: used often enough, but past the session's absolute lifetime.
    let (busy_sid, mut busy_token) = dashboard_login(&h.engine, &user.id).await;
    for _ in 0..2 {
        h.clock.advance_ms(9_000);
        busy_token = rotated(&h.engine, &busy_token).await;
    }
    // Now at +18 s: the idle family expired at +10 s.
    assert!(matches!(
        h.engine.rotate_refresh_token(&idle_token).await,
        Err(EngineError::InvalidRefreshToken)
    ));
    let idle_family = h
        .engine
        .stored_refresh_family(&idle_sid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(idle_family.revoked, None, "expiry is not revocation");
    assert_eq!(idle_family.generation, 0);

    let busy = h
        .engine
        .stored_refresh_family(&busy_sid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        busy.idle_expires_at,
        T0 + 25_000,
        "idle expiry is capped by the absolute one"
    );
    h.clock.advance_ms(25_000 - 18_000 - 1);
    busy_token = rotated(&h.engine, &busy_token).await;
    h.clock.advance_ms(1);
    assert!(matches!(
        h.engine.rotate_refresh_token(&busy_token).await,
        Err(EngineError::InvalidRefreshToken)
    ));
    assert_eq!(
        h.engine
            .stored_refresh_family(&busy_sid)
            .await
            .unwrap()
            .unwrap()
            .generation,
        3
    );
    assert!(h.engine.list_sessions(&user.id).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_sessions_slide_their_expiry_once_older_than_update_age() {
    let h = Harness::start(common::options()).await;
    let ttl = h.engine.options().web_session_ttl_ms;
    let update_age = h.engine.options().web_update_age_ms;
    let user = plain_user(&h.engine).await;
    let web = h
        .engine
        .create_session(&user.id, new_session(Surface::Web))
        .await
        .unwrap();
    let cookie = web.token.unwrap();
    let original = stored_sessions(&h.engine, &user.id).await;
    assert_eq!(original.len(), 1);
    assert_eq!(original[0].expires_at, T0 + ttl);

    let read = h.engine.session_by_token(&cookie).await.unwrap();
    assert!(!read.renewed);
    assert_eq!(read.user.id, user.id);
    h.clock.advance_ms(update_age - 1);
    let read = h.engine.session_by_token(&cookie).await.unwrap();
    assert!(!read.renewed, "younger than update_age: no renewal");
    assert_eq!(
        stored_sessions(&h.engine, &user.id).await,
        original,
        "storage is unchanged before update_age"
    );

    h.clock.advance_ms(1);
    let now = T0 + update_age;
    let read = h.engine.session_by_token(&cookie).await.unwrap();
    assert!(read.renewed);
    assert_eq!(read.session.expires_at, now + ttl);
    let renewed = stored_sessions(&h.engine, &user.id).await;
    assert_eq!(renewed[0].expires_at, now + ttl);
    assert_eq!(renewed[0].updated_at, now);
    assert_eq!(renewed[0].created_at, T0);

    // Just renewed: the next read does not renew again.
    let read = h.engine.session_by_token(&cookie).await.unwrap();
    assert!(!read.renewed);
    assert_eq!(stored_sessions(&h.engine, &user.id).await, renewed);

    // A wrong secret for the right session is refused and changes nothing.
    assert!(matches!(
        h.engine
            .session_by_token(&forged_token(&web.session.id))
            .await,
        Err(EngineError::SessionInvalid)
    ));
    // Unread for longer than the TTL: expired.
    h.clock.advance_ms(ttl);
    assert!(matches!(
        h.engine.session_by_token(&cookie).await,
        Err(EngineError::SessionInvalid)
    ));
    assert_eq!(stored_sessions(&h.engine, &user.id).await, renewed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_survives_an_engine_restart() {
    let dir = tempfile::tempdir().unwrap();
    // Access tokens are minted on the engine's clock but their `exp` is checked
    // against the system clock, so this clock starts at the real time.
    let clock = Arc::new(ManualClock::new(SystemClock.now_ms()));
    let engine = open_engine(dir.path(), common::options(), clock.clone()).await;
    let user = engine
        .create_user(with_password("restart@example.com", PASSWORD))
        .await
        .unwrap();
    let user = engine
        .set_roles(&user.id, vec!["admin".into()])
        .await
        .unwrap();
    let (sid, t0) = dashboard_login(&engine, &user.id).await;
    let t1 = engine
        .rotate_refresh_token(&t0)
        .await
        .unwrap()
        .refresh_token;
    let t2 = engine
        .rotate_refresh_token(&t1)
        .await
        .unwrap()
        .refresh_token;
    let web = engine
        .create_session(&user.id, new_session(Surface::Web))
        .await
        .unwrap();
    let cookie = web.token.unwrap();
    let (access, _) = engine.mint_access_token(
        &user.id,
        Some(&sid),
        "dashboard",
        &user.roles,
        Default::default(),
    );
    let family_before = engine.stored_refresh_family(&sid).await.unwrap().unwrap();
    assert_eq!(family_before.generation, 2);
    let user_before = engine.stored_user(&user.id).await.unwrap().unwrap();
    let sessions_before = engine.stored_sessions(&user.id).await.unwrap();
    assert_eq!(sessions_before.len(), 2);

    clock.advance_ms(60_000);
    let engine = restart(engine, dir.path(), common::options(), clock.clone()).await;
    assert_eq!(
        engine.stored_user(&user.id).await.unwrap(),
        Some(user_before)
    );
    assert_eq!(
        engine.stored_sessions(&user.id).await.unwrap(),
        sessions_before
    );
    assert_eq!(engine.user(&user.id).await.unwrap(), user);
    assert_eq!(
        engine
            .verify_password("restart@example.com", PASSWORD)
            .await
            .unwrap()
            .id,
        user.id
    );
    assert_eq!(
        engine.stored_refresh_family(&sid).await.unwrap().unwrap(),
        family_before
    );
    let listed: HashSet<String> = engine
        .list_sessions(&user.id)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(listed, HashSet::from([sid.clone(), web.session.id.clone()]));
    assert_eq!(
        engine.session_by_token(&cookie).await.unwrap().session.id,
        web.session.id
    );
    // The signing key survived: a token signed before the restart still verifies.
    let claims = engine.verify_access_token(&access, "dashboard").unwrap();
    assert_eq!(claims.sid.as_deref(), Some(sid.as_str()));

    // The refresh family continues where it stopped.
    let t3 = engine.rotate_refresh_token(&t2).await.unwrap();
    assert!(!t3.grace);
    let family = engine.stored_refresh_family(&sid).await.unwrap().unwrap();
    assert_eq!(family.generation, 3);
    assert_eq!(family.revoked, None);
    // t3 is the new current token: t2, now its predecessor, is answered with it.
    let replay = engine.rotate_refresh_token(&t2).await.unwrap();
    assert!(replay.grace);
    assert_eq!(replay.refresh_token, t3.refresh_token);
    // A token retired before the restart is still recognised as reuse.
    assert!(matches!(
        engine.rotate_refresh_token(&t0).await,
        Err(EngineError::RefreshTokenReused)
    ));
    assert_eq!(
        engine
            .stored_refresh_family(&sid)
            .await
            .unwrap()
            .unwrap()
            .revoked,
        Some(Revocation::Reuse)
    );
    // Every token of the family, from before and after the restart, is known
    // to it: each is now reuse, where a token it never issued is merely invalid.
    for token in [&t0, &t1, &t2, &t3.refresh_token] {
        assert!(matches!(
            engine.rotate_refresh_token(token).await,
            Err(EngineError::RefreshTokenReused)
        ));
    }
    assert!(matches!(
        engine.rotate_refresh_token(&forged_token(&sid)).await,
        Err(EngineError::InvalidRefreshToken)
    ));
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_user_is_user_not_found_and_leaves_no_actor() {
    let h = Harness::start(common::options()).await;
    for _ in 0..3 {
        let got = h.engine.user("no-such-user").await;
        assert!(matches!(got, Err(EngineError::UserNotFound)), "{got:?}");
        let got = h.engine.list_sessions("no-such-user").await;
        assert!(matches!(got, Err(EngineError::UserNotFound)), "{got:?}");
    }
    assert_eq!(h.engine.live_actors(), 0);
    assert_eq!(h.engine.user_count().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panel_session_is_reused_per_channel_and_renewed_past_half_its_life() {
    let h = Harness::start(common::options()).await;
    let user = plain_user(&h.engine).await;
    let ttl = h.engine.options().access_ttl_ms;
    let in_channel = |channel: &str| tachigo_engine::NewSession {
        context: Some(format!("channel {channel}")),
        ..new_session(Surface::Extension)
    };

    let first = h
        .engine
        .create_session(&user.id, in_channel("1"))
        .await
        .unwrap();
    h.clock.advance_ms(ttl / 4);
    let again = h
        .engine
        .create_session(&user.id, in_channel("1"))
        .await
        .unwrap();
    assert_eq!(again.session.id, first.session.id, "reused");
    assert_eq!(
        again.session.expires_at, first.session.expires_at,
        "more than half left: not written"
    );

    h.clock.advance_ms(ttl / 2);
    let renewed = h
        .engine
        .create_session(&user.id, in_channel("1"))
        .await
        .unwrap();
    assert_eq!(renewed.session.id, first.session.id);
    assert_eq!(renewed.session.expires_at, h.clock.now_ms() + ttl);
    let stored = h.engine.stored_sessions(&user.id).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].expires_at, renewed.session.expires_at,
        "the renewal is durable"
    );

    let other = h
        .engine
        .create_session(&user.id, in_channel("2"))
        .await
        .unwrap();
    assert_ne!(
        other.session.id, first.session.id,
        "another channel is another session"
    );

    h.clock.advance_ms(ttl + 1);
    let later = h
        .engine
        .create_session(&user.id, in_channel("1"))
        .await
        .unwrap();
    assert_ne!(
        later.session.id, first.session.id,
        "an expired session is not revived"
    );

    // A token minted for a session never outlives it.
    let (_, claims) = h.engine.mint_session_access_token(
        &user.id,
        &later.session,
        tachigo_engine::access_token::AUDIENCE_EXTENSION,
        &[],
        Default::default(),
    );
    assert!(claims.exp * 1000 <= later.session.expires_at);
}
