//! The storage conformance suite: one body per behaviour of the [`Store`]
//! trait, run against every backend (sled in a temporary directory, PostgreSQL
//! in a fresh database of the test server from `tachigo-testkit`), so both
//! behave alike. Every body asserts what the store holds after each call.
//! PostgreSQL-only behaviour (schema versions, secrets in errors, fencing) comes last.

use std::sync::Arc;
use std::time::Duration;

use tachigo_storage::postgres::KNOWN_VERSION;
use tachigo_storage::*;

// ----- backends -----

/// Where one test's data lives; [`Backend::open`] opens it (again).
enum Backend {
    Sled(tempfile::TempDir),
    Postgres(String),
}

impl Backend {
    fn sled() -> Backend {
        Backend::Sled(tempfile::tempdir().expect("a temporary directory"))
    }

    async fn postgres() -> Backend {
        Backend::Postgres(tachigo_testkit::postgres().fresh_database().await)
    }

    /// An empty store of the same kind.
    async fn fresh(&self) -> Backend {
        match self {
            Backend::Sled(_) => Backend::sled(),
            Backend::Postgres(_) => Backend::postgres().await,
        }
    }

    /// An empty store of the other kind, for copies between backends.
    async fn other(&self) -> Backend {
        match self {
            Backend::Sled(_) => Backend::postgres().await,
            Backend::Postgres(_) => Backend::sled(),
        }
    }

    fn config(&self) -> StoreConfig {
        match self {
            Backend::Sled(dir) => StoreConfig::Sled {
                path: dir.path().join("db"),
                durable: true,
            },
            Backend::Postgres(url) => StoreConfig::Postgres(pg_config(url)),
        }
    }

    async fn open(&self) -> Arc<dyn Store> {
        open(&self.config()).await.expect("opening the store")
    }

    /// Drops `store`, waits until it has let go of everything, opens it again.
    async fn reopen(&self, store: Arc<dyn Store>) -> Arc<dyn Store> {
        let watch = store.release_watch();
        drop(store);
        assert!(
            watch.wait(Duration::from_secs(10)).await,
            "the store was released"
        );
        self.open().await
    }
}

fn pg_config(url: &str) -> PostgresConfig {
    PostgresConfig {
        url: url.to_string(),
        pool_size: 8,
        statement_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(10),
    }
}

/// Runs each named body once per backend: `sled::<name>` and `postgres::<name>`.
macro_rules! conformance {
    ($($body:ident),* $(,)?) => {
        mod sled {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $body() {
                    super::$body(super::Backend::sled()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $body() {
                    super::$body(super::Backend::postgres().await).await;
                }
            )*
        }
    };
}

conformance!(
    users_are_unique_by_email_and_account,
    put_user_replaces_the_record_but_not_the_indexes,
    deleting_a_user_releases_its_email_and_accounts,
    accounts_link_and_unlink_only_for_their_holder,
    email_prefix_search_is_ordered_limited_and_literal,
    sessions_families_and_owners,
    rotation_commits_only_from_the_stored_unrevoked_generation,
    a_long_lived_family_remembers_every_token_it_retired,
    concurrent_rotations_of_one_family_commit_exactly_once,
    removing_sessions_keeps_family_tombstones_and_their_owner,
    sweeping_sessions_removes_what_expired_and_keeps_what_lives,
    oauth_states_are_bounded_counted_and_taken_once,
    oauth2_grants_round_trip_by_key_and_user_code,
    oauth2_grants_past_the_bound_write_nothing,
    a_taken_user_code_writes_nothing,
    replacing_a_grant_is_a_compare_and_swap,
    concurrent_replaces_of_one_grant_commit_exactly_once,
    sweeping_grants_removes_expired_ones_and_their_user_codes,
    unreadable_grants_are_swept_with_their_user_codes,
    signing_keys_and_the_audit_log,
    mailed_tokens_are_taken_once_and_swept,
    the_outbox_is_bounded_ordered_and_rescheduled,
    a_copy_to_the_other_backend_holds_the_same_data,
    import_refuses_a_store_with_data_and_changes_nothing,
    everything_acknowledged_survives_a_reopen,
    health_flush_and_release,
    provider_tokens_live_and_go_with_their_account,
    claims_name_existing_users_only,
);

// ----- records -----

const T0: UnixMillis = 1_700_000_000_000;

fn user(id: &str, email: Option<&str>, accounts: &[(&str, &str)]) -> UserRecord {
    UserRecord {
        id: id.into(),
        email: email.map(str::to_string),
        email_verified: true,
        name: Some(format!("Name of {id}")),
        roles: vec!["user".into()],
        accounts: accounts
            .iter()
            .map(|(provider, subject)| account(provider, subject))
            .collect(),
        created_at: T0,
        updated_at: T0,
        ..UserRecord::default()
    }
}

fn account(provider: &str, subject: &str) -> LinkedAccount {
    LinkedAccount {
        provider: provider.into(),
        subject: subject.into(),
        email: None,
        linked_at: T0,
    }
}

fn session(id: &str, user_id: &str, expires_at: UnixMillis) -> SessionRecord {
    SessionRecord {
        id: id.into(),
        user_id: user_id.into(),
        surface: Surface::Dashboard,
        token_hash: Some([7; 32]),
        created_at: T0,
        updated_at: T0,
        expires_at,
        absolute_expires_at: expires_at + 1_000,
        user_agent: Some("test".into()),
        ip: Some("127.0.0.1".into()),
        context: None,
    }
}

fn family(session_id: &str, user_id: &str, idle: UnixMillis, absolute: UnixMillis) -> FamilyRecord {
    FamilyRecord {
        session_id: session_id.into(),
        user_id: user_id.into(),
        current: [0; 32],
        generation: 0,
        previous: None,
        revoked: None,
        last_rotated_at: T0,
        idle_expires_at: idle,
        absolute_expires_at: absolute,
    }
}

/// The rotation of `f` to a new current token `current`.
fn rotated(f: &FamilyRecord, current: TokenHash) -> FamilyRecord {
    FamilyRecord {
        current,
        generation: f.generation + 1,
        previous: Some(RetiredToken {
            hash: f.current,
            retired_at: T0,
        }),
        last_rotated_at: f.last_rotated_at + 1,
        ..f.clone()
    }
}

fn hash(n: u64) -> TokenHash {
    let mut h = [0xAB; 32];
    h[..8].copy_from_slice(&n.to_be_bytes());
    h
}

fn state(expires_at: UnixMillis, link_session: Option<&str>) -> OAuthStateRecord {
    OAuthStateRecord {
        provider: "twitch".into(),
        pkce_verifier: "v".repeat(43),
        nonce: Some("n".into()),
        binding_hash: [1; 32],
        callback_url: "https://app.example/done".into(),
        error_callback_url: "https://app.example/error".into(),
        new_user_callback_url: None,
        link_user_id: link_session.map(|_| "user-1".to_string()),
        link_session_id: link_session.map(str::to_string),
        created_at: 0,
        expires_at,
    }
}

fn signing_key(kid: &str) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.into(),
        private_pkcs8: vec![1, 2, 3, kid.len() as u8],
        public_key: vec![9; 32],
        created_at: T0,
        retired_at: None,
    }
}

fn event(n: i64) -> AuditEvent {
    AuditEvent {
        at: T0 + n,
        kind: format!("event_{n}"),
        user_id: Some("u1".into()),
        session_id: None,
        ip: None,
        detail: format!("detail {n}"),
    }
}

/// One of everything a snapshot holds.
async fn populate(store: &dyn Store) {
    store
        .create_user(&user("u1", Some("one@example.com"), &[("twitch", "t1")]))
        .await
        .unwrap();
    store
        .create_user(&user("u2", None, &[("google", "g2"), ("twitch", "t2")]))
        .await
        .unwrap();
    store
        .put_session(&session("s1", "u1", T0 + 10_000), None)
        .await
        .unwrap();
    let f = family("s2", "u1", T0 + 10_000, T0 + 20_000);
    store
        .put_session(&session("s2", "u1", T0 + 10_000), Some(&f))
        .await
        .unwrap();
    assert_eq!(
        store
            .rotate_family(&f, &rotated(&f, hash(1)), &hash(100))
            .await
            .unwrap(),
        RotationOutcome::Committed
    );
    store.put_signing_key(&signing_key("k1")).await.unwrap();
    for n in 0..3 {
        store.audit(&event(n)).await.unwrap();
    }
    store
        .put_email_token(&hash(7), &email_token("u1", T0 + 10_000))
        .await
        .unwrap();
    assert!(store.enqueue_mail(&mail(1, T0), 10).await.unwrap());
    assert!(store
        .put_provider_tokens(&provider_tokens("u2", "google", "g2", 1))
        .await
        .unwrap());
}

// ----- users -----

async fn deleting_a_user_releases_its_email_and_accounts(backend: Backend) {
    let store = backend.open().await;
    let a = user(
        "a",
        Some("a@example.com"),
        &[("twitch", "1"), ("google", "g")],
    );
    let b = user("b", Some("b@example.com"), &[("twitch", "2")]);
    store.create_user(&a).await.unwrap();
    store.create_user(&b).await.unwrap();
    assert!(store.delete_user("a").await.unwrap());
    assert!(!store.delete_user("a").await.unwrap());
    assert!(!store.delete_user("nobody").await.unwrap());
    assert_eq!(store.user("a").await.unwrap(), None);
    assert_eq!(store.user_id_by_email("a@example.com").await.unwrap(), None);
    assert_eq!(store.user_id_by_account("twitch", "1").await.unwrap(), None);
    assert_eq!(store.user_id_by_account("google", "g").await.unwrap(), None);
    assert_eq!(store.user_count().await.unwrap(), 1);
    // The other user is untouched, and the released email and accounts can be claimed again.
    assert_eq!(store.user("b").await.unwrap(), Some(b));
    let again = user("a2", Some("a@example.com"), &[("twitch", "1")]);
    store.create_user(&again).await.unwrap();
    let store = backend.reopen(store).await;
    assert_eq!(store.user("a").await.unwrap(), None);
    assert_eq!(
        store
            .user_id_by_email("a@example.com")
            .await
            .unwrap()
            .as_deref(),
        Some("a2")
    );
}

async fn users_are_unique_by_email_and_account(backend: Backend) {
    let store = backend.open().await;
    let a = user("a", Some("a@example.com"), &[("twitch", "1")]);
    store.create_user(&a).await.unwrap();
    assert_eq!(store.user("a").await.unwrap(), Some(a.clone()));
    assert_eq!(
        store
            .user_id_by_email("a@example.com")
            .await
            .unwrap()
            .as_deref(),
        Some("a")
    );
    assert_eq!(
        store
            .user_id_by_account("twitch", "1")
            .await
            .unwrap()
            .as_deref(),
        Some("a")
    );

    // The email is taken: nothing of b is written, not even its free account.
    let b = user("b", Some("a@example.com"), &[("twitch", "2")]);
    assert!(matches!(
        store.create_user(&b).await,
        Err(StorageError::EmailTaken)
    ));
    assert_eq!(store.user("b").await.unwrap(), None);
    assert_eq!(store.user_id_by_account("twitch", "2").await.unwrap(), None);

    // The account is taken: nothing of c is written, not even its free email.
    let c = user(
        "c",
        Some("c@example.com"),
        &[("google", "9"), ("twitch", "1")],
    );
    assert!(matches!(
        store.create_user(&c).await,
        Err(StorageError::AccountTaken)
    ));
    assert_eq!(store.user("c").await.unwrap(), None);
    assert_eq!(store.user_id_by_email("c@example.com").await.unwrap(), None);
    assert_eq!(store.user_id_by_account("google", "9").await.unwrap(), None);
    assert_eq!(
        store
            .user_id_by_account("twitch", "1")
            .await
            .unwrap()
            .as_deref(),
        Some("a")
    );

    // Without email or accounts, and with the freed values, creation works.
    store.create_user(&user("d", None, &[])).await.unwrap();
    let b = user("b", Some("b@example.com"), &[("twitch", "2")]);
    store.create_user(&b).await.unwrap();
    assert_eq!(store.user("b").await.unwrap(), Some(b));
    assert_eq!(
        store
            .user_id_by_account("twitch", "2")
            .await
            .unwrap()
            .as_deref(),
        Some("b")
    );
    assert_eq!(store.user_count().await.unwrap(), 3);
    assert_eq!(store.user("nobody").await.unwrap(), None);
    assert_eq!(
        store.user_id_by_email("nobody@example.com").await.unwrap(),
        None
    );
}

async fn put_user_replaces_the_record_but_not_the_indexes(backend: Backend) {
    let store = backend.open().await;
    store
        .create_user(&user("a", Some("a@example.com"), &[]))
        .await
        .unwrap();
    let mut changed = user("a", Some("new@example.com"), &[]);
    changed.name = Some("Renamed".into());
    changed.roles = vec!["admin".into()];
    changed.password_hash = Some("$argon2id$stub".into());
    store.put_user(&changed).await.unwrap();
    assert_eq!(store.user("a").await.unwrap(), Some(changed));
    assert_eq!(
        store
            .user_id_by_email("a@example.com")
            .await
            .unwrap()
            .as_deref(),
        Some("a")
    );
    assert_eq!(
        store.user_id_by_email("new@example.com").await.unwrap(),
        None
    );
    assert_eq!(store.user_count().await.unwrap(), 1);
}

async fn accounts_link_and_unlink_only_for_their_holder(backend: Backend) {
    let store = backend.open().await;
    let a = user("a", Some("a@example.com"), &[]);
    let b = user("b", Some("b@example.com"), &[]);
    store.create_user(&a).await.unwrap();
    store.create_user(&b).await.unwrap();

    let mut a_linked = a.clone();
    a_linked.accounts.push(account("google", "g1"));
    store
        .link_account(&a_linked, &account("google", "g1"))
        .await
        .unwrap();
    assert_eq!(
        store
            .user_id_by_account("google", "g1")
            .await
            .unwrap()
            .as_deref(),
        Some("a")
    );
    assert_eq!(store.user("a").await.unwrap(), Some(a_linked.clone()));
    // Linking again by the holder is fine.
    store
        .link_account(&a_linked, &account("google", "g1"))
        .await
        .unwrap();

    // Another user cannot take it, and its record is not written.
    let mut b_linked = b.clone();
    b_linked.accounts.push(account("google", "g1"));
    assert!(matches!(
        store
            .link_account(&b_linked, &account("google", "g1"))
            .await,
        Err(StorageError::AccountTaken)
    ));
    assert_eq!(store.user("b").await.unwrap(), Some(b.clone()));
    assert_eq!(
        store
            .user_id_by_account("google", "g1")
            .await
            .unwrap()
            .as_deref(),
        Some("a")
    );

    // Unlinking by a user who does not hold it releases nothing.
    let mut b_renamed = b.clone();
    b_renamed.name = Some("B".into());
    store
        .unlink_account(&b_renamed, "google", "g1")
        .await
        .unwrap();
    assert_eq!(store.user("b").await.unwrap(), Some(b_renamed));
    assert_eq!(
        store
            .user_id_by_account("google", "g1")
            .await
            .unwrap()
            .as_deref(),
        Some("a")
    );

    // The holder releases it; then another user can claim it.
    store.unlink_account(&a, "google", "g1").await.unwrap();
    assert_eq!(store.user("a").await.unwrap(), Some(a));
    assert_eq!(
        store.user_id_by_account("google", "g1").await.unwrap(),
        None
    );
    store
        .link_account(&b_linked, &account("google", "g1"))
        .await
        .unwrap();
    assert_eq!(
        store
            .user_id_by_account("google", "g1")
            .await
            .unwrap()
            .as_deref(),
        Some("b")
    );
    assert_eq!(store.user("b").await.unwrap(), Some(b_linked));
}

async fn email_prefix_search_is_ordered_limited_and_literal(backend: Backend) {
    let store = backend.open().await;
    // Byte order: '%' < '\' < '_' < 'b' < 'x'.
    let emails = [
        "axb@x.io",
        "ab@x.io",
        "a_b@x.io",
        "a%c@x.io",
        "a\\z@x.io",
        "zed@x.io",
    ];
    for (n, email) in emails.iter().enumerate() {
        store
            .create_user(&user(&format!("u{n}"), Some(email), &[]))
            .await
            .unwrap();
    }
    store
        .create_user(&user("no-email", None, &[]))
        .await
        .unwrap();
    let found = |prefix: &'static str, limit: usize| {
        let store = store.clone();
        async move {
            store
                .find_users_by_email(prefix, limit)
                .await
                .unwrap()
                .into_iter()
                .map(|u| u.email.unwrap())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        found("a", 10).await,
        ["a%c@x.io", "a\\z@x.io", "a_b@x.io", "ab@x.io", "axb@x.io"]
    );
    assert_eq!(found("a", 3).await, ["a%c@x.io", "a\\z@x.io", "a_b@x.io"]);
    // Wildcard characters match only themselves.
    assert_eq!(found("a_", 10).await, ["a_b@x.io"]);
    assert_eq!(found("a%", 10).await, ["a%c@x.io"]);
    assert_eq!(found("a\\", 10).await, ["a\\z@x.io"]);
    assert_eq!(found("", 100).await.len(), 6);
    assert!(found("b", 10).await.is_empty());
    assert!(found("a", 0).await.is_empty());
    let full = store.find_users_by_email("zed@x.io", 5).await.unwrap();
    assert_eq!(full, vec![user("u5", Some("zed@x.io"), &[])]);
    assert_eq!(store.user_count().await.unwrap(), 7);
}

// ----- sessions and families -----

async fn sessions_families_and_owners(backend: Backend) {
    let store = backend.open().await;
    let s1 = session("s1", "u", T0 + 1_000);
    let s2 = session("s2", "u", T0 + 1_000);
    let f2 = family("s2", "u", T0 + 1_000, T0 + 5_000);
    let s3 = session("s3", "v", T0 + 1_000);
    store.put_session(&s2, Some(&f2)).await.unwrap();
    store.put_session(&s1, None).await.unwrap();
    store.put_session(&s3, None).await.unwrap();

    assert_eq!(
        store.sessions_of("u").await.unwrap(),
        vec![s1.clone(), s2.clone()]
    );
    assert_eq!(store.sessions_of("v").await.unwrap(), vec![s3]);
    assert!(store.sessions_of("nobody").await.unwrap().is_empty());
    for (id, owner) in [
        ("s1", Some("u")),
        ("s2", Some("u")),
        ("s3", Some("v")),
        ("s4", None),
    ] {
        assert_eq!(
            store.session_owner(id).await.unwrap().as_deref(),
            owner,
            "owner of {id}"
        );
    }
    assert_eq!(store.family("s2").await.unwrap(), Some(f2.clone()));
    assert_eq!(store.family("s1").await.unwrap(), None);

    // A changed session replaces the stored one.
    let mut s1_extended = s1.clone();
    s1_extended.expires_at += 500;
    s1_extended.updated_at += 500;
    store.put_session(&s1_extended, None).await.unwrap();
    assert_eq!(store.sessions_of("u").await.unwrap(), vec![s1_extended, s2]);

    // A family stored after a revocation.
    let mut f2_revoked = f2.clone();
    f2_revoked.revoked = Some(FamilyRevocation::Revoked);
    store.put_family(&f2_revoked).await.unwrap();
    assert_eq!(store.family("s2").await.unwrap(), Some(f2_revoked));
}

async fn rotation_commits_only_from_the_stored_unrevoked_generation(backend: Backend) {
    let store = backend.open().await;
    let f0 = family("s", "u", T0 + 1_000, T0 + 5_000);
    store
        .put_session(&session("s", "u", T0 + 1_000), Some(&f0))
        .await
        .unwrap();

    let f1 = rotated(&f0, hash(1));
    assert_eq!(
        store.rotate_family(&f0, &f1, &f0.current).await.unwrap(),
        RotationOutcome::Committed
    );
    assert_eq!(store.family("s").await.unwrap(), Some(f1.clone()));
    assert!(store.was_retired_by("s", &f0.current).await.unwrap());

    // From a stale previous: nothing changes.
    let stale = rotated(&f0, hash(2));
    assert_eq!(
        store.rotate_family(&f0, &stale, &hash(77)).await.unwrap(),
        RotationOutcome::Conflict
    );
    assert_eq!(store.family("s").await.unwrap(), Some(f1.clone()));

    let f2 = rotated(&f1, hash(3));
    assert_eq!(
        store.rotate_family(&f1, &f2, &f1.current).await.unwrap(),
        RotationOutcome::Committed
    );
    assert_eq!(store.family("s").await.unwrap(), Some(f2.clone()));
    assert!(store.was_retired_by("s", &f1.current).await.unwrap());

    // A revoked family never rotates again.
    let mut f2_revoked = f2.clone();
    f2_revoked.revoked = Some(FamilyRevocation::Reuse);
    store.put_family(&f2_revoked).await.unwrap();
    assert_eq!(
        store
            .rotate_family(&f2, &rotated(&f2, hash(4)), &f2.current)
            .await
            .unwrap(),
        RotationOutcome::Conflict
    );
    assert_eq!(store.family("s").await.unwrap(), Some(f2_revoked));

    // A family that does not exist does not rotate.
    let ghost = family("ghost", "u", T0, T0);
    assert_eq!(
        store
            .rotate_family(&ghost, &rotated(&ghost, hash(5)), &hash(6))
            .await
            .unwrap(),
        RotationOutcome::Conflict
    );
    assert_eq!(store.family("ghost").await.unwrap(), None);
    assert!(!store.was_retired_by("s", &hash(999)).await.unwrap());
}

async fn a_long_lived_family_remembers_every_token_it_retired(backend: Backend) {
    const ROTATIONS: u64 = 41;
    let store = backend.open().await;
    for id in ["s", "t"] {
        store
            .put_session(
                &session(id, "u", T0 + 1_000),
                Some(&family(id, "u", T0 + 1_000, T0 + 5_000)),
            )
            .await
            .unwrap();
    }
    let mut current = store.family("s").await.unwrap().unwrap();
    let mut retired = Vec::new();
    for n in 0..ROTATIONS {
        let next = rotated(&current, hash(1_000 + n));
        assert_eq!(
            store
                .rotate_family(&current, &next, &current.current)
                .await
                .unwrap(),
            RotationOutcome::Committed,
            "rotation {n}"
        );
        retired.push(current.current);
        current = next;
        // The family reads back as stored, whatever the store keeps beside it.
        assert_eq!(store.family("s").await.unwrap(), Some(current.clone()));
    }
    assert_remembers(store.as_ref(), &retired).await;

    // A revocation and the tombstone of a removed session keep them all.
    let mut revoked = current.clone();
    revoked.revoked = Some(FamilyRevocation::Reuse);
    store.put_family(&revoked).await.unwrap();
    store
        .remove_sessions("u", &["s".into()], FamilyRevocation::Revoked)
        .await
        .unwrap();
    assert_eq!(store.family("s").await.unwrap(), Some(revoked));
    assert_remembers(store.as_ref(), &retired).await;

    // So do a reopen and a copy to a fresh store of the same kind.
    let store = backend.reopen(store).await;
    assert_remembers(store.as_ref(), &retired).await;
    let snapshot = store.export().await.unwrap();
    let mut expected: Vec<(TokenHash, String)> =
        retired.iter().map(|h| (*h, "s".to_string())).collect();
    expected.sort();
    assert_eq!(
        snapshot.retired_tokens, expected,
        "each retired token once, in hash order"
    );
    let fresh = backend.fresh().await;
    let target = fresh.open().await;
    target.import(&snapshot).await.unwrap();
    assert_eq!(target.export().await.unwrap(), snapshot);
    assert_remembers(target.as_ref(), &retired).await;
}

/// Every hash of `retired` is known as retired by family `s`, and by no other.
async fn assert_remembers(store: &dyn Store, retired: &[TokenHash]) {
    for (n, hash) in retired.iter().enumerate() {
        assert!(
            store.was_retired_by("s", hash).await.unwrap(),
            "retired token {n}"
        );
        assert!(!store.was_retired_by("t", hash).await.unwrap());
    }
    let current = store.family("s").await.unwrap().unwrap().current;
    assert!(!store.was_retired_by("s", &current).await.unwrap());
}

async fn concurrent_rotations_of_one_family_commit_exactly_once(backend: Backend) {
    const FAMILIES: u64 = 10;
    const ROUNDS: u64 = 5;
    let store = backend.open().await;
    let mut current = Vec::new();
    for n in 0..FAMILIES {
        let id = format!("s{n}");
        let f = family(&id, "u", T0 + 1_000, T0 + 5_000);
        store
            .put_session(&session(&id, "u", T0 + 1_000), Some(&f))
            .await
            .unwrap();
        current.push(f);
    }
    for round in 0..ROUNDS {
        // Two rotations of every family from the same stored state, all at once.
        let mut racers = Vec::new();
        for (n, previous) in current.iter().enumerate() {
            for contender in 0..2u64 {
                let store = store.clone();
                let previous = previous.clone();
                let next = rotated(&previous, hash(1_000 * round + 10 * n as u64 + contender));
                racers.push(tokio::spawn(async move {
                    let outcome = store
                        .rotate_family(&previous, &next, &previous.current)
                        .await
                        .unwrap();
                    (n, outcome, next)
                }));
            }
        }
        let mut winners: Vec<Option<FamilyRecord>> = vec![None; current.len()];
        for racer in racers {
            let (n, outcome, next) = racer.await.unwrap();
            if outcome == RotationOutcome::Committed {
                assert!(
                    winners[n].is_none(),
                    "round {round}: family {n} committed twice"
                );
                winners[n] = Some(next);
            }
        }
        for (n, winner) in winners.into_iter().enumerate() {
            let winner =
                winner.unwrap_or_else(|| panic!("round {round}: family {n} never committed"));
            assert_eq!(
                store.family(&format!("s{n}")).await.unwrap().as_ref(),
                Some(&winner)
            );
            current[n] = winner;
        }
    }
}

async fn removing_sessions_keeps_family_tombstones_and_their_owner(backend: Backend) {
    let store = backend.open().await;
    let f1 = family("s1", "u", T0 + 1_000, T0 + 5_000);
    store
        .put_session(&session("s1", "u", T0 + 1_000), Some(&f1))
        .await
        .unwrap();
    store
        .put_session(&session("s2", "u", T0 + 1_000), None)
        .await
        .unwrap();
    let s3 = session("s3", "u", T0 + 1_000);
    store.put_session(&s3, None).await.unwrap();

    store
        .remove_sessions("u", &[], FamilyRevocation::Revoked)
        .await
        .unwrap();
    assert_eq!(store.sessions_of("u").await.unwrap().len(), 3);

    store
        .remove_sessions("u", &["s1".into(), "s2".into()], FamilyRevocation::Reuse)
        .await
        .unwrap();
    assert_eq!(store.sessions_of("u").await.unwrap(), vec![s3]);
    let tombstone = FamilyRecord {
        revoked: Some(FamilyRevocation::Reuse),
        ..f1.clone()
    };
    assert_eq!(store.family("s1").await.unwrap(), Some(tombstone.clone()));
    assert_eq!(
        store.session_owner("s1").await.unwrap().as_deref(),
        Some("u")
    );
    assert_eq!(store.session_owner("s2").await.unwrap(), None);
    assert_eq!(
        store.session_owner("s3").await.unwrap().as_deref(),
        Some("u")
    );
    // A tombstone can never rotate.
    assert_eq!(
        store
            .rotate_family(&f1, &rotated(&f1, hash(1)), &f1.current)
            .await
            .unwrap(),
        RotationOutcome::Conflict
    );

    // Revoking again keeps the first reason.
    store
        .remove_sessions("u", &["s1".into()], FamilyRevocation::Revoked)
        .await
        .unwrap();
    assert_eq!(store.family("s1").await.unwrap(), Some(tombstone));
}

async fn sweeping_sessions_removes_what_expired_and_keeps_what_lives(backend: Backend) {
    let now = T0;
    let store = backend.open().await;
    // A retired token whose family never existed here.
    store
        .import(&Snapshot {
            retired_tokens: vec![(hash(900), "ghost".into())],
            ..Snapshot::default()
        })
        .await
        .unwrap();
    assert!(store.was_retired_by("ghost", &hash(900)).await.unwrap());

    // live: its own expiry is ahead.
    let live = session("live", "u", now + 1);
    store.put_session(&live, None).await.unwrap();
    // expired: its own expiry has passed.
    store
        .put_session(&session("expired", "u", now), None)
        .await
        .unwrap();
    // idle: its family's idle expiry has passed (its own has not): session and family go.
    let idle = family("idle", "u", now - 1, now + 5_000);
    store
        .put_session(&session("idle", "u", now + 1_000), Some(&idle))
        .await
        .unwrap();
    let idle1 = rotated(&idle, hash(1));
    assert_eq!(
        store
            .rotate_family(&idle, &idle1, &hash(901))
            .await
            .unwrap(),
        RotationOutcome::Committed
    );
    // family-live: its own expiry passed but its family's has not: it stays.
    let fam_live = session("family-live", "u", now - 1);
    let fl = family("family-live", "u", now + 1_000, now + 5_000);
    store.put_session(&fam_live, Some(&fl)).await.unwrap();
    assert_eq!(
        store
            .rotate_family(&fl, &rotated(&fl, hash(2)), &hash(902))
            .await
            .unwrap(),
        RotationOutcome::Committed
    );
    // finished tombstone: revoked and past its absolute expiry: goes, with its retired token.
    let done = family("done", "u", now + 1_000, now + 1_000);
    store
        .put_session(&session("done", "u", now + 1_000), Some(&done))
        .await
        .unwrap();
    assert_eq!(
        store
            .rotate_family(&done, &rotated(&done, hash(3)), &hash(903))
            .await
            .unwrap(),
        RotationOutcome::Committed
    );
    store
        .remove_sessions("u", &["done".into()], FamilyRevocation::Revoked)
        .await
        .unwrap();
    let mut done_now = store.family("done").await.unwrap().unwrap();
    done_now.absolute_expires_at = now - 1;
    store.put_family(&done_now).await.unwrap();
    // kept tombstone: revoked, idle passed but absolute ahead: stays.
    let kept = family("kept", "u", now + 1_000, now + 5_000);
    store
        .put_session(&session("kept", "u", now + 1_000), Some(&kept))
        .await
        .unwrap();
    store
        .remove_sessions("u", &["kept".into()], FamilyRevocation::Reuse)
        .await
        .unwrap();
    let mut kept_now = store.family("kept").await.unwrap().unwrap();
    kept_now.idle_expires_at = now - 1;
    store.put_family(&kept_now).await.unwrap();

    // expired + idle (session) + idle (family) + done (family).
    assert_eq!(store.sweep_expired_sessions(now).await.unwrap(), 4);

    let left: Vec<String> = store
        .sessions_of("u")
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(left, ["family-live", "live"]);
    for (id, owner) in [
        ("live", true),
        ("expired", false),
        ("idle", false),
        ("family-live", true),
        ("done", false),
        ("kept", true),
    ] {
        assert_eq!(
            store.session_owner(id).await.unwrap().is_some(),
            owner,
            "owner of {id}"
        );
    }
    assert_eq!(store.family("idle").await.unwrap(), None);
    assert_eq!(store.family("done").await.unwrap(), None);
    assert_eq!(store.family("kept").await.unwrap(), Some(kept_now));
    assert!(store.family("family-live").await.unwrap().is_some());
    assert!(!store.was_retired_by("ghost", &hash(900)).await.unwrap());
    assert!(!store.was_retired_by("idle", &hash(901)).await.unwrap());
    assert!(!store.was_retired_by("done", &hash(903)).await.unwrap());
    assert!(store
        .was_retired_by("family-live", &hash(902))
        .await
        .unwrap());

    assert_eq!(store.sweep_expired_sessions(now).await.unwrap(), 0);
}

// ----- OAuth states -----

async fn oauth_states_are_bounded_counted_and_taken_once(backend: Backend) {
    let store = backend.open().await;
    assert_eq!(store.oauth_state_count(), 0);
    assert!(store
        .put_oauth_state(&[1; 32], &state(1_000, Some("session-a")), 3)
        .await
        .unwrap());
    assert!(store
        .put_oauth_state(&[2; 32], &state(1_000, None), 3)
        .await
        .unwrap());
    assert!(store
        .put_oauth_state(&[3; 32], &state(5_000, Some("session-c")), 3)
        .await
        .unwrap());
    // At the bound: refused, nothing written.
    assert!(!store
        .put_oauth_state(&[4; 32], &state(5_000, None), 3)
        .await
        .unwrap());
    assert_eq!(store.oauth_state_count(), 3);
    assert_eq!(store.take_oauth_state(&[4; 32]).await.unwrap(), None);

    let taken = store.take_oauth_state(&[1; 32]).await.unwrap().unwrap();
    assert_eq!(taken, state(1_000, Some("session-a")));
    assert_eq!(store.take_oauth_state(&[1; 32]).await.unwrap(), None);
    assert_eq!(store.oauth_state_count(), 2);

    // The sweep removes the expired one; the count follows.
    assert_eq!(store.sweep_oauth_states(2_000).await.unwrap(), 1);
    assert_eq!(store.oauth_state_count(), 1);
    assert_eq!(store.take_oauth_state(&[2; 32]).await.unwrap(), None);

    // Concurrent takes of one key: exactly one finds it.
    for round in 0..20u8 {
        let key = [100 + round; 32];
        assert!(store
            .put_oauth_state(&key, &state(9_000, Some("s")), 100)
            .await
            .unwrap());
        let takes: Vec<_> = (0..2)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.take_oauth_state(&key).await.unwrap() })
            })
            .collect();
        let mut found = 0;
        for take in takes {
            if let Some(taken) = take.await.unwrap() {
                assert_eq!(taken.link_session_id.as_deref(), Some("s"));
                found += 1;
            }
        }
        assert_eq!(found, 1, "round {round}");
    }
    assert_eq!(store.oauth_state_count(), 1);

    // A reopen counts what is stored, and the link session is still there.
    let store = backend.reopen(store).await;
    assert_eq!(store.oauth_state_count(), 1);
    let taken = store.take_oauth_state(&[3; 32]).await.unwrap().unwrap();
    assert_eq!(taken, state(5_000, Some("session-c")));
    assert_eq!(store.oauth_state_count(), 0);
    assert_eq!(store.sweep_oauth_states(i64::MAX).await.unwrap(), 0);
    assert_eq!(store.oauth_state_count(), 0);
}

// ----- OAuth 2.1 grants -----

fn code_grant(client_id: &str, expires_at: UnixMillis) -> OAuth2GrantRecord {
    OAuth2GrantRecord {
        kind: OAuth2GrantKind::AuthorizationCode,
        client_id: client_id.into(),
        scope: "openid profile".into(),
        redirect_uri: Some("https://app.example/callback".into()),
        code_challenge: Some("c".repeat(43)),
        nonce: Some("n".into()),
        user_id: Some("u1".into()),
        auth_time: Some(T0 - 5_000),
        status: OAuth2GrantStatus::Pending,
        interval_secs: 0,
        last_polled_at: None,
        created_at: T0,
        expires_at,
    }
}

fn device_grant(
    client_id: &str,
    created_at: UnixMillis,
    expires_at: UnixMillis,
) -> OAuth2GrantRecord {
    OAuth2GrantRecord {
        kind: OAuth2GrantKind::Device,
        client_id: client_id.into(),
        scope: "openid".into(),
        redirect_uri: None,
        code_challenge: None,
        nonce: None,
        user_id: None,
        auth_time: None,
        status: OAuth2GrantStatus::Pending,
        interval_secs: 5,
        last_polled_at: None,
        created_at,
        expires_at,
    }
}

/// A user-code hash, distinct from every grant key `hash(n)` used here.
fn user_code(n: u64) -> TokenHash {
    let mut h = [0xCD; 32];
    h[..8].copy_from_slice(&n.to_be_bytes());
    h
}

/// Stores `grant` under `hash(key)`, with `user_code(code)` when given.
async fn put_grant(
    store: &dyn Store,
    key: u64,
    grant: &OAuth2GrantRecord,
    code: Option<u64>,
    max_pending: usize,
) -> GrantPut {
    store
        .put_oauth2_grant(&hash(key), grant, code.map(user_code).as_ref(), max_pending)
        .await
        .unwrap()
}

async fn grant_at(store: &dyn Store, key: u64) -> Option<OAuth2GrantRecord> {
    store.oauth2_grant(&hash(key)).await.unwrap()
}

async fn grant_by_code(store: &dyn Store, code: u64) -> Option<(TokenHash, OAuth2GrantRecord)> {
    store
        .oauth2_grant_by_user_code(&user_code(code))
        .await
        .unwrap()
}

async fn oauth2_grants_round_trip_by_key_and_user_code(backend: Backend) {
    let store = backend.open().await;
    assert_eq!(store.oauth2_grant_count(), 0);
    let code = code_grant("app", T0 + 60_000);
    let device = device_grant("tv", T0, T0 + 600_000);
    assert_eq!(
        put_grant(store.as_ref(), 1, &code, None, 10).await,
        GrantPut::Stored
    );
    assert_eq!(
        put_grant(store.as_ref(), 2, &device, Some(2), 10).await,
        GrantPut::Stored
    );
    assert_eq!(store.oauth2_grant_count(), 2);
    assert_eq!(grant_at(store.as_ref(), 1).await, Some(code.clone()));
    assert_eq!(grant_at(store.as_ref(), 2).await, Some(device.clone()));
    assert_eq!(grant_at(store.as_ref(), 3).await, None);
    assert_eq!(
        grant_by_code(store.as_ref(), 2).await,
        Some((hash(2), device.clone()))
    );
    assert_eq!(grant_by_code(store.as_ref(), 1).await, None);
    // A grant key is not a user code.
    assert_eq!(
        store.oauth2_grant_by_user_code(&hash(2)).await.unwrap(),
        None
    );

    // Every status is stored and read back, through the key and the user code.
    let mut current = device.clone();
    for status in [
        OAuth2GrantStatus::Approved,
        OAuth2GrantStatus::Denied,
        OAuth2GrantStatus::Redeemed { session_id: None },
        OAuth2GrantStatus::Redeemed {
            session_id: Some("s1".into()),
        },
        OAuth2GrantStatus::Replayed,
        OAuth2GrantStatus::Pending,
    ] {
        let next = OAuth2GrantRecord {
            status,
            user_id: Some("u1".into()),
            auth_time: Some(T0 + 1),
            last_polled_at: Some(current.last_polled_at.unwrap_or(T0) + 5_000),
            ..current.clone()
        };
        assert!(store
            .replace_oauth2_grant(&hash(2), &current, &next)
            .await
            .unwrap());
        assert_eq!(grant_at(store.as_ref(), 2).await, Some(next.clone()));
        assert_eq!(
            grant_by_code(store.as_ref(), 2).await,
            Some((hash(2), next.clone()))
        );
        current = next;
    }
    assert_eq!(store.oauth2_grant_count(), 2);

    // Grants live minutes: a copy does not carry them.
    assert_eq!(store.export().await.unwrap(), Snapshot::default());

    // They survive a reopen, and the count is right after it.
    let store = backend.reopen(store).await;
    assert_eq!(store.oauth2_grant_count(), 2);
    assert_eq!(grant_at(store.as_ref(), 1).await, Some(code));
    assert_eq!(
        grant_by_code(store.as_ref(), 2).await,
        Some((hash(2), current))
    );
}

async fn oauth2_grants_past_the_bound_write_nothing(backend: Backend) {
    let store = backend.open().await;
    let device = device_grant("tv", T0, T0 + 600_000);
    assert_eq!(
        put_grant(store.as_ref(), 1, &code_grant("app", T0 + 60_000), None, 2).await,
        GrantPut::Stored
    );
    assert_eq!(
        put_grant(store.as_ref(), 2, &device, Some(2), 2).await,
        GrantPut::Stored
    );
    // At the bound: refused, nothing written, whether with a user code or not.
    assert_eq!(
        put_grant(store.as_ref(), 3, &device, Some(3), 2).await,
        GrantPut::Full
    );
    assert_eq!(
        put_grant(store.as_ref(), 4, &code_grant("app", T0 + 60_000), None, 2).await,
        GrantPut::Full
    );
    // The bound comes first: a taken user code past it is Full too.
    assert_eq!(
        put_grant(store.as_ref(), 5, &device, Some(2), 2).await,
        GrantPut::Full
    );
    assert_eq!(store.oauth2_grant_count(), 2);
    for key in [3, 4, 5] {
        assert_eq!(grant_at(store.as_ref(), key).await, None, "grant {key}");
    }
    assert_eq!(grant_by_code(store.as_ref(), 3).await, None);
    assert_eq!(
        grant_by_code(store.as_ref(), 2).await,
        Some((hash(2), device.clone()))
    );

    // A higher bound lets the same grant in.
    assert_eq!(
        put_grant(store.as_ref(), 3, &device, Some(3), 3).await,
        GrantPut::Stored
    );
    assert_eq!(store.oauth2_grant_count(), 3);
    assert_eq!(
        grant_by_code(store.as_ref(), 3).await,
        Some((hash(3), device))
    );

    // Concurrent puts never pass the bound.
    let puts: Vec<_> = (0..10u64)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let grant = device_grant("burst", T0, T0 + 600_000);
                put_grant(store.as_ref(), 100 + n, &grant, Some(100 + n), 6).await
            })
        })
        .collect();
    let mut stored = 0;
    for put in puts {
        match put.await.unwrap() {
            GrantPut::Stored => stored += 1,
            GrantPut::Full => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(stored, 3);
    assert_eq!(store.oauth2_grant_count(), 6);
}

async fn a_taken_user_code_writes_nothing(backend: Backend) {
    let store = backend.open().await;
    let a = device_grant("tv", T0, T0 + 600_000);
    assert_eq!(
        put_grant(store.as_ref(), 1, &a, Some(7), 10).await,
        GrantPut::Stored
    );
    // Another grant with the same user code, up to the last millisecond of
    // the holder's life: refused, nothing written.
    for (key, created_at) in [(2, T0 + 1_000), (3, a.expires_at - 1)] {
        let b = device_grant("other", created_at, created_at + 600_000);
        assert_eq!(
            put_grant(store.as_ref(), key, &b, Some(7), 10).await,
            GrantPut::UserCodeTaken
        );
        assert_eq!(grant_at(store.as_ref(), key).await, None);
    }
    assert_eq!(store.oauth2_grant_count(), 1);
    assert_eq!(
        grant_by_code(store.as_ref(), 7).await,
        Some((hash(1), a.clone()))
    );
    assert_eq!(grant_at(store.as_ref(), 1).await, Some(a.clone()));

    // Of many grants claiming one free user code at once, exactly one gets it.
    let claims: Vec<_> = (0..10u64)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let grant = device_grant(&format!("c{n}"), T0, T0 + 600_000);
                let put = put_grant(store.as_ref(), 100 + n, &grant, Some(8), 100).await;
                (n, put, grant)
            })
        })
        .collect();
    let mut winner = None;
    for claim in claims {
        let (n, put, grant) = claim.await.unwrap();
        match put {
            GrantPut::Stored => {
                assert!(winner.is_none(), "two grants took one user code");
                winner = Some((hash(100 + n), grant));
            }
            GrantPut::UserCodeTaken => {
                assert_eq!(grant_at(store.as_ref(), 100 + n).await, None);
            }
            GrantPut::Full => panic!("the bound was not reached"),
        }
    }
    assert!(winner.is_some(), "nobody took the user code");
    assert_eq!(grant_by_code(store.as_ref(), 8).await, winner);
    assert_eq!(store.oauth2_grant_count(), 2);

    // Once the holder expired (at the new grant's creation), the user code is
    // free again: the expired holder goes with it.
    let c = device_grant("tv2", a.expires_at, a.expires_at + 600_000);
    assert_eq!(
        put_grant(store.as_ref(), 4, &c, Some(7), 10).await,
        GrantPut::Stored
    );
    assert_eq!(
        grant_by_code(store.as_ref(), 7).await,
        Some((hash(4), c.clone()))
    );
    assert_eq!(grant_at(store.as_ref(), 1).await, None);
    assert_eq!(store.oauth2_grant_count(), 2);
    assert_eq!(store.sweep_oauth2_grants(T0).await.unwrap(), 0);
    assert_eq!(store.oauth2_grant_count(), 2);
}

async fn replacing_a_grant_is_a_compare_and_swap(backend: Backend) {
    let store = backend.open().await;
    let pending = device_grant("tv", T0, T0 + 600_000);
    assert_eq!(
        put_grant(store.as_ref(), 1, &pending, Some(1), 10).await,
        GrantPut::Stored
    );
    let approved = OAuth2GrantRecord {
        status: OAuth2GrantStatus::Approved,
        user_id: Some("u1".into()),
        auth_time: Some(T0 + 10),
        ..pending.clone()
    };
    let denied = OAuth2GrantRecord {
        status: OAuth2GrantStatus::Denied,
        ..pending.clone()
    };
    // Two changes from the same expected state: the first commits, the second
    // finds the grant changed and writes nothing.
    assert!(store
        .replace_oauth2_grant(&hash(1), &pending, &approved)
        .await
        .unwrap());
    assert!(!store
        .replace_oauth2_grant(&hash(1), &pending, &denied)
        .await
        .unwrap());
    assert_eq!(grant_at(store.as_ref(), 1).await, Some(approved.clone()));
    assert_eq!(
        grant_by_code(store.as_ref(), 1).await,
        Some((hash(1), approved.clone()))
    );

    // An expected state differing in one field only is not the stored one.
    let polled = OAuth2GrantRecord {
        last_polled_at: Some(T0 + 5_000),
        ..approved.clone()
    };
    let redeemed = OAuth2GrantRecord {
        status: OAuth2GrantStatus::Redeemed { session_id: None },
        ..approved.clone()
    };
    assert!(!store
        .replace_oauth2_grant(&hash(1), &polled, &redeemed)
        .await
        .unwrap());
    assert_eq!(grant_at(store.as_ref(), 1).await, Some(approved.clone()));
    // From the stored state it commits.
    assert!(store
        .replace_oauth2_grant(&hash(1), &approved, &redeemed)
        .await
        .unwrap());
    assert_eq!(grant_at(store.as_ref(), 1).await, Some(redeemed.clone()));

    // A grant that is not stored cannot be replaced, and none appears.
    assert!(!store
        .replace_oauth2_grant(&hash(2), &pending, &approved)
        .await
        .unwrap());
    assert_eq!(grant_at(store.as_ref(), 2).await, None);
    assert_eq!(store.oauth2_grant_count(), 1);

    // A swept grant is not stored either.
    assert_eq!(store.sweep_oauth2_grants(T0 + 600_000).await.unwrap(), 1);
    let replayed = OAuth2GrantRecord {
        status: OAuth2GrantStatus::Replayed,
        ..redeemed.clone()
    };
    assert!(!store
        .replace_oauth2_grant(&hash(1), &redeemed, &replayed)
        .await
        .unwrap());
    assert_eq!(grant_at(store.as_ref(), 1).await, None);
    assert_eq!(store.oauth2_grant_count(), 0);
}

async fn concurrent_replaces_of_one_grant_commit_exactly_once(backend: Backend) {
    const ROUNDS: i64 = 3;
    const RACERS: i64 = 20;
    let store = backend.open().await;
    let mut current = device_grant("tv", T0, T0 + 600_000);
    assert_eq!(
        put_grant(store.as_ref(), 1, &current, Some(1), 10).await,
        GrantPut::Stored
    );
    for round in 0..ROUNDS {
        // Twenty changes of the grant from the same stored state, all at once.
        let racers: Vec<_> = (0..RACERS)
            .map(|n| {
                let store = store.clone();
                let expected = current.clone();
                let next = OAuth2GrantRecord {
                    last_polled_at: Some(T0 + 1_000 * round + n),
                    ..expected.clone()
                };
                tokio::spawn(async move {
                    let swapped = store
                        .replace_oauth2_grant(&hash(1), &expected, &next)
                        .await
                        .unwrap();
                    (swapped, next)
                })
            })
            .collect();
        let mut winner = None;
        for racer in racers {
            let (swapped, next) = racer.await.unwrap();
            if swapped {
                assert!(winner.is_none(), "round {round}: two replaces committed");
                winner = Some(next);
            }
        }
        let winner = winner.unwrap_or_else(|| panic!("round {round}: no replace committed"));
        assert_eq!(grant_at(store.as_ref(), 1).await, Some(winner.clone()));
        assert_eq!(
            grant_by_code(store.as_ref(), 1).await,
            Some((hash(1), winner.clone()))
        );
        current = winner;
    }
    assert_eq!(store.oauth2_grant_count(), 1);
}

async fn sweeping_grants_removes_expired_ones_and_their_user_codes(backend: Backend) {
    let now = T0 + 1_000;
    let store = backend.open().await;
    // Expired (at `now` exactly), with a user code.
    assert_eq!(
        put_grant(store.as_ref(), 1, &device_grant("tv", T0, now), Some(1), 10).await,
        GrantPut::Stored
    );
    // Live, with a user code.
    let live_device = device_grant("tv", T0, now + 1);
    assert_eq!(
        put_grant(store.as_ref(), 2, &live_device, Some(2), 10).await,
        GrantPut::Stored
    );
    // Expired and live codes.
    assert_eq!(
        put_grant(store.as_ref(), 3, &code_grant("app", now - 1), None, 10).await,
        GrantPut::Stored
    );
    let live_code = code_grant("app", now + 60_000);
    assert_eq!(
        put_grant(store.as_ref(), 4, &live_code, None, 10).await,
        GrantPut::Stored
    );
    assert_eq!(store.oauth2_grant_count(), 4);

    assert_eq!(store.sweep_oauth2_grants(now).await.unwrap(), 2);
    assert_eq!(store.oauth2_grant_count(), 2);
    assert_eq!(grant_at(store.as_ref(), 1).await, None);
    assert_eq!(grant_at(store.as_ref(), 3).await, None);
    assert_eq!(grant_by_code(store.as_ref(), 1).await, None);
    assert_eq!(grant_at(store.as_ref(), 2).await, Some(live_device.clone()));
    assert_eq!(grant_at(store.as_ref(), 4).await, Some(live_code.clone()));
    assert_eq!(
        grant_by_code(store.as_ref(), 2).await,
        Some((hash(2), live_device.clone()))
    );
    assert_eq!(store.sweep_oauth2_grants(now).await.unwrap(), 0);
    assert_eq!(store.oauth2_grant_count(), 2);

    // The swept grant's user code can be given out again (even by a clock
    // that has not passed the old grant's expiry).
    let again = device_grant("tv3", T0, now + 600_000);
    assert_eq!(
        put_grant(store.as_ref(), 5, &again, Some(1), 10).await,
        GrantPut::Stored
    );
    assert_eq!(
        grant_by_code(store.as_ref(), 1).await,
        Some((hash(5), again.clone()))
    );
    assert_eq!(store.oauth2_grant_count(), 3);

    // What lives survives a reopen, and the count is right after it.
    let store = backend.reopen(store).await;
    assert_eq!(store.oauth2_grant_count(), 3);
    assert_eq!(
        grant_by_code(store.as_ref(), 1).await,
        Some((hash(5), again))
    );
    assert_eq!(store.sweep_oauth2_grants(i64::MAX).await.unwrap(), 3);
    assert_eq!(store.oauth2_grant_count(), 0);
    for code in [1, 2] {
        assert_eq!(grant_by_code(store.as_ref(), code).await, None);
    }
    for key in [2, 4, 5] {
        assert_eq!(grant_at(store.as_ref(), key).await, None);
    }
}

/// Stores a grant this build cannot read under `hash(key)`, far from expiry,
/// with `user_code(code)`, behind the store's back; returns the store (reopened on sled).
async fn write_unreadable_grant(
    backend: &Backend,
    store: Arc<dyn Store>,
    key: u64,
    code: u64,
) -> Arc<dyn Store> {
    // A schema version no build writes.
    let unreadable = vec![0xFF_u8, 1, 2, 3];
    match backend {
        Backend::Sled(dir) => {
            let watch = store.release_watch();
            drop(store);
            assert!(watch.wait(Duration::from_secs(10)).await);
            let db = ::sled::open(dir.path().join("db")).expect("opening the sled files");
            db.open_tree("oauth2_grants")
                .unwrap()
                .insert(hash(key), unreadable)
                .unwrap();
            db.open_tree("oauth2_user_codes")
                .unwrap()
                .insert(user_code(code), &hash(key))
                .unwrap();
            db.flush().unwrap();
            drop(db);
            backend.open().await
        }
        Backend::Postgres(url) => {
            admin_client(url)
                .await
                .execute(
                    "INSERT INTO oauth2_grants (key, expires_at, user_code, record)
                     VALUES ($1, $2, $3, $4)",
                    &[
                        &&hash(key)[..],
                        &i64::MAX,
                        &&user_code(code)[..],
                        &unreadable,
                    ],
                )
                .await
                .unwrap();
            store
        }
    }
}

async fn unreadable_grants_are_swept_with_their_user_codes(backend: Backend) {
    let store = backend.open().await;
    let live = device_grant("tv", T0, T0 + 600_000);
    assert_eq!(
        put_grant(store.as_ref(), 1, &live, Some(1), 10).await,
        GrantPut::Stored
    );
    let store = write_unreadable_grant(&backend, store, 2, 2).await;
    // Reading it is an error, never an absence.
    assert!(matches!(
        store.oauth2_grant(&hash(2)).await,
        Err(StorageError::Corrupt(_))
    ));
    assert!(matches!(
        store.oauth2_grant_by_user_code(&user_code(2)).await,
        Err(StorageError::Corrupt(_))
    ));
    // It can never be redeemed: the sweep removes it, with its user code,
    // however far its expiry, and the count is what is stored.
    assert_eq!(store.sweep_oauth2_grants(T0).await.unwrap(), 1);
    assert_eq!(store.oauth2_grant_count(), 1);
    assert_eq!(store.oauth2_grant(&hash(2)).await.unwrap(), None);
    assert_eq!(grant_by_code(store.as_ref(), 2).await, None);
    assert_eq!(
        grant_by_code(store.as_ref(), 1).await,
        Some((hash(1), live))
    );
    // Its user code is free again.
    let next = device_grant("tv2", T0, T0 + 600_000);
    assert_eq!(
        put_grant(store.as_ref(), 3, &next, Some(2), 10).await,
        GrantPut::Stored
    );
    assert_eq!(store.oauth2_grant_count(), 2);
}

// ----- signing keys and audit -----

async fn signing_keys_and_the_audit_log(backend: Backend) {
    let store = backend.open().await;
    assert!(store.signing_keys().await.unwrap().is_empty());
    store.put_signing_key(&signing_key("k2")).await.unwrap();
    store.put_signing_key(&signing_key("k1")).await.unwrap();
    let mut k1_retired = signing_key("k1");
    k1_retired.retired_at = Some(T0 + 5);
    store.put_signing_key(&k1_retired).await.unwrap();
    assert_eq!(
        store.signing_keys().await.unwrap(),
        vec![k1_retired, signing_key("k2")]
    );

    assert!(store.recent_audit_events(10).await.unwrap().is_empty());
    for n in 0..5 {
        store.audit(&event(n)).await.unwrap();
    }
    assert_eq!(
        store.recent_audit_events(3).await.unwrap(),
        vec![event(4), event(3), event(2)]
    );
    assert_eq!(
        store.recent_audit_events(10).await.unwrap(),
        (0..5).rev().map(event).collect::<Vec<_>>()
    );
    assert_eq!(
        store.export().await.unwrap().audit,
        (0..5).map(event).collect::<Vec<_>>()
    );
}

// ----- mailed tokens and the outbox -----

fn email_token(user_id: &str, expires_at: UnixMillis) -> EmailTokenRecord {
    EmailTokenRecord {
        purpose: EmailTokenPurpose::ResetPassword,
        user_id: user_id.into(),
        email: format!("{user_id}@example.com"),
        password_stamp: [9; 32],
        created_at: T0,
        expires_at,
    }
}

fn mail(n: u64, next_attempt_at: UnixMillis) -> OutboxMailRecord {
    OutboxMailRecord {
        id: format!("{:016x}-{n}", T0 as u64 + n),
        recipient: format!("to{n}@example.com"),
        subject: format!("Subject {n}"),
        text_body: "text".into(),
        html_body: "<p>html</p>".into(),
        kind: "reset_password".into(),
        created_at: T0 + n as i64,
        attempts: 0,
        next_attempt_at,
        last_error: None,
    }
}

async fn mailed_tokens_are_taken_once_and_swept(backend: Backend) {
    let store = backend.open().await;
    store
        .put_email_token(&hash(1), &email_token("a", T0 + 1_000))
        .await
        .unwrap();
    store
        .put_email_token(&hash(2), &email_token("b", T0 + 5_000))
        .await
        .unwrap();
    store
        .put_email_token(&hash(3), &email_token("c", T0 + 5_000))
        .await
        .unwrap();
    assert_eq!(
        store.take_email_token(&hash(1)).await.unwrap(),
        Some(email_token("a", T0 + 1_000))
    );
    assert_eq!(store.take_email_token(&hash(1)).await.unwrap(), None);
    assert_eq!(store.take_email_token(&hash(99)).await.unwrap(), None);

    // Concurrent takes of one token: exactly one finds it.
    for round in 0..20u64 {
        let key = hash(1_000 + round);
        store
            .put_email_token(&key, &email_token("r", T0 + 9_000))
            .await
            .unwrap();
        let takes: Vec<_> = (0..2)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.take_email_token(&key).await.unwrap() })
            })
            .collect();
        let mut found = 0;
        for take in takes {
            if take.await.unwrap().is_some() {
                found += 1;
            }
        }
        assert_eq!(found, 1, "round {round}");
    }

    // The sweep removes what expired and keeps the rest, across a reopen.
    assert_eq!(store.sweep_email_tokens(T0 + 5_000).await.unwrap(), 2);
    let store = backend.reopen(store).await;
    assert_eq!(store.sweep_email_tokens(T0 + 5_000).await.unwrap(), 0);
    assert!(store.export().await.unwrap().email_tokens.is_empty());
}

async fn the_outbox_is_bounded_ordered_and_rescheduled(backend: Backend) {
    let store = backend.open().await;
    assert!(store.enqueue_mail(&mail(2, T0), 3).await.unwrap());
    assert!(store.enqueue_mail(&mail(1, T0), 3).await.unwrap());
    assert!(store.enqueue_mail(&mail(3, T0 + 60_000), 3).await.unwrap());
    // At the bound: refused, nothing written.
    assert!(!store.enqueue_mail(&mail(4, T0), 3).await.unwrap());
    assert_eq!(store.queued_mail_count().await.unwrap(), 3);

    // Due ones only, oldest first, limited.
    assert_eq!(
        store.due_mails(T0, 10).await.unwrap(),
        vec![mail(1, T0), mail(2, T0)]
    );
    assert_eq!(store.due_mails(T0, 1).await.unwrap(), vec![mail(1, T0)]);

    // A failed attempt moves the next one later.
    let mut retried = mail(1, T0 + 30_000);
    retried.attempts = 1;
    retried.last_error = Some("451 try again".into());
    store.reschedule_mail(&retried).await.unwrap();
    assert_eq!(store.due_mails(T0, 10).await.unwrap(), vec![mail(2, T0)]);
    assert_eq!(
        store.due_mails(T0 + 60_000, 10).await.unwrap(),
        vec![retried.clone(), mail(2, T0), mail(3, T0 + 60_000)]
    );

    // Delivered: gone, and a reschedule of a removed mail does not bring it back.
    store.remove_mail(&mail(2, T0).id).await.unwrap();
    store.reschedule_mail(&mail(2, T0)).await.unwrap();
    store.remove_mail("no-such-mail").await.unwrap();
    assert_eq!(store.queued_mail_count().await.unwrap(), 2);
    assert!(store.enqueue_mail(&mail(5, T0), 3).await.unwrap());

    // Queued mails survive a reopen, and the count is right after it.
    let store = backend.reopen(store).await;
    assert_eq!(store.queued_mail_count().await.unwrap(), 3);
    assert_eq!(
        store.due_mails(T0 + 60_000, 10).await.unwrap(),
        vec![retried, mail(3, T0 + 60_000), mail(5, T0)]
    );
}

// ----- moving a deployment -----

async fn a_copy_to_the_other_backend_holds_the_same_data(backend: Backend) {
    let source = backend.open().await;
    populate(source.as_ref()).await;
    let snapshot = source.export().await.unwrap();
    assert_eq!(snapshot.users.len(), 2);
    assert_eq!(snapshot.sessions.len(), 2);
    assert_eq!(snapshot.families.len(), 1);
    assert_eq!(snapshot.retired_tokens, vec![(hash(100), "s2".to_string())]);
    assert_eq!(snapshot.signing_keys.len(), 1);
    assert_eq!(snapshot.audit, (0..3).map(event).collect::<Vec<_>>());
    assert_eq!(
        snapshot.email_tokens,
        vec![(hash(7), email_token("u1", T0 + 10_000))]
    );
    assert_eq!(snapshot.outbox, vec![mail(1, T0)]);
    assert_eq!(
        snapshot.provider_tokens,
        vec![provider_tokens("u2", "google", "g2", 1)]
    );

    let other = backend.other().await;
    let target = other.open().await;
    assert_ne!(target.backend(), source.backend());
    target.import(&snapshot).await.unwrap();
    assert_eq!(target.export().await.unwrap(), snapshot);
    // The indexes came along.
    assert_eq!(
        target
            .user_id_by_email("one@example.com")
            .await
            .unwrap()
            .as_deref(),
        Some("u1")
    );
    assert_eq!(
        target
            .user_id_by_account("google", "g2")
            .await
            .unwrap()
            .as_deref(),
        Some("u2")
    );
    assert_eq!(
        target.session_owner("s1").await.unwrap().as_deref(),
        Some("u1")
    );
    assert_eq!(
        target.session_owner("s2").await.unwrap().as_deref(),
        Some("u1")
    );
    assert!(target.was_retired_by("s2", &hash(100)).await.unwrap());
    assert_eq!(target.user_count().await.unwrap(), 2);
    assert!(matches!(
        target
            .create_user(&user("x", Some("one@example.com"), &[]))
            .await,
        Err(StorageError::EmailTaken)
    ));
    assert_eq!(target.recent_audit_events(1).await.unwrap(), vec![event(2)]);
    assert_eq!(target.queued_mail_count().await.unwrap(), 1);
    assert_eq!(
        target.provider_tokens("google", "g2").await.unwrap(),
        Some(provider_tokens("u2", "google", "g2", 1))
    );
    // And it survives a reopen of the target.
    let target = other.reopen(target).await;
    assert_eq!(target.export().await.unwrap(), snapshot);
}

async fn import_refuses_a_store_with_data_and_changes_nothing(backend: Backend) {
    let store = backend.open().await;
    let mut incoming = Snapshot {
        users: vec![user("new", Some("new@example.com"), &[])],
        audit: vec![event(99)],
        ..Snapshot::default()
    };

    // A key alone makes a store non-empty.
    store.put_signing_key(&signing_key("k1")).await.unwrap();
    let before = store.export().await.unwrap();
    assert!(matches!(
        store.import(&incoming).await,
        Err(StorageError::NotEmpty(_))
    ));
    assert_eq!(store.export().await.unwrap(), before);

    // So does a user alone.
    let second = match &backend {
        Backend::Sled(_) => Backend::sled(),
        Backend::Postgres(_) => Backend::postgres().await,
    };
    let store2 = second.open().await;
    store2.create_user(&user("old", None, &[])).await.unwrap();
    let before = store2.export().await.unwrap();
    incoming.signing_keys = vec![signing_key("k9")];
    assert!(matches!(
        store2.import(&incoming).await,
        Err(StorageError::NotEmpty(_))
    ));
    assert_eq!(store2.export().await.unwrap(), before);
    assert_eq!(store2.user("new").await.unwrap(), None);
}

async fn everything_acknowledged_survives_a_reopen(backend: Backend) {
    let store = backend.open().await;
    populate(store.as_ref()).await;
    assert!(store
        .put_oauth_state(&[5; 32], &state(T0, Some("s1")), 10)
        .await
        .unwrap());
    let snapshot = store.export().await.unwrap();

    let store = backend.reopen(store).await;
    assert_eq!(store.export().await.unwrap(), snapshot);
    assert_eq!(
        store
            .user_id_by_account("twitch", "t2")
            .await
            .unwrap()
            .as_deref(),
        Some("u2")
    );
    assert_eq!(store.oauth_state_count(), 1);
    assert_eq!(
        store.take_oauth_state(&[5; 32]).await.unwrap(),
        Some(state(T0, Some("s1")))
    );
}

async fn health_flush_and_release(backend: Backend) {
    let store = backend.open().await;
    let expected = match backend {
        Backend::Sled(_) => "sled",
        Backend::Postgres(_) => "postgres",
    };
    assert_eq!(store.backend(), expected);
    assert!(store.is_healthy());
    assert!(store.recheck_health().await);
    store.audit(&event(1)).await.unwrap();
    store.flush().await.unwrap();
    assert!(store.is_healthy());
    let watch = store.release_watch();
    let clone = store.clone();
    drop(store);
    assert!(!watch.is_released(), "a clone still holds the store");
    drop(clone);
    assert!(watch.wait(Duration::from_secs(10)).await);
}

// ----- PostgreSQL only -----

async fn admin_client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connecting to the test database");
    tokio::spawn(connection);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_refuses_a_schema_newer_than_it_knows() {
    let url = tachigo_testkit::postgres().fresh_database().await;
    let config = pg_config(&url);
    assert_eq!(
        check(&config).await.unwrap(),
        SchemaStatus {
            applied: 0,
            known: KNOWN_VERSION
        }
    );
    let store = PostgresStore::open(&config).await.unwrap();
    drop(store);
    assert_eq!(
        check(&config).await.unwrap(),
        SchemaStatus {
            applied: KNOWN_VERSION,
            known: KNOWN_VERSION
        }
    );

    let future = KNOWN_VERSION + 41;
    admin_client(&url)
        .await
        .execute(
            "INSERT INTO tachigo_schema_migrations (version) VALUES ($1)",
            &[&(future as i32)],
        )
        .await
        .unwrap();
    match PostgresStore::open(&config).await {
        Err(e @ StorageError::SchemaTooNew { found, known }) => {
            assert_eq!((found, known), (future, KNOWN_VERSION));
            let message = e.to_string();
            assert!(
                message.contains(&future.to_string())
                    && message.contains(&KNOWN_VERSION.to_string()),
                "{message}"
            );
        }
        Err(other) => panic!("expected SchemaTooNew, got {other}"),
        Ok(_) => panic!("a newer schema was opened"),
    }
    let status = check(&config).await.unwrap();
    assert_eq!(
        status,
        SchemaStatus {
            applied: future,
            known: KNOWN_VERSION
        }
    );
    assert!(!status.is_compatible());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_nodes_starting_at_once_migrate_once() {
    let url = tachigo_testkit::postgres().fresh_database().await;
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let config = pg_config(&url);
            tokio::spawn(async move { PostgresStore::open(&config).await.map(|_| ()) })
        })
        .collect();
    for open in opens {
        open.await.unwrap().expect("every node opens");
    }
    let versions: Vec<i32> = admin_client(&url)
        .await
        .query(
            "SELECT version FROM tachigo_schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let expected: Vec<i32> = (1..=KNOWN_VERSION as i32).collect();
    assert_eq!(versions, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_secrets_never_reach_messages() {
    const SECRET: &str = "hunter2-Wr0ng";
    for url in [
        format!("postgres://app:{SECRET}@db.internal:5432/tachigo"),
        format!("host=db.internal user=app password={SECRET} dbname=tachigo"),
        format!("host=db.internal password='{SECRET} x' dbname=tachigo"),
    ] {
        let redacted = redacted_url(&url);
        assert!(!redacted.contains(SECRET), "{redacted}");
        assert!(redacted.contains("***"), "{redacted}");
        let debug = format!("{:?}", pg_config(&url));
        assert!(!debug.contains(SECRET), "{debug}");
    }

    let mut failures = Vec::new();
    // Nobody listens: unavailable.
    let closed = pg_config(&format!("postgres://app:{SECRET}@127.0.0.1:1/tachigo"));
    match PostgresStore::open(&closed).await {
        Err(e @ StorageError::Unavailable(_)) => failures.push(e),
        Err(other) => panic!("expected Unavailable, got {other}"),
        Ok(_) => panic!("opened a closed port"),
    }
    failures.push(check(&closed).await.unwrap_err());

    // A real server refusing a wrong password.
    let server = tachigo_testkit::postgres();
    if let Some(role) = server.role_with_password("the-right-one").await {
        let database = server.fresh_database().await;
        let port = database
            .rsplit_once(':')
            .unwrap()
            .1
            .split('/')
            .next()
            .unwrap();
        let name = database.rsplit_once('/').unwrap().1;
        let wrong = pg_config(&format!(
            "postgres://{role}:{SECRET}@127.0.0.1:{port}/{name}"
        ));
        let error = match PostgresStore::open(&wrong).await {
            Err(e) => e,
            Ok(_) => panic!("a wrong password was accepted"),
        };
        assert!(matches!(error, StorageError::Unavailable(_)), "{error}");
        failures.push(error);
        failures.push(check(&wrong).await.unwrap_err());
    }
    for e in failures {
        for text in [e.to_string(), format!("{e:?}")] {
            assert!(!text.contains(SECRET), "a password in an error: {text}");
        }
    }
}

// ----- provider tokens -----

fn sealed(n: u8) -> SealedSecret {
    SealedSecret {
        key_id: [n; 8],
        nonce: [n; 12],
        ciphertext: vec![n; 40],
    }
}

fn provider_tokens(user_id: &str, provider: &str, subject: &str, n: u8) -> ProviderTokensRecord {
    ProviderTokensRecord {
        user_id: user_id.into(),
        provider: provider.into(),
        subject: subject.into(),
        access_token: sealed(n),
        refresh_token: Some(sealed(n + 1)),
        id_token: None,
        access_token_expires_at: Some(T0 + i64::from(n)),
        refresh_token_expires_at: None,
        scopes: vec!["openid".into(), "email".into()],
        updated_at: T0,
    }
}

async fn provider_tokens_live_and_go_with_their_account(backend: Backend) {
    let store = backend.open().await;
    let a = user("a", None, &[("twitch", "1"), ("google", "g")]);
    let b = user("b", None, &[("twitch", "2")]);
    store.create_user(&a).await.unwrap();
    store.create_user(&b).await.unwrap();

    // Only for an account the user holds.
    assert!(store
        .put_provider_tokens(&provider_tokens("a", "twitch", "1", 1))
        .await
        .unwrap());
    assert!(!store
        .put_provider_tokens(&provider_tokens("a", "twitch", "2", 9))
        .await
        .unwrap());
    assert!(!store
        .put_provider_tokens(&provider_tokens("a", "twitch", "nobody", 9))
        .await
        .unwrap());
    assert_eq!(store.provider_tokens("twitch", "2").await.unwrap(), None);
    assert_eq!(
        store.provider_tokens("twitch", "nobody").await.unwrap(),
        None
    );
    // Replaced whole.
    assert!(store
        .put_provider_tokens(&provider_tokens("a", "twitch", "1", 3))
        .await
        .unwrap());
    assert!(store
        .put_provider_tokens(&provider_tokens("a", "google", "g", 5))
        .await
        .unwrap());
    assert!(store
        .put_provider_tokens(&provider_tokens("b", "twitch", "2", 7))
        .await
        .unwrap());
    assert_eq!(
        store.provider_tokens("twitch", "1").await.unwrap(),
        Some(provider_tokens("a", "twitch", "1", 3))
    );

    // Unlinking takes the account's tokens with it, and only those.
    let mut a_without_twitch = a.clone();
    a_without_twitch.accounts.retain(|x| x.provider != "twitch");
    store
        .unlink_account(&a_without_twitch, "twitch", "1")
        .await
        .unwrap();
    assert_eq!(store.provider_tokens("twitch", "1").await.unwrap(), None);
    assert_eq!(
        store.provider_tokens("google", "g").await.unwrap(),
        Some(provider_tokens("a", "google", "g", 5))
    );
    // Nor can they come back for the unlinked account.
    assert!(!store
        .put_provider_tokens(&provider_tokens("a", "twitch", "1", 3))
        .await
        .unwrap());

    // Deleting the user takes the rest; the other user keeps theirs.
    assert!(store.delete_user("a").await.unwrap());
    assert_eq!(store.provider_tokens("google", "g").await.unwrap(), None);
    let store = backend.reopen(store).await;
    assert_eq!(store.provider_tokens("google", "g").await.unwrap(), None);
    assert_eq!(
        store.provider_tokens("twitch", "2").await.unwrap(),
        Some(provider_tokens("b", "twitch", "2", 7))
    );
    assert_eq!(
        store.export().await.unwrap().provider_tokens,
        vec![provider_tokens("b", "twitch", "2", 7)]
    );
}

// ----- ownership claims (a cluster's fencing) -----

async fn claims_name_existing_users_only(backend: Backend) {
    let store = backend.open().await;
    store.create_user(&user("a", None, &[])).await.unwrap();
    let epoch = store.claim_ownership("a", "node-1").await.unwrap();
    assert!(epoch.is_some());
    assert_eq!(
        store.claim_ownership("nobody", "node-1").await.unwrap(),
        None
    );
    let fence = Fence {
        user_id: "a".into(),
        epoch: epoch.unwrap(),
    };
    assert!(store.holds_ownership(&fence).await.unwrap());
    // The fenced handle of the current claim writes.
    let fenced = store.fenced(fence);
    fenced
        .put_session(&session("s1", "a", T0 + 1_000), None)
        .await
        .unwrap();
    assert_eq!(store.sessions_of("a").await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_claims_move_the_epoch_and_end_with_their_user() {
    let backend = Backend::postgres().await;
    let store = backend.open().await;
    store.create_user(&user("a", None, &[])).await.unwrap();
    let epochs = [
        store.claim_ownership("a", "node-1").await.unwrap(),
        store.claim_ownership("a", "node-2").await.unwrap(),
        store.claim_ownership("a", "node-1").await.unwrap(),
    ];
    assert_eq!(epochs, [Some(1), Some(2), Some(3)]);
    for (epoch, holds) in [(1, false), (2, false), (3, true), (4, false)] {
        let fence = Fence {
            user_id: "a".into(),
            epoch,
        };
        assert_eq!(
            store.holds_ownership(&fence).await.unwrap(),
            holds,
            "epoch {epoch}"
        );
    }
    assert!(store.delete_user("a").await.unwrap());
    assert_eq!(store.claim_ownership("a", "node-1").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_superseded_claim_writes_nothing() {
    let backend = Backend::postgres().await;
    let store = backend.open().await;
    let a = user("a", Some("a@example.com"), &[("google", "g")]);
    store.create_user(&a).await.unwrap();
    let s1 = session("s1", "a", T0 + 1_000);
    let f1 = family("s1", "a", T0 + 1_000, T0 + 5_000);
    store.put_session(&s1, Some(&f1)).await.unwrap();
    store
        .put_provider_tokens(&provider_tokens("a", "google", "g", 1))
        .await
        .unwrap();
    let old = store.claim_ownership("a", "node-1").await.unwrap().unwrap();
    let stale = store.fenced(Fence {
        user_id: "a".into(),
        epoch: old,
    });
    // Another node claims the user: every kind of write through the old
    // claim fails with Fenced.
    let new = store.claim_ownership("a", "node-2").await.unwrap().unwrap();
    assert!(new > old);
    let before = store.export().await.unwrap();

    fn fenced<T: std::fmt::Debug>(what: &str, r: Result<T, StorageError>) {
        assert!(matches!(r, Err(StorageError::Fenced)), "{what}: {r:?}");
    }
    fenced(
        "put_session",
        stale
            .put_session(&session("s2", "a", T0 + 1_000), None)
            .await,
    );
    fenced("put_family", stale.put_family(&rotated(&f1, hash(1))).await);
    fenced(
        "rotate_family",
        stale
            .rotate_family(&f1, &rotated(&f1, hash(2)), &f1.current)
            .await,
    );
    fenced(
        "remove_sessions",
        stale
            .remove_sessions("a", &["s1".to_string()], FamilyRevocation::Revoked)
            .await,
    );
    let mut renamed = a.clone();
    renamed.name = Some("Stale".into());
    fenced("put_user", stale.put_user(&renamed).await);
    let mut linked = a.clone();
    linked.accounts.push(account("twitch", "t"));
    fenced(
        "link_account",
        stale.link_account(&linked, &account("twitch", "t")).await,
    );
    fenced(
        "unlink_account",
        stale.unlink_account(&a, "google", "g").await,
    );
    fenced(
        "put_provider_tokens",
        stale
            .put_provider_tokens(&provider_tokens("a", "google", "g", 9))
            .await,
    );
    fenced("delete_user", stale.delete_user("a").await);
    assert_eq!(store.export().await.unwrap(), before, "nothing changed");

    // The current claim writes.
    let current = store.fenced(Fence {
        user_id: "a".into(),
        epoch: new,
    });
    assert_eq!(
        current
            .rotate_family(&f1, &rotated(&f1, hash(3)), &f1.current)
            .await
            .unwrap(),
        RotationOutcome::Committed
    );
}
