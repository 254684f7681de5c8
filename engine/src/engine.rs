//! [`Engine`]: the handle every frontend and the CLI talk to.
//!
//! It routes per-user requests to the user's actor (retrying transparently when
//! an actor was passivated under a message), and does the few things that are not
//! per-user: creating users and claiming unique emails and provider accounts,
//! password checks, token signing, and background maintenance.

use std::sync::Arc;
use std::time::Duration;

use ractor::rpc::CallResult;
use tachigo_storage::{LinkedAccount, StorageError, Store, UserRecord};

use crate::access_token::AccessClaims;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::keyring::{KeyRing, Rotation};
use crate::messages::*;
use crate::model::{AuditEntry, RefreshFamily, Session, UnixMillis, User};
use crate::opaque_token;
use crate::owner_cache::OwnerCache;
use crate::password::{self, Passwords};
use crate::router::Router;
use crate::session_views::{Presented, SessionViews};
use crate::user_actor::audit_event;
use crate::EngineError;

/// The engine's settings in the units it works in.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// `iss` of every token this engine signs.
    pub issuer: String,
    pub access_ttl_ms: i64,
    pub refresh_idle_ttl_ms: i64,
    pub session_absolute_ttl_ms: i64,
    pub refresh_grace_ms: i64,
    pub web_session_ttl_ms: i64,
    pub web_update_age_ms: i64,
    pub idle_passivation: Duration,
    pub max_live_actors: usize,
    /// How many argon2 computations may run at once.
    pub password_concurrency: usize,
    /// How many may wait for a slot; past it, [`EngineError::Overloaded`].
    pub password_queue: usize,
    /// `[email]`: templates, links, limits and the delivery route.
    pub mail: crate::mail::MailOptions,
    /// Authorization codes and device grants stored at once, in total.
    pub max_pending_oauth2_grants: usize,
    /// The OAuth 2.1 server's clients (session lists name them).
    pub clients: crate::clients::ClientRegistry,
    /// `tokens.jwks_cache_lifetime`: the JWKS `max-age`, and how long a
    /// rotated-in key is published before it signs.
    pub jwks_cache_lifetime_ms: i64,
    /// `tokens.signing_key_rotation`: the rotation schedule, when on.
    pub signing_key_rotation_ms: Option<i64>,
    /// Seals provider tokens at rest; `None`: they are not kept. Read from
    /// the key files by [`Engine::open`] when not set here.
    pub token_cipher: Option<crate::token_cipher::TokenCipher>,
    /// `cluster.node_name` when this node is one of several: every actor
    /// then claims its user and fences its writes by that claim.
    pub cluster_node: Option<String>,
    /// `cluster.stale_read_bound`: how long a fenced actor answers reads
    /// from memory before it finds its claim current again.
    pub stale_read_bound_ms: i64,
}

impl EngineOptions {
    pub fn from_config(config: &Config) -> EngineOptions {
        let t = &config.tokens;
        EngineOptions {
            issuer: config.server.public_url.trim_end_matches('/').to_string(),
            access_ttl_ms: t.access_ttl.as_millis_i64(),
            refresh_idle_ttl_ms: t.refresh_idle_ttl.as_millis_i64(),
            session_absolute_ttl_ms: t.session_absolute_ttl.as_millis_i64(),
            refresh_grace_ms: t.refresh_grace.as_millis_i64(),
            web_session_ttl_ms: config.oauth.session_ttl.as_millis_i64(),
            web_update_age_ms: config.oauth.update_age.as_millis_i64(),
            idle_passivation: config.engine.idle_passivation.0,
            max_live_actors: config.engine.max_live_actors,
            password_concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
            password_queue: config.limits.password_queue,
            mail: crate::mail::MailOptions::from_config(config),
            max_pending_oauth2_grants: config.limits.max_pending_oauth2_grants,
            // The loader refuses bad clients; a configuration built in code
            // with one gets none (and the server's start refuses it).
            clients: crate::clients::ClientRegistry::from_config(config).unwrap_or_default(),
            jwks_cache_lifetime_ms: t.jwks_cache_lifetime.as_millis_i64(),
            signing_key_rotation_ms: t.signing_key_rotation.map(|d| d.as_millis_i64()),
            token_cipher: None,
            cluster_node: config.cluster.as_ref().map(|c| c.node_name.clone()),
            stale_read_bound_ms: config
                .cluster
                .as_ref()
                .map_or(i64::MAX, |c| c.stale_read_bound.as_millis_i64()),
        }
    }
}

/// What the actors share.
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) owners: OwnerCache,
    /// Live sessions readable without a message to their actor.
    pub(crate) views: SessionViews,
    /// Numbers the activations of actors (tags their session views).
    activations: std::sync::atomic::AtomicU64,
    pub(crate) options: EngineOptions,
    pub(crate) router: Router,
    clock: Arc<dyn Clock>,
    stopping: std::sync::atomic::AtomicBool,
    /// Templates, throttle and the delivery task's wake-up.
    pub(crate) mail: Arc<crate::mail::Mail>,
    /// One provider refresh at a time per linked account.
    pub(crate) provider_refreshes: crate::provider_tokens::RefreshLocks,
    /// Set by [`Engine::start_cluster`]: routes requests to the nodes that own their users.
    pub(crate) cluster: std::sync::OnceLock<Arc<crate::cluster::Cluster>>,
}

impl Shared {
    pub(crate) fn now(&self) -> UnixMillis {
        self.clock.now_ms()
    }

    pub(crate) fn next_activation(&self) -> u64 {
        self.activations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Answers a request for `user_id`'s actor: on the node that owns the
    /// user (forwarded there, in a cluster) or here, reactivating and
    /// redelivering when the actor was passivated (or fenced) with the
    /// request queued. `hops`: how often the request was forwarded already.
    pub(crate) async fn ask(
        self: &Arc<Self>,
        user_id: &str,
        request: UserRequest,
        hops: u8,
    ) -> Result<UserReply, EngineError> {
        for attempt in 0..16 {
            if let Some(cluster) = self.cluster.get() {
                if let Some(owner) = cluster.route(user_id, hops) {
                    return cluster.forward(&owner, user_id, request, hops).await;
                }
            }
            let actor = self.router.actor_for(user_id, self).await?;
            let attempt_request = request.clone();
            match actor
                .call(
                    |reply| UserMsg::Ask {
                        request: attempt_request,
                        reply,
                    },
                    None,
                )
                .await
            {
                Ok(CallResult::Success(reply)) => return Ok(reply),
                _ => {
                    self.router.forget(user_id, &actor);
                    if attempt > 2 {
                        tokio::time::sleep(Duration::from_millis(1 << attempt.min(6))).await;
                    }
                }
            }
        }
        Err(EngineError::Unavailable)
    }

    /// Appends an audit event; a failure is logged, never fails the request it records.
    pub(crate) async fn audit(
        &self,
        kind: &str,
        user_id: Option<&str>,
        session_id: Option<&str>,
        detail: &str,
    ) {
        let event = audit_event(kind, user_id, session_id, detail, self.now());
        if let Err(e) = self.store.audit(&event).await {
            tracing::error!(error = %e, kind, "could not write an audit event");
        }
    }
}

/// A provider identity as asserted by a verified provider response.
#[derive(Debug, Clone, Default)]
pub struct ProviderIdentity {
    pub provider: String,
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub image: Option<String>,
}

/// A new user to create.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub email: Option<String>,
    pub name: Option<String>,
    pub password: Option<String>,
    pub roles: Vec<String>,
}

/// The handle to the engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    pub(crate) shared: Arc<Shared>,
    keys: KeyRing,
    pub(crate) passwords: Passwords,
}

/// Lower-cases and checks an email address.
pub fn normalize_email(email: &str) -> Result<String, EngineError> {
    let email = email.trim().to_ascii_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && email.matches('@').count() == 1
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(email)
    } else {
        Err(EngineError::InvalidEmail)
    }
}

/// Checks a role name: 1–32 of `[a-z0-9_-]`.
pub fn valid_role(role: &str) -> bool {
    (1..=32).contains(&role.len())
        && role
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

impl Engine {
    /// Opens the configured store (`[storage]`) and starts the engine over it
    /// with the system clock and the configuration's settings.
    pub async fn open(config: &Config) -> Result<Engine, EngineError> {
        Engine::open_with(config, EngineOptions::from_config(config)).await
    }

    /// As [`Engine::open`], with settings adjusted by the caller (benchmarks).
    pub async fn open_with(config: &Config, options: EngineOptions) -> Result<Engine, EngineError> {
        Engine::open_with_clock(config, options, Arc::new(SystemClock)).await
    }

    /// As [`Engine::open_with`], on a given clock (tests move a manual clock
    /// across grace windows and expiries).
    pub async fn open_with_clock(
        config: &Config,
        mut options: EngineOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Engine, EngineError> {
        if options.token_cipher.is_none() {
            options.token_cipher = crate::token_cipher::TokenCipher::from_config(&config.oauth)
                .map_err(|e| EngineError::Config(e.to_string()))?;
        }
        let store = tachigo_storage::open(&crate::store_config::store_config(config)?).await?;
        tracing::info!(backend = store.backend(), "storage opened");
        Engine::start_with_clock(store, options, clock).await
    }

    /// Starts the engine over an open store with a given clock.
    pub(crate) async fn start_with_clock(
        store: Arc<dyn Store>,
        options: EngineOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Engine, EngineError> {
        let rotation = crate::key_rotation::RotationTiming::from_options(&options)
            .map_err(EngineError::Config)?;
        let keys =
            KeyRing::load_or_create(store.as_ref(), clock.clone(), rotation.key_timing()).await?;
        let passwords = Passwords::new(options.password_concurrency, options.password_queue);
        let mail = Arc::new(crate::mail::Mail::new(options.mail.clone())?);
        let shared = Arc::new(Shared {
            mail,
            router: Router::new(options.idle_passivation, options.max_live_actors),
            owners: OwnerCache::new(options.max_live_actors.clamp(1024, 100_000)),
            views: SessionViews::new(),
            activations: std::sync::atomic::AtomicU64::new(1),
            store,
            options,
            clock,
            stopping: std::sync::atomic::AtomicBool::new(false),
            provider_refreshes: Default::default(),
            cluster: std::sync::OnceLock::new(),
        });
        tokio::spawn(maintenance(
            Arc::downgrade(&shared),
            shared.router.wake_maintenance.clone(),
            shared.router.sweep_interval(),
        ));
        tokio::spawn(crate::key_rotation::run(
            Arc::downgrade(&shared),
            keys.clone(),
            rotation,
        ));
        Ok(Engine {
            shared,
            keys,
            passwords,
        })
    }

    pub fn now(&self) -> UnixMillis {
        self.shared.now()
    }

    pub fn options(&self) -> &EngineOptions {
        &self.shared.options
    }

    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// The store, for the engine's own modules.
    pub(crate) fn store_handle(&self) -> Arc<dyn Store> {
        self.shared.store.clone()
    }

    /// Starts a signing-key rotation: a new key is published at once and
    /// signs from its activation time (1.5 × the JWKS cache lifetime later:
    /// the lifetime and two key reloads); the current key is retired then and stays
    /// published until every token it signed has expired. While a rotated-in
    /// key is still pending nothing changes ([`Rotation::AlreadyPending`]).
    /// `by` names who asked, for the audit log.
    pub async fn rotate_signing_key(&self, by: &str) -> Result<Rotation, EngineError> {
        crate::key_rotation::rotate(&self.shared, &self.keys, by).await
    }

    /// Which store backs the engine: `"sled"` or `"postgres"`.
    pub fn storage_backend(&self) -> &'static str {
        self.shared.store.backend()
    }

    /// Resolves once storage has let go of everything it held (sled's
    /// directory lock, PostgreSQL connections) or `limit` passes; true if released.
    /// Meaningful after [`Engine::shutdown`] and once every engine handle is dropped.
    pub fn storage_release(&self) -> impl std::future::Future<Output = bool> + Send + 'static {
        let watch = self.shared.store.release_watch();
        async move { watch.wait(RELEASE_LIMIT).await }
    }

    /// Whether the engine takes requests: not stopping, and storage taking
    /// durable writes. O(1), no disk access: cheap enough for every probe.
    pub fn is_ready(&self) -> bool {
        !self
            .shared
            .stopping
            .load(std::sync::atomic::Ordering::Acquire)
            && self.shared.store.is_healthy()
            && self.shared.cluster.get().is_none_or(|c| c.is_joined())
    }

    /// Starts delivering queued mail in the background (the server does; operator
    /// commands do not). Refused when the SMTP settings cannot make a transport.
    pub fn start_mail_delivery(&self) -> Result<(), EngineError> {
        let mail = &self.shared.mail;
        let transport = crate::mail::Transport::new(
            mail.options.smtp.as_ref(),
            mail.options.outbox_dir.clone(),
        )
        .map_err(EngineError::Config)?;
        if mail.options.smtp.is_none() {
            tracing::warn!(
                outbox = %mail.options.outbox_dir.display(),
                "email.smtp_url is not set: mails are written to the log and to the outbox directory, not sent"
            );
        }
        tokio::spawn(crate::mail::run_delivery(
            Arc::downgrade(&self.shared),
            mail.wake.clone(),
            mail.options.poll_interval,
            transport,
        ));
        Ok(())
    }

    /// Actors live or activating right now.
    pub fn live_actors(&self) -> usize {
        self.shared.router.live_count()
    }

    /// Sessions readable without a message to their actor: those of live
    /// actors, so bounded like them.
    pub fn published_session_views(&self) -> usize {
        self.shared.views.len()
    }

    /// Sends a request to the user's actor (see [`Shared::ask`]) and takes
    /// the reply of the type the request answers with.
    pub(crate) async fn call<R: FromReply>(
        &self,
        user_id: &str,
        request: UserRequest,
    ) -> Result<R, EngineError> {
        let reply = self.shared.ask(user_id, request, 0).await?;
        R::from_reply(reply).ok_or_else(|| {
            tracing::error!(user_id, "an actor answered with the wrong reply type");
            EngineError::Unavailable
        })
    }

    /// Joins the cluster `[cluster]` describes: starts this node's
    /// ractor_cluster server and dials the seeds. Until a peer accepts this
    /// node (or the join timeout passes with no seed answering),
    /// [`Engine::is_ready`] is false.
    pub async fn start_cluster(
        &self,
        settings: crate::cluster::ClusterSettings,
    ) -> Result<(), EngineError> {
        if self.shared.options.cluster_node.as_deref() != Some(settings.node_name.as_str()) {
            return Err(EngineError::Config(
                "the engine was opened without this [cluster] section".into(),
            ));
        }
        let cluster = crate::cluster::Cluster::start(&self.shared, settings).await?;
        self.shared
            .cluster
            .set(cluster)
            .map_err(|_| EngineError::Config("the cluster is already started".into()))
    }

    /// A reason this node must stop (a peer refused its settings before it
    /// joined), once there is one; `None` outside a cluster.
    pub fn cluster_failure(&self) -> Option<tokio::sync::watch::Receiver<Option<String>>> {
        self.shared.cluster.get().map(|c| c.fatal())
    }

    /// Graceful departure from the cluster (shutdown, first step): the
    /// other members take this node's users, and requests that still reach
    /// it are forwarded to them.
    pub async fn leave_cluster(&self) {
        if let Some(cluster) = self.shared.cluster.get() {
            cluster.leave().await;
        }
    }

    // ----- users -----

    /// Creates a user with a unique email (if any) and an optional password.
    pub async fn create_user(&self, new: NewUser) -> Result<User, EngineError> {
        let email = new.email.as_deref().map(normalize_email).transpose()?;
        if !new.roles.iter().all(|r| valid_role(r)) {
            return Err(EngineError::InvalidRole);
        }
        let password_hash = match &new.password {
            Some(p) => {
                password::check_policy(p, email.as_deref())?;
                // Fail fast on a taken email before spending a hash on it.
                if let Some(e) = &email {
                    if self.shared.store.user_id_by_email(e).await?.is_some() {
                        return Err(EngineError::EmailTaken);
                    }
                }
                Some(self.passwords.hash(p).await?)
            }
            None => None,
        };
        let now = self.now();
        let user = UserRecord {
            id: opaque_token::new_id(),
            email,
            email_verified: false,
            name: new
                .name
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty()),
            image: None,
            password_hash,
            roles: new.roles,
            accounts: Vec::new(),
            created_at: now,
            updated_at: now,
        };
        self.shared.store.create_user(&user).await?;
        self.shared
            .audit("user_created", Some(&user.id), None, "")
            .await;
        Ok(User::from(&user))
    }

    pub async fn user(&self, user_id: &str) -> Result<User, EngineError> {
        let record = self.call(user_id, UserRequest::GetUser).await?;
        Ok(User::from(&record))
    }

    pub async fn user_id_by_email(&self, email: &str) -> Result<Option<String>, EngineError> {
        let email = normalize_email(email)?;
        Ok(self.shared.store.user_id_by_email(&email).await?)
    }

    /// Checks an email and password; unknown emails cost the same as wrong passwords.
    pub async fn verify_password(&self, email: &str, password: &str) -> Result<User, EngineError> {
        let user_id = match normalize_email(email) {
            Ok(e) => self.shared.store.user_id_by_email(&e).await?,
            Err(_) => None,
        };
        let user = match user_id {
            Some(id) => Some(self.call::<UserRecord>(&id, UserRequest::GetUser).await?),
            None => None,
        };
        let phc = user.as_ref().and_then(|u| u.password_hash.as_deref());
        let too_long = password.len() > password::MAX_PASSWORD_BYTES;
        let matched = self
            .passwords
            .verify(if too_long { "" } else { password }, phc)
            .await?;
        let user = match user {
            Some(user) if matched && !too_long => user,
            _ => {
                metrics::counter!("tachigo_login_failures_total").increment(1);
                return Err(EngineError::InvalidCredentials);
            }
        };
        // A hash imported from another system (or made with older parameters)
        // is replaced now that the password is known. The login stands whatever
        // happens to the rehash: the next login tries again.
        let stale = user
            .password_hash
            .as_deref()
            .filter(|h| crate::password_formats::needs_rehash(h));
        if let Some(old) = stale {
            let scheme = crate::password_formats::scheme(old).unwrap_or("unknown");
            let rehashed = async {
                let new_hash = self.passwords.hash(password).await?;
                // Not over a password someone changed since it was read: the
                // actor replaces the hash only while it is still `old`.
                let replaced = self
                    .call::<Result<User, EngineError>>(
                        &user.id,
                        UserRequest::Update {
                            change: UserChange::Rehash {
                                old: old.to_string(),
                                password_hash: new_hash.clone(),
                            },
                        },
                    )
                    .await?;
                match replaced {
                    Ok(_) => Ok::<_, EngineError>(true),
                    Err(EngineError::InvalidToken) => Ok(false),
                    Err(e) => Err(e),
                }
            }
            .await;
            match rehashed {
                Ok(true) => {
                    let detail = format!("from {scheme}");
                    self.shared
                        .audit("password_rehashed", Some(&user.id), None, &detail)
                        .await;
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(
                    error = %e,
                    user_id = %user.id,
                    scheme,
                    "could not rehash a password at login; the next login tries again"
                ),
            }
        }
        Ok(User::from(&user))
    }

    /// Hashes and stores a new password for a user.
    pub async fn set_password(&self, user_id: &str, password: &str) -> Result<User, EngineError> {
        let user = self.user(user_id).await?;
        password::check_policy(password, user.email.as_deref())?;
        let hash = self.passwords.hash(password).await?;
        self.call(
            user_id,
            UserRequest::SetPassword {
                password_hash: hash.clone(),
            },
        )
        .await?
    }

    /// The id of the user linked to the provider account, creating that user on
    /// first sight (as [`Engine::find_or_create_by_account`], without linking
    /// by email); `true` when created. A returning account costs one index
    /// read and no message to the user's actor.
    pub async fn user_id_for_account(
        &self,
        identity: &ProviderIdentity,
    ) -> Result<(String, bool), EngineError> {
        let store = &self.shared.store;
        if let Some(id) = store
            .user_id_by_account(&identity.provider, &identity.subject)
            .await?
        {
            return Ok((id, false));
        }
        let (user, created) = self.find_or_create_by_account(identity, false).await?;
        Ok((user.id, created))
    }

    /// Finds the user linked to a provider identity, or links it to the user with
    /// the same verified email (only when `email_link_allowed`: a trusted provider
    /// asserting a verified email), or creates a new user. Returns `(user, created)`.
    pub async fn find_or_create_by_account(
        &self,
        identity: &ProviderIdentity,
        email_link_allowed: bool,
    ) -> Result<(User, bool), EngineError> {
        let store = &self.shared.store;
        let email = identity
            .email
            .as_deref()
            .and_then(|e| normalize_email(e).ok());
        let verified_email = email.clone().filter(|_| identity.email_verified);
        for _ in 0..4 {
            if let Some(id) = store
                .user_id_by_account(&identity.provider, &identity.subject)
                .await?
            {
                return Ok((self.user(&id).await?, false));
            }
            if let Some(email) = &verified_email {
                if let Some(existing_id) = store.user_id_by_email(email).await? {
                    let existing = self.user(&existing_id).await?;
                    if !email_link_allowed {
                        return Err(EngineError::AccountNotLinked);
                    }
                    if !existing.email_verified {
                        // Whoever registered the address never proved it; its
                        // verified owner takes it over.
                        self.take_over_email(&existing_id, email, &identity.provider)
                            .await?;
                    }
                    let user = self.link_account(&existing_id, identity).await?;
                    return Ok((user, false));
                }
            }
            let now = self.now();
            let user = UserRecord {
                id: opaque_token::new_id(),
                email: verified_email.clone(),
                email_verified: verified_email.is_some(),
                name: identity.name.clone(),
                image: identity.image.clone(),
                password_hash: None,
                roles: Vec::new(),
                accounts: vec![linked_account(identity, email.clone(), now)],
                created_at: now,
                updated_at: now,
            };
            match store.create_user(&user).await {
                Ok(()) => {
                    let detail = format!("via provider {}", identity.provider);
                    self.shared
                        .audit("user_created", Some(&user.id), None, &detail)
                        .await;
                    return Ok((User::from(&user), true));
                }
                // Someone else claimed the account or email first: look again.
                Err(StorageError::AccountTaken | StorageError::EmailTaken) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(EngineError::Unavailable)
    }

    /// A verified provider sign-in claims an address an unverified user holds:
    /// that user's password (set by whoever registered it) is removed, every
    /// session ends, and the address counts as verified. Audited.
    async fn take_over_email(
        &self,
        user_id: &str,
        email: &str,
        provider: &str,
    ) -> Result<(), EngineError> {
        self.call::<Result<User, EngineError>>(
            user_id,
            UserRequest::Update {
                change: UserChange::TakeOverEmail {
                    email: email.to_string(),
                },
            },
        )
        .await??;
        let ended = self.revoke_sessions(user_id, RevokeScope::All).await?;
        self.shared
            .audit(
                "email_taken_over",
                Some(user_id),
                None,
                &format!(
                    "a verified sign-in via {provider} claimed the unverified address; password and accounts linked before removed, {} sessions ended",
                    ended.len()
                ),
            )
            .await;
        Ok(())
    }

    /// Links a provider identity to an existing user.
    pub async fn link_account(
        &self,
        user_id: &str,
        identity: &ProviderIdentity,
    ) -> Result<User, EngineError> {
        let account = linked_account(identity, identity.email.clone(), self.now());
        self.call(
            user_id,
            UserRequest::LinkAccount {
                account: account.clone(),
            },
        )
        .await?
    }

    /// Unlinks a provider (optionally one subject of it); refuses the last way to sign in.
    pub async fn unlink_account(
        &self,
        user_id: &str,
        provider: &str,
        subject: Option<&str>,
    ) -> Result<User, EngineError> {
        self.call(
            user_id,
            UserRequest::UnlinkAccount {
                provider: provider.to_string(),
                subject: subject.map(str::to_string),
            },
        )
        .await?
    }

    pub async fn set_roles(&self, user_id: &str, roles: Vec<String>) -> Result<User, EngineError> {
        if !roles.iter().all(|r| valid_role(r)) {
            return Err(EngineError::InvalidRole);
        }
        let mut roles = roles;
        roles.sort();
        roles.dedup();
        let user = self
            .call::<Result<User, EngineError>>(
                user_id,
                UserRequest::SetRoles {
                    roles: roles.clone(),
                },
            )
            .await??;
        self.shared
            .audit("roles_set", Some(user_id), None, &user.roles.join(","))
            .await;
        Ok(user)
    }

    // ----- sessions -----

    pub async fn create_session(
        &self,
        user_id: &str,
        new: NewSession,
    ) -> Result<CreatedSession, EngineError> {
        let created = self
            .call::<Result<CreatedSession, EngineError>>(
                user_id,
                UserRequest::CreateSession {
                    new: new.clone(),
                    app_idle_ttl_ms: None,
                },
            )
            .await??;
        self.shared
            .owners
            .insert(&created.session.id, &created.session.user_id);
        Ok(created)
    }

    /// The user an opaque token's session belongs to, without a scan.
    pub(crate) async fn owner_of(&self, session_id: &str) -> Result<Option<String>, EngineError> {
        if let Some(owner) = self.shared.owners.get(session_id) {
            return Ok(Some(owner));
        }
        let owner = self.shared.store.session_owner(session_id).await?;
        if let Some(owner) = &owner {
            self.shared.owners.insert(session_id, owner);
        }
        Ok(owner)
    }

    /// Presents a dashboard refresh token: rotates it, answers a grace replay, or
    /// detects reuse and revokes the family.
    pub async fn rotate_refresh_token(&self, token: &str) -> Result<Rotated, EngineError> {
        let parsed = opaque_token::parse(token).ok_or(EngineError::InvalidRefreshToken)?;
        let user_id = self
            .owner_of(parsed.session_id)
            .await?
            .ok_or(EngineError::InvalidRefreshToken)?;
        self.call(
            &user_id,
            UserRequest::Rotate {
                session_id: parsed.session_id.to_string(),
                presented: parsed.hash,
                holder: RefreshHolder::Dashboard,
            },
        )
        .await?
    }

    /// Ends the dashboard session of a refresh token. `Ok(false)`: not a known token.
    pub async fn logout_refresh_token(&self, token: &str) -> Result<bool, EngineError> {
        let Some(parsed) = opaque_token::parse(token) else {
            return Ok(false);
        };
        let Some(user_id) = self.owner_of(parsed.session_id).await? else {
            return Ok(false);
        };
        let ended = self
            .call(
                &user_id,
                UserRequest::Logout {
                    session_id: parsed.session_id.to_string(),
                    presented: parsed.hash,
                    holder: RefreshHolder::Dashboard,
                },
            )
            .await?;
        match ended {
            // Another surface's token: not one of the dashboard's, nothing ends.
            Err(EngineError::InvalidToken) => Ok(false),
            other => other,
        }
    }

    /// Reads a web session by its cookie token (sliding its expiry when due).
    pub async fn session_by_token(&self, token: &str) -> Result<SessionRead, EngineError> {
        let parsed = opaque_token::parse(token).ok_or(EngineError::SessionInvalid)?;
        if let Some((session, user)) = self.shared.views.read(
            parsed.session_id,
            Presented::Cookie(&parsed.hash),
            self.now(),
        ) {
            return Ok(SessionRead {
                session,
                user,
                renewed: false,
            });
        }
        let user_id = self
            .owner_of(parsed.session_id)
            .await?
            .ok_or(EngineError::SessionInvalid)?;
        let read = self
            .call(
                &user_id,
                UserRequest::ReadSession {
                    session_id: parsed.session_id.to_string(),
                    token: Some(parsed.hash),
                },
            )
            .await;
        match read {
            // The owner was deleted since the owner index last saw it.
            Err(EngineError::UserNotFound) => Err(EngineError::SessionInvalid),
            other => other?,
        }
    }

    /// As [`Engine::session_by_token`], answered with `render`'s bytes for the
    /// session and its user. A read served from the session's published view
    /// renders once per state of the session (the view keeps the bytes), so an
    /// unchanged session costs no serialisation; `renewed` is the session when
    /// the read slid its expiry (its cookie must be set again).
    pub async fn session_by_token_rendered<F>(
        &self,
        token: &str,
        render: F,
    ) -> Result<Rendered, EngineError>
    where
        F: Fn(&Session, &User) -> bytes::Bytes + 'static,
    {
        let parsed = opaque_token::parse(token).ok_or(EngineError::SessionInvalid)?;
        if let Some(body) = self.rendered_view(&parsed, &render) {
            return Ok(Rendered {
                body,
                renewed: None,
            });
        }
        let read = self.session_by_token(token).await?;
        Ok(Rendered {
            body: render(&read.session, &read.user),
            renewed: read.renewed.then_some(read.session),
        })
    }

    /// What [`Engine::session_by_token_rendered`] answers when the session's
    /// published view answers alone (no renewal due), without waiting: `None`
    /// when the token is malformed or the read needs the actor (no view, a
    /// revoked or expired session, a sliding expiry due), which the async
    /// read then settles.
    pub fn published_session_rendered<F>(&self, token: &str, render: F) -> Option<bytes::Bytes>
    where
        F: Fn(&Session, &User) -> bytes::Bytes + 'static,
    {
        self.rendered_view(&opaque_token::parse(token)?, &render)
    }

    /// The rendering of a cookie's session from its published view, if the
    /// view answers alone.
    fn rendered_view<F>(
        &self,
        parsed: &opaque_token::ParsedToken<'_>,
        render: &F,
    ) -> Option<bytes::Bytes>
    where
        F: Fn(&Session, &User) -> bytes::Bytes + 'static,
    {
        self.shared.views.read_rendered(
            parsed.session_id,
            Presented::Cookie(&parsed.hash),
            self.now(),
            render,
        )
    }

    /// Checks that a session named by a verified access token is still live.
    pub async fn live_session(
        &self,
        user_id: &str,
        session_id: &str,
    ) -> Result<SessionRead, EngineError> {
        if let Some((session, user)) =
            self.shared
                .views
                .read(session_id, Presented::User(user_id), self.now())
        {
            return Ok(SessionRead {
                session,
                user,
                renewed: false,
            });
        }
        // The user may be gone (or never was, for a token minted elsewhere):
        // whether the actor could not be activated or found no such session,
        // the session is not live.
        self.call(
            user_id,
            UserRequest::ReadSession {
                session_id: session_id.to_string(),
                token: None,
            },
        )
        .await
        .and_then(|read| read)
        .map_err(|e| match e {
            EngineError::UserNotFound => EngineError::SessionInvalid,
            other => other,
        })
    }

    /// The user's live sessions on every surface, newest first.
    pub async fn list_sessions(&self, user_id: &str) -> Result<Vec<SessionInfo>, EngineError> {
        self.call(user_id, UserRequest::ListSessions).await
    }

    /// Revokes sessions of a user; returns the ids that were ended.
    pub async fn revoke_sessions(
        &self,
        user_id: &str,
        scope: RevokeScope,
    ) -> Result<Vec<String>, EngineError> {
        let ended = self
            .call::<Result<Vec<String>, EngineError>>(
                user_id,
                UserRequest::Revoke {
                    scope: scope.clone(),
                },
            )
            .await??;
        if matches!(scope, RevokeScope::All) {
            self.shared
                .audit(
                    "all_sessions_revoked",
                    Some(user_id),
                    None,
                    &format!("{} sessions", ended.len()),
                )
                .await;
        }
        Ok(ended)
    }

    // ----- tokens -----

    /// Signs an access token for a session (or, with `session_id = None`, a guest).
    pub fn mint_access_token(
        &self,
        subject: &str,
        session_id: Option<&str>,
        audience: &str,
        roles: &[String],
        extra: serde_json::Map<String, serde_json::Value>,
    ) -> (String, AccessClaims) {
        self.mint(subject, session_id, audience, roles, extra, i64::MAX)
    }

    /// Signs an access token for `session` that never outlives it: its `exp` is
    /// the sooner of the usual lifetime and the session's own expiry.
    pub fn mint_session_access_token(
        &self,
        subject: &str,
        session: &Session,
        audience: &str,
        roles: &[String],
        extra: serde_json::Map<String, serde_json::Value>,
    ) -> (String, AccessClaims) {
        let session_end_s = session.expires_at / 1000;
        self.mint(
            subject,
            Some(&session.id),
            audience,
            roles,
            extra,
            session_end_s,
        )
    }

    /// As [`Engine::mint_session_access_token`], with a lifetime of its own
    /// (an OAuth 2.1 client's `access_ttl`).
    pub fn mint_session_access_token_with_ttl(
        &self,
        subject: &str,
        session: &Session,
        audience: &str,
        roles: &[String],
        extra: serde_json::Map<String, serde_json::Value>,
        ttl_ms: i64,
    ) -> (String, AccessClaims) {
        self.mint_for(
            subject,
            Some(&session.id),
            audience,
            roles,
            extra,
            session.expires_at / 1000,
            ttl_ms,
        )
    }

    fn mint(
        &self,
        subject: &str,
        session_id: Option<&str>,
        audience: &str,
        roles: &[String],
        extra: serde_json::Map<String, serde_json::Value>,
        not_after_s: i64,
    ) -> (String, AccessClaims) {
        let ttl_ms = self.shared.options.access_ttl_ms;
        self.mint_for(
            subject,
            session_id,
            audience,
            roles,
            extra,
            not_after_s,
            ttl_ms,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn mint_for(
        &self,
        subject: &str,
        session_id: Option<&str>,
        audience: &str,
        roles: &[String],
        extra: serde_json::Map<String, serde_json::Value>,
        not_after_s: i64,
        ttl_ms: i64,
    ) -> (String, AccessClaims) {
        let now_s = self.now() / 1000;
        let claims = AccessClaims {
            iss: self.shared.options.issuer.clone(),
            sub: subject.to_string(),
            aud: audience.to_string(),
            iat: now_s,
            exp: (now_s + ttl_ms / 1000).min(not_after_s),
            jti: opaque_token::new_id(),
            sid: session_id.map(str::to_string),
            roles: roles.to_vec(),
            extra,
        };
        (self.keys.sign(&claims), claims)
    }

    /// Verifies an access token's signature, audience and expiry (not its session).
    pub fn verify_access_token(
        &self,
        token: &str,
        audience: &str,
    ) -> Result<AccessClaims, EngineError> {
        let claims: AccessClaims = self.keys.verify(token, audience, self.now() / 1000)?;
        if claims.iss != self.shared.options.issuer {
            return Err(EngineError::InvalidToken);
        }
        Ok(claims)
    }

    // ----- audit and lifecycle -----

    pub async fn audit(
        &self,
        kind: &str,
        user_id: Option<&str>,
        session_id: Option<&str>,
        detail: &str,
    ) {
        self.shared.audit(kind, user_id, session_id, detail).await;
    }

    /// The newest `limit` audit entries, newest first.
    pub async fn recent_audit_events(&self, limit: usize) -> Result<Vec<AuditEntry>, EngineError> {
        let events = self.shared.store.recent_audit_events(limit).await?;
        Ok(events.into_iter().map(AuditEntry::from).collect())
    }

    // ----- what storage holds (operators and tests) -----

    /// Users whose email starts with `email_prefix` (lower-cased), in email
    /// order, at most `limit`, as stored.
    pub async fn find_users_by_email(
        &self,
        email_prefix: &str,
        limit: usize,
    ) -> Result<Vec<User>, EngineError> {
        let prefix = email_prefix.trim().to_ascii_lowercase();
        let users = self
            .shared
            .store
            .find_users_by_email(&prefix, limit)
            .await?;
        Ok(users.iter().map(User::from).collect())
    }

    /// A user as stored (not through the actor), or `None`.
    pub async fn stored_user(&self, user_id: &str) -> Result<Option<User>, EngineError> {
        Ok(self
            .shared
            .store
            .user(user_id)
            .await?
            .as_ref()
            .map(User::from))
    }

    /// The user linked to a provider account, from the index.
    pub async fn user_id_by_account(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<String>, EngineError> {
        Ok(self
            .shared
            .store
            .user_id_by_account(provider, subject)
            .await?)
    }

    /// Every stored session of a user, expired ones included, as stored.
    pub async fn stored_sessions(&self, user_id: &str) -> Result<Vec<Session>, EngineError> {
        let sessions = self.shared.store.sessions_of(user_id).await?;
        Ok(sessions.iter().map(Session::from).collect())
    }

    /// The stored refresh family of a dashboard session (or its tombstone).
    pub async fn stored_refresh_family(
        &self,
        session_id: &str,
    ) -> Result<Option<RefreshFamily>, EngineError> {
        Ok(self
            .shared
            .store
            .family(session_id)
            .await?
            .as_ref()
            .map(RefreshFamily::from))
    }

    /// How many users exist (a scan on sled: for operators and tests).
    pub async fn user_count(&self) -> Result<u64, EngineError> {
        Ok(self.shared.store.user_count().await?)
    }

    /// Provider flows started and not yet finished (O(1)).
    pub fn pending_authorization_count(&self) -> usize {
        self.shared.store.oauth_state_count()
    }

    /// Stops every actor and flushes storage.
    pub async fn shutdown(&self) -> Result<(), EngineError> {
        if let Some(cluster) = self.shared.cluster.get() {
            cluster.drain().await;
        }
        self.shared
            .stopping
            .store(true, std::sync::atomic::Ordering::Release);
        self.shared.router.wake_maintenance.notify_one();
        self.shared.mail.wake.notify_one();
        self.shared.router.stop_all();
        for _ in 0..200 {
            if self.shared.router.live_count() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.shared.store.flush().await?;
        if let Some(cluster) = self.shared.cluster.get() {
            cluster.stop();
        }
        Ok(())
    }
}

fn linked_account(
    identity: &ProviderIdentity,
    email: Option<String>,
    now: UnixMillis,
) -> LinkedAccount {
    LinkedAccount {
        provider: identity.provider.clone(),
        subject: identity.subject.clone(),
        email,
        linked_at: now,
    }
}

/// How often maintenance looks at a failing store again.
const HEALTH_RECHECK: Duration = Duration::from_secs(1);

/// How long shutdown waits for storage to let go of what it holds.
const RELEASE_LIMIT: Duration = Duration::from_secs(10);

/// Passivates idle actors and sweeps expired records until the engine stops.
/// It holds the engine only while working, never across its sleep, so a stopped
/// engine (and its database) is released at once.
async fn maintenance(
    shared: std::sync::Weak<Shared>,
    wake: Arc<tokio::sync::Notify>,
    interval: Duration,
) {
    let mut last_sweep = tokio::time::Instant::now();
    let mut last_passivation = tokio::time::Instant::now();
    // Wakes at least every second, so a failing store is tried again (and
    // readiness follows it) within a second; passivation keeps its own pace.
    let tick = interval.min(HEALTH_RECHECK);
    loop {
        let woken = tokio::select! {
            _ = tokio::time::sleep(tick) => false,
            _ = wake.notified() => true,
        };
        let Some(s) = shared.upgrade() else { return };
        if s.stopping.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        if woken || last_passivation.elapsed() >= interval {
            last_passivation = tokio::time::Instant::now();
            s.router.passivate_idle_and_excess();
        }
        if !s.store.is_healthy() {
            // Readiness must come back once storage does, even with no write
            // arriving (a load balancer sends none to an unready node).
            if s.store.recheck_health().await {
                tracing::info!("storage works again: ready");
            }
        }
        if last_sweep.elapsed() >= Duration::from_secs(60) {
            last_sweep = tokio::time::Instant::now();
            let now = s.now();
            match s.store.sweep_oauth_states(now).await {
                Ok(n) if n > 0 => tracing::debug!(removed = n, "swept expired OAuth states"),
                Err(e) => tracing::warn!(error = %e, "sweeping OAuth states failed"),
                _ => {}
            }
            if let Err(e) = s.store.sweep_expired_sessions(now).await {
                tracing::warn!(error = %e, "sweeping expired sessions failed");
            }
            if let Err(e) = s.store.sweep_oauth2_grants(now).await {
                tracing::warn!(error = %e, "sweeping OAuth 2.1 grants failed");
            }
            match s.store.sweep_email_tokens(now).await {
                Ok(n) if n > 0 => tracing::debug!(removed = n, "swept expired mailed tokens"),
                Err(e) => tracing::warn!(error = %e, "sweeping mailed tokens failed"),
                _ => {}
            }
        }
        drop(s);
        // Let the asked actors answer before looking again.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
