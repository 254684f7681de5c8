//! `UserActor`: one per active user, the serialisation point for everything that
//! changes that user's sessions, refresh families, accounts and roles.
//!
//! State is loaded from storage on activation and written through on every change;
//! a reply that reports a change is sent only after the change is durable. The
//! only state kept in memory alone is what may be lost safely: last-seen times and
//! the plaintext of a just-minted refresh token, held for the grace window.
//!
//! In a cluster an activation first claims its user (an ownership epoch in
//! the store) and writes only through a store fenced by that claim; a write
//! that finds the claim superseded, or a read past the stale-read bound that
//! does, passivates the actor and leaves the request unanswered, so the engine
//! routes it again (see [`crate::cluster`]).

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tachigo_storage::{
    AuditEvent, FamilyRecord, FamilyRevocation, Fence, LinkedAccount, RotationOutcome,
    SessionRecord, Store, Surface, TokenHash, UnixMillis, UserRecord,
};

use crate::engine::Shared;
use crate::messages::*;
use crate::model::{Session, User};
use crate::opaque_token::{self, hashes_equal};
use crate::refresh_family::{self, Presentation};
use crate::session_views::{SessionView, ViewOf};
use crate::EngineError;

pub(crate) struct UserActor {
    pub(crate) shared: Arc<Shared>,
}

/// A refresh token's plaintext, kept only to answer a grace-window replay.
struct HeldSuccessor {
    token: String,
    hash: TokenHash,
}

struct LiveSession {
    record: SessionRecord,
    family: Option<FamilyRecord>,
    held: Option<HeldSuccessor>,
    /// What readers see of it ([`crate::session_views`]); it also holds the
    /// last-seen time, which readers update without a message.
    view: Arc<SessionView>,
}

/// The instant from which a session no longer works (`i64::MIN` once its
/// family is revoked).
fn valid_until(record: &SessionRecord, family: Option<&FamilyRecord>) -> UnixMillis {
    match family {
        Some(f) if f.revoked.is_some() => UnixMillis::MIN,
        Some(f) => f.idle_expires_at.min(f.absolute_expires_at),
        None => record.expires_at.min(record.absolute_expires_at),
    }
}

impl LiveSession {
    fn is_expired(&self, now: UnixMillis) -> bool {
        now >= valid_until(&self.record, self.family.as_ref())
    }

    fn last_seen_at(&self) -> UnixMillis {
        self.view.last_seen_at()
    }

    fn seen(&self, now: UnixMillis) {
        self.view.seen(now);
    }

    fn info(&self, clients: &crate::clients::ClientRegistry) -> SessionInfo {
        let expires_at = self
            .family
            .as_ref()
            .map_or(self.record.expires_at, |f| f.idle_expires_at);
        SessionInfo {
            id: self.record.id.clone(),
            surface: self.record.surface.into(),
            created_at: self.record.created_at,
            last_seen_at: self.last_seen_at(),
            expires_at,
            user_agent: self.record.user_agent.clone(),
            ip: self.record.ip.clone(),
            context: self.record.context.clone(),
            client: (self.record.surface == Surface::App)
                .then(|| crate::app_session::client_of(self.record.context.as_deref()))
                .flatten()
                .map(|id| AppClient {
                    id: id.to_string(),
                    name: clients
                        .get(id)
                        .map_or_else(|| id.to_string(), |c| c.name.clone()),
                }),
        }
    }

    /// The session as clients see it (a dashboard session's expiry is its
    /// family's): its view, published again after every change.
    fn current(&self) -> Session {
        self.view.session.clone()
    }
}

pub(crate) struct UserState {
    user: UserRecord,
    /// The user as every published session view shows it.
    user_view: Arc<User>,
    /// Which activation of the user this is (tags the views it publishes).
    activation: u64,
    sessions: Vec<LiveSession>,
    /// Set once the router has let this actor go: later messages are dropped
    /// unanswered, so their callers retry against the next activation.
    passivated: bool,
    /// The store this actor writes through: fenced by `fence` in a cluster.
    store: Arc<dyn Store>,
    /// In a cluster: this activation's claim on the user.
    fence: Option<Fence>,
    /// When the claim was last found current (claimed, or checked).
    fence_checked_at: UnixMillis,
}

impl UserState {
    /// Until when this activation may answer reads from memory without
    /// finding its claim current again: the cluster's stale-read bound after
    /// the last check (for ever outside a cluster).
    fn claim_valid_until(&self, shared: &Shared) -> UnixMillis {
        match &self.fence {
            Some(_) => self
                .fence_checked_at
                .saturating_add(shared.options.stale_read_bound_ms),
            None => UnixMillis::MAX,
        }
    }

    fn session_mut(&mut self, id: &str) -> Option<&mut LiveSession> {
        self.sessions.iter_mut().find(|s| s.record.id == id)
    }

    /// A view of `record` (with `family`) as this activation publishes it.
    fn view_of(
        &self,
        shared: &Shared,
        record: &SessionRecord,
        family: Option<&FamilyRecord>,
        last_seen_at: UnixMillis,
    ) -> Arc<SessionView> {
        let mut session = Session::from(record);
        if let Some(f) = family {
            session.expires_at = f.idle_expires_at;
            session.updated_at = f.last_rotated_at;
        }
        ViewOf {
            session,
            user: &self.user_view,
            token_hash: record.token_hash,
            valid_until: valid_until(record, family).min(self.claim_valid_until(shared)),
            web_update_age_ms: shared.options.web_update_age_ms,
            last_seen_at,
            activation: self.activation,
        }
        .build()
    }

    /// A live session of `record`, its view not yet published.
    fn live_session(
        &self,
        shared: &Shared,
        record: SessionRecord,
        family: Option<FamilyRecord>,
        last_seen_at: UnixMillis,
    ) -> LiveSession {
        let view = self.view_of(shared, &record, family.as_ref(), last_seen_at);
        LiveSession {
            record,
            family,
            held: None,
            view,
        }
    }

    /// Publishes session `index` again after its record or family changed
    /// (or the user did).
    fn republish(&mut self, shared: &Shared, index: usize) {
        let live = &self.sessions[index];
        let view = self.view_of(
            shared,
            &live.record,
            live.family.as_ref(),
            live.last_seen_at(),
        );
        shared.views.publish(view.clone());
        self.sessions[index].view = view;
    }

    fn republish_id(&mut self, shared: &Shared, session_id: &str) {
        if let Some(index) = self.sessions.iter().position(|s| s.record.id == session_id) {
            self.republish(shared, index);
        }
    }

    /// The user changed: every view shows the new one.
    fn set_user(&mut self, shared: &Shared, user: UserRecord) {
        self.user_view = Arc::new(User::from(&user));
        self.user = user;
        for index in 0..self.sessions.len() {
            self.republish(shared, index);
        }
    }

    /// Drops sessions that ended (expired) from memory, and their views.
    fn drop_sessions(&mut self, shared: &Shared, ended: impl Fn(&LiveSession) -> bool) {
        self.sessions.retain(|s| {
            let keep = !ended(s);
            if !keep {
                shared.views.withdraw_own(&s.record.id, s.view.activation());
            }
            keep
        });
    }

    /// Withdraws every view this activation published (it is going away).
    fn withdraw_views(&self, shared: &Shared) {
        for s in &self.sessions {
            shared.views.withdraw_own(&s.record.id, self.activation);
        }
    }
}

impl Actor for UserActor {
    type Msg = UserMsg;
    type State = UserState;
    type Arguments = String;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        user_id: String,
    ) -> Result<Self::State, ActorProcessingErr> {
        let store = &self.shared.store;
        // In a cluster the claim comes first: it waits for any write of the
        // previous owner still committing, so what is read next is final.
        let fence = match &self.shared.options.cluster_node {
            Some(node) => {
                let epoch = store
                    .claim_ownership(&user_id, node)
                    .await
                    .map_err(EngineError::from)?
                    .ok_or(EngineError::UserNotFound)?;
                Some(Fence {
                    user_id: user_id.clone(),
                    epoch,
                })
            }
            None => None,
        };
        let user = store
            .user(&user_id)
            .await
            .map_err(EngineError::from)?
            .ok_or(EngineError::UserNotFound)?;
        let now = self.shared.now();
        let mut state = UserState {
            user_view: Arc::new(User::from(&user)),
            user,
            activation: self.shared.next_activation(),
            sessions: Vec::new(),
            passivated: false,
            store: match &fence {
                Some(f) => store.fenced(f.clone()),
                None => store.clone(),
            },
            fence,
            fence_checked_at: now,
        };
        for record in store
            .sessions_of(&user_id)
            .await
            .map_err(EngineError::from)?
        {
            let family = match record.surface {
                Surface::Dashboard | Surface::App => {
                    match store.family(&record.id).await.map_err(EngineError::from)? {
                        Some(f) => Some(f),
                        None => continue,
                    }
                }
                _ => None,
            };
            let last_seen_at = family
                .as_ref()
                .map_or(record.updated_at, |f| f.last_rotated_at);
            if now < valid_until(&record, family.as_ref()) {
                let live = state.live_session(&self.shared, record, family, last_seen_at);
                state.sessions.push(live);
            }
        }
        // Published only once the activation cannot fail any more: no view
        // is left behind by an actor that never ran.
        for live in &state.sessions {
            self.shared.views.publish(live.view.clone());
        }
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if state.passivated {
            return Ok(());
        }
        let (request, reply) = match message {
            UserMsg::Ask { request, reply } => (request, reply),
            UserMsg::Passivate { force } => {
                if self.shared.router.release(&state.user.id, &myself, force) {
                    self.stop_now(&myself, state);
                }
                return Ok(());
            }
        };
        if request.is_read() && !self.claim_still_holds(state).await {
            // Dropped unanswered: the caller routes the request again.
            self.shared.router.release(&state.user.id, &myself, true);
            self.stop_now(&myself, state);
            return Ok(());
        }
        let deleting = matches!(request, UserRequest::Delete);
        let ops = Ops {
            shared: &self.shared,
            store: state.store.clone(),
            state,
        };
        let answer = ops.answer(request).await;
        if answer.is_fenced() {
            metrics::counter!("tachigo_cluster_fenced_writes_total").increment(1);
            tracing::info!(user_id = %state.user.id, "another node claimed this user; passivating");
            self.shared.router.release(&state.user.id, &myself, true);
            self.stop_now(&myself, state);
            return Ok(());
        }
        let deleted = deleting && matches!(answer, UserReply::Done(Ok(())));
        let _ = reply.send(answer);
        if deleted {
            self.shared.router.release(&state.user.id, &myself, true);
            self.stop_now(&myself, state);
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // Covers stops the router did not ask for (a panic, shutdown).
        self.shared.router.release(&state.user.id, &myself, true);
        state.withdraw_views(&self.shared);
        Ok(())
    }
}

impl UserActor {
    /// Withdraws this activation's views and stops it; later messages in its
    /// mailbox are dropped unanswered (their callers route them again).
    fn stop_now(&self, myself: &ActorRef<UserMsg>, state: &mut UserState) {
        state.withdraw_views(&self.shared);
        state.passivated = true;
        myself.stop(None);
    }

    /// In a cluster, before answering a read from memory: whether this
    /// activation's claim is still current, checked again once the
    /// stale-read bound has passed since the last check (views are
    /// published again with the new deadline). Outside a cluster, always.
    async fn claim_still_holds(&self, state: &mut UserState) -> bool {
        let Some(fence) = &state.fence else {
            return true;
        };
        let now = self.shared.now();
        if now < state.claim_valid_until(&self.shared) {
            return true;
        }
        metrics::counter!("tachigo_cluster_claim_checks_total").increment(1);
        match self.shared.store.holds_ownership(fence).await {
            Ok(true) => {
                state.fence_checked_at = now;
                for index in 0..state.sessions.len() {
                    state.republish(&self.shared, index);
                }
                true
            }
            Ok(false) => {
                metrics::counter!("tachigo_cluster_fenced_reads_total").increment(1);
                tracing::info!(user_id = %state.user.id, "another node claimed this user; passivating");
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, user_id = %state.user.id,
                    "could not check this node's claim on a user; passivating");
                false
            }
        }
    }
}

/// The operations of one message, with the shared context and the user's state.
struct Ops<'a> {
    shared: &'a Shared,
    state: &'a mut UserState,
    /// Where this actor's writes go: fenced by its claim in a cluster.
    store: Arc<dyn Store>,
}

impl Ops<'_> {
    /// Answers one request.
    async fn answer(self, request: UserRequest) -> UserReply {
        match request {
            UserRequest::GetUser => UserReply::User(self.state.user.clone()),
            UserRequest::CreateSession {
                new,
                app_idle_ttl_ms,
            } => UserReply::Created(self.create_session(new, app_idle_ttl_ms).await),
            UserRequest::Rotate {
                session_id,
                presented,
                holder,
            } => UserReply::Rotated(self.rotate(&session_id, &presented, &holder).await),
            UserRequest::InspectRefresh {
                session_id,
                presented,
                holder,
            } => UserReply::Inspected(self.inspect_refresh(&session_id, &presented, &holder).await),
            UserRequest::ReadSession { session_id, token } => {
                UserReply::Read(self.read_session(&session_id, token.as_ref()).await)
            }
            UserRequest::ListSessions => UserReply::Sessions(self.list_sessions()),
            UserRequest::Revoke { scope } => UserReply::SessionIds(self.revoke(scope).await),
            UserRequest::Logout {
                session_id,
                presented,
                holder,
            } => UserReply::Flag(self.logout(&session_id, &presented, &holder).await),
            UserRequest::LinkAccount { account } => {
                UserReply::Changed(self.link_account(account).await)
            }
            UserRequest::UnlinkAccount { provider, subject } => {
                UserReply::Changed(self.unlink_account(&provider, subject.as_deref()).await)
            }
            UserRequest::KeepProviderTokens { record } => {
                UserReply::Flag(self.keep_provider_tokens(record).await)
            }
            UserRequest::SetRoles { roles } => {
                UserReply::Changed(self.update_user(|u| u.roles = roles).await)
            }
            UserRequest::SetPassword { password_hash } => UserReply::Changed(
                self.update_user(|u| u.password_hash = Some(password_hash))
                    .await,
            ),
            UserRequest::Update { change } => UserReply::Changed(self.apply_change(change).await),
            UserRequest::Delete => UserReply::Done(self.delete().await),
        }
    }

    async fn create_session(
        mut self,
        new: NewSession,
        app_idle_ttl_ms: Option<i64>,
    ) -> Result<CreatedSession, EngineError> {
        let s = self.shared;
        let now = s.now();
        let surface: Surface = new.surface.into();
        if surface == Surface::Extension && new.context.is_some() {
            if let Some(reused) = self.reuse_extension_session(&new, now).await? {
                return Ok(reused);
            }
        }
        let id = opaque_token::new_id();
        let o = &s.options;
        let absolute = now + o.session_absolute_ttl_ms;
        let (ttl, token) = match surface {
            Surface::Dashboard => (o.refresh_idle_ttl_ms, Some(opaque_token::mint(&id))),
            Surface::App => (
                app_idle_ttl_ms.unwrap_or(o.refresh_idle_ttl_ms),
                Some(opaque_token::mint(&id)),
            ),
            Surface::Web => (o.web_session_ttl_ms, Some(opaque_token::mint(&id))),
            Surface::Extension => (o.access_ttl_ms, None),
        };
        let family = match (&surface, &token) {
            (Surface::Dashboard | Surface::App, Some(t)) => Some(refresh_family::start(
                &id,
                &self.state.user.id,
                t.hash,
                now,
                ttl,
                o.session_absolute_ttl_ms,
            )),
            _ => None,
        };
        let record = SessionRecord {
            id,
            user_id: self.state.user.id.clone(),
            surface,
            token_hash: match surface {
                Surface::Web => token.as_ref().map(|t| t.hash),
                _ => None,
            },
            created_at: now,
            updated_at: now,
            expires_at: (now + ttl).min(absolute),
            absolute_expires_at: absolute,
            user_agent: new.user_agent,
            ip: new.ip,
            context: new.context,
        };
        self.store.put_session(&record, family.as_ref()).await?;
        metrics::counter!("tachigo_sessions_created_total", "surface" => surface.as_str())
            .increment(1);
        // The plaintext of a first refresh token is never needed for grace: only successors are.
        let live = self.state.live_session(s, record.clone(), family, now);
        s.views.publish(live.view.clone());
        self.state.sessions.push(live);
        Ok(CreatedSession {
            session: Session::from(&record),
            user: User::clone(&self.state.user_view),
            token: token.map(|t| t.token),
        })
    }

    /// A Twitch panel logs in again on every load: the viewer's live session in the
    /// same channel (same context) is reused instead of piling up new ones. It is
    /// written again only when less than half its lifetime remains.
    async fn reuse_extension_session(
        &mut self,
        new: &NewSession,
        now: UnixMillis,
    ) -> Result<Option<CreatedSession>, EngineError> {
        let ttl = self.shared.options.access_ttl_ms;
        let Some(index) = self.state.sessions.iter().position(|l| {
            l.record.surface == Surface::Extension
                && l.record.context == new.context
                && !l.is_expired(now)
        }) else {
            return Ok(None);
        };
        let live = &mut self.state.sessions[index];
        live.seen(now);
        if live.record.expires_at - now < ttl / 2 {
            let mut record = live.record.clone();
            record.updated_at = now;
            record.expires_at = (now + ttl).min(record.absolute_expires_at);
            self.store.put_session(&record, None).await?;
            live.record = record;
            self.state.republish(self.shared, index);
        }
        metrics::counter!("tachigo_sessions_reused_total", "surface" => "extension").increment(1);
        Ok(Some(CreatedSession {
            session: Session::from(&self.state.sessions[index].record),
            user: User::clone(&self.state.user_view),
            token: None,
        }))
    }

    /// Presents a refresh token. A rotation that loses its conditional write
    /// (another process changed the family first) reloads the family from
    /// storage and decides again, so the token is judged against what is stored.
    async fn rotate(
        mut self,
        session_id: &str,
        presented: &TokenHash,
        holder: &RefreshHolder,
    ) -> Result<Rotated, EngineError> {
        let s = self.shared;
        for _ in 0..3 {
            let now = s.now();
            let Some(live) = self.state.session_mut(session_id) else {
                return Err(answer_for_absent_family(s, session_id, presented, now).await?);
            };
            if !held_by(&live.record, holder) {
                return Err(EngineError::InvalidRefreshToken);
            }
            let Some(family) = live.family.clone() else {
                return Err(EngineError::InvalidRefreshToken);
            };
            let verdict = presentation(s, &family, presented, now).await?;
            let grace = match verdict {
                Presentation::Current => false,
                Presentation::GraceReplay => {
                    if let Some(held) = live
                        .held
                        .as_ref()
                        .filter(|h| hashes_equal(&h.hash, &family.current))
                    {
                        metrics::counter!("tachigo_refresh_grace_replays_total").increment(1);
                        let token = held.token.clone();
                        live.seen(now);
                        return Ok(Rotated {
                            refresh_token: token,
                            session: live.current(),
                            user: User::clone(&self.state.user_view),
                            grace: true,
                        });
                    }
                    // The successor's plaintext is gone (restart or passivation inside
                    // the window): mint another, so the replaying client still gets a
                    // working token.
                    true
                }
                Presentation::Reuse => {
                    metrics::counter!("tachigo_refresh_reuse_detected_total").increment(1);
                    tracing::warn!(user_id = %self.state.user.id, session_id, generation = family.generation,
                        "refresh token reuse detected; revoking the session's family");
                    let user_id = self.state.user.id.clone();
                    self.end_sessions(vec![session_id.to_string()], FamilyRevocation::Reuse)
                        .await?;
                    s.audit(
                        "refresh_reuse_detected",
                        Some(&user_id),
                        Some(session_id),
                        "family revoked",
                    )
                    .await;
                    return Err(EngineError::RefreshTokenReused);
                }
                Presentation::Revoked(FamilyRevocation::Reuse) => {
                    return Err(EngineError::RefreshTokenReused)
                }
                Presentation::Revoked(_) | Presentation::Expired | Presentation::Unknown => {
                    return Err(EngineError::InvalidRefreshToken)
                }
            };
            let idle_ttl_ms = match holder {
                RefreshHolder::App { idle_ttl_ms, .. } => *idle_ttl_ms,
                RefreshHolder::Dashboard | RefreshHolder::AnyApp => s.options.refresh_idle_ttl_ms,
            };
            if let Some(rotated) = self
                .mint_successor(session_id, family, now, grace, idle_ttl_ms)
                .await?
            {
                return Ok(rotated);
            }
        }
        Err(EngineError::Unavailable)
    }

    /// Rotates `family`; `None` when the conditional write lost (the family is
    /// reloaded from storage, or the session dropped when it is gone).
    async fn mint_successor(
        &mut self,
        session_id: &str,
        family: FamilyRecord,
        now: UnixMillis,
        grace: bool,
        idle_ttl_ms: i64,
    ) -> Result<Option<Rotated>, EngineError> {
        let s = self.shared;
        let successor = opaque_token::mint(session_id);
        let retired = family.current;
        let mut next = family.clone();
        refresh_family::rotate(&mut next, successor.hash, now, idle_ttl_ms);
        let outcome = self.store.rotate_family(&family, &next, &retired).await?;
        if outcome == RotationOutcome::Conflict {
            metrics::counter!("tachigo_refresh_rotation_conflicts_total").increment(1);
            let stored = s.store.family(session_id).await?;
            match stored {
                Some(stored) => {
                    if let Some(live) = self.state.session_mut(session_id) {
                        live.family = Some(stored);
                        live.held = None;
                    }
                    self.state.republish_id(s, session_id);
                }
                None => self.state.drop_sessions(s, |l| l.record.id == session_id),
            }
            return Ok(None);
        }
        metrics::counter!("tachigo_refresh_rotations_total").increment(1);
        let live = self
            .state
            .session_mut(session_id)
            .expect("the session was found above");
        live.family = Some(next);
        live.held = Some(HeldSuccessor {
            token: successor.token.clone(),
            hash: successor.hash,
        });
        live.seen(now);
        self.state.republish_id(s, session_id);
        let live = self
            .state
            .session_mut(session_id)
            .expect("the session was found above");
        Ok(Some(Rotated {
            refresh_token: successor.token,
            session: live.current(),
            user: User::clone(&self.state.user_view),
            grace,
        }))
    }

    async fn read_session(
        self,
        session_id: &str,
        token: Option<&TokenHash>,
    ) -> Result<SessionRead, EngineError> {
        let s = self.shared;
        let now = s.now();
        let live = self
            .state
            .session_mut(session_id)
            .ok_or(EngineError::SessionInvalid)?;
        if let Some(presented) = token {
            match &live.record.token_hash {
                Some(stored) if hashes_equal(stored, presented) => {}
                _ => return Err(EngineError::SessionInvalid),
            }
        }
        if live.is_expired(now) {
            return Err(EngineError::SessionInvalid);
        }
        live.seen(now);
        let mut renewed = false;
        if live.record.surface == Surface::Web
            && now - live.record.updated_at >= s.options.web_update_age_ms
        {
            let mut record = live.record.clone();
            record.updated_at = now;
            record.expires_at =
                (now + s.options.web_session_ttl_ms).min(record.absolute_expires_at);
            self.store.put_session(&record, None).await?;
            live.record = record;
            renewed = true;
            self.state.republish_id(s, session_id);
        }
        let live = self
            .state
            .session_mut(session_id)
            .expect("the session was found above");
        Ok(SessionRead {
            session: live.current(),
            user: User::clone(&self.state.user_view),
            renewed,
        })
    }

    fn list_sessions(self) -> Vec<SessionInfo> {
        let now = self.shared.now();
        self.state.drop_sessions(self.shared, |s| s.is_expired(now));
        let mut sessions: Vec<SessionInfo> = self
            .state
            .sessions
            .iter()
            .map(|l| l.info(&self.shared.options.clients))
            .collect();
        sessions.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        sessions
    }

    async fn revoke(mut self, scope: RevokeScope) -> Result<Vec<String>, EngineError> {
        let ids: Vec<String> = match &scope {
            RevokeScope::One(id) => {
                if !self.state.sessions.iter().any(|s| &s.record.id == id) {
                    return Err(EngineError::SessionNotFound);
                }
                vec![id.clone()]
            }
            RevokeScope::All => self
                .state
                .sessions
                .iter()
                .map(|s| s.record.id.clone())
                .collect(),
            RevokeScope::AllExcept(keep) => self
                .state
                .sessions
                .iter()
                .filter(|s| &s.record.id != keep)
                .map(|s| s.record.id.clone())
                .collect(),
        };
        self.end_sessions(ids.clone(), FamilyRevocation::Revoked)
            .await?;
        Ok(ids)
    }

    /// Removes sessions from storage (families become revoked tombstones), then from memory.
    async fn end_sessions(
        &mut self,
        ids: Vec<String>,
        why: FamilyRevocation,
    ) -> Result<(), EngineError> {
        self.store
            .remove_sessions(&self.state.user.id, &ids, why)
            .await?;
        for id in &ids {
            self.shared.views.withdraw(id);
        }
        self.state.sessions.retain(|s| !ids.contains(&s.record.id));
        metrics::counter!("tachigo_sessions_revoked_total").increment(ids.len() as u64);
        Ok(())
    }

    /// The session of a refresh token that is its family's current one,
    /// without changing anything (a predecessor within grace is not active:
    /// it only answers a replay).
    async fn inspect_refresh(
        self,
        session_id: &str,
        presented: &TokenHash,
        holder: &RefreshHolder,
    ) -> Result<Option<Session>, EngineError> {
        let s = self.shared;
        let now = s.now();
        let Some(live) = self.state.session_mut(session_id) else {
            return Ok(None);
        };
        let Some(family) = live
            .family
            .clone()
            .filter(|_| held_by(&live.record, holder))
        else {
            return Ok(None);
        };
        if live.is_expired(now) {
            return Ok(None);
        }
        let verdict = presentation(s, &family, presented, now).await?;
        Ok(matches!(verdict, Presentation::Current).then(|| live.current()))
    }

    async fn logout(
        mut self,
        session_id: &str,
        presented: &TokenHash,
        holder: &RefreshHolder,
    ) -> Result<bool, EngineError> {
        let s = self.shared;
        let now = s.now();
        let Some((family, held)) = self
            .state
            .session_mut(session_id)
            .and_then(|l| Some((l.family.clone()?, held_by(&l.record, holder))))
        else {
            return Ok(false);
        };
        let verdict = presentation(s, &family, presented, now).await?;
        if !held && !matches!(verdict, Presentation::Unknown) {
            return Err(EngineError::InvalidToken);
        }
        let why = match verdict {
            Presentation::Unknown | Presentation::Revoked(_) => return Ok(false),
            Presentation::Reuse => FamilyRevocation::Reuse,
            Presentation::Current | Presentation::GraceReplay | Presentation::Expired => {
                FamilyRevocation::Revoked
            }
        };
        let user_id = self.state.user.id.clone();
        self.end_sessions(vec![session_id.to_string()], why).await?;
        if why == FamilyRevocation::Reuse {
            metrics::counter!("tachigo_refresh_reuse_detected_total").increment(1);
            s.audit(
                "refresh_reuse_detected",
                Some(&user_id),
                Some(session_id),
                "retired token presented at logout; family revoked",
            )
            .await;
        }
        Ok(true)
    }

    async fn link_account(self, account: LinkedAccount) -> Result<User, EngineError> {
        let user = &self.state.user;
        if user
            .accounts
            .iter()
            .any(|a| a.provider == account.provider && a.subject == account.subject)
        {
            return Ok(User::clone(&self.state.user_view));
        }
        let mut updated = user.clone();
        updated.accounts.push(account.clone());
        updated.updated_at = self.shared.now();
        self.store.link_account(&updated, &account).await?;
        self.state.set_user(self.shared, updated);
        let detail = format!("provider {}", account.provider);
        self.shared
            .audit("account_linked", Some(&self.state.user.id), None, &detail)
            .await;
        Ok(User::clone(&self.state.user_view))
    }

    async fn unlink_account(
        self,
        provider: &str,
        subject: Option<&str>,
    ) -> Result<User, EngineError> {
        let user = &self.state.user;
        let position = user
            .accounts
            .iter()
            .position(|a| a.provider == provider && subject.is_none_or(|s| s == a.subject))
            .ok_or(EngineError::AccountNotFound)?;
        let ways_to_sign_in = user.accounts.len() + usize::from(user.password_hash.is_some());
        if ways_to_sign_in <= 1 {
            return Err(EngineError::LastSignInMethod);
        }
        let mut updated = user.clone();
        let removed = updated.accounts.remove(position);
        updated.updated_at = self.shared.now();
        self.store
            .unlink_account(&updated, &removed.provider, &removed.subject)
            .await?;
        self.state.set_user(self.shared, updated);
        let detail = format!("provider {}", removed.provider);
        self.shared
            .audit("account_unlinked", Some(&self.state.user.id), None, &detail)
            .await;
        Ok(User::clone(&self.state.user_view))
    }

    /// Written only for an account the user has now: an unlink that came
    /// first (this actor serialises both) leaves nothing behind.
    async fn keep_provider_tokens(
        self,
        record: tachigo_storage::ProviderTokensRecord,
    ) -> Result<bool, EngineError> {
        let linked = self.state.user.id == record.user_id
            && self
                .state
                .user
                .accounts
                .iter()
                .any(|a| a.provider == record.provider && a.subject == record.subject);
        if !linked {
            return Ok(false);
        }
        Ok(self.store.put_provider_tokens(&record).await?)
    }

    async fn apply_change(self, change: UserChange) -> Result<User, EngineError> {
        let user = &self.state.user;
        let same_email = |email: &str| user.email.as_deref() == Some(email);
        match change {
            UserChange::MarkEmailVerified { email } => {
                if !same_email(&email) {
                    return Err(EngineError::InvalidToken);
                }
                self.update_user(|u| u.email_verified = true).await
            }
            UserChange::ResetPassword {
                email,
                stamp,
                password_hash,
            } => {
                if !same_email(&email)
                    || !crate::opaque_token::hashes_equal(&password_stamp(user), &stamp)
                {
                    return Err(EngineError::InvalidToken);
                }
                self.update_user(|u| {
                    u.password_hash = Some(password_hash);
                    // Only the mailbox's reader could follow the link.
                    u.email_verified = true;
                })
                .await
            }
            UserChange::TakeOverEmail { email } => {
                if !same_email(&email) {
                    return Err(EngineError::InvalidToken);
                }
                self.take_over().await
            }
            UserChange::Rehash { old, password_hash } => {
                if user.password_hash.as_deref() != Some(old.as_str()) {
                    return Err(EngineError::InvalidToken);
                }
                self.update_user(|u| u.password_hash = Some(password_hash))
                    .await
            }
            UserChange::SetProfile { name, image } => {
                self.update_user(|u| {
                    if let Some(name) = name {
                        u.name = name;
                    }
                    if let Some(image) = image {
                        u.image = image;
                    }
                })
                .await
            }
        }
    }

    /// Every session ends first (tombstoned families refuse their tokens),
    /// then the record and its indexes go.
    async fn delete(self) -> Result<(), EngineError> {
        let user_id = self.state.user.id.clone();
        Ops {
            shared: self.shared,
            state: &mut *self.state,
            store: self.store.clone(),
        }
        .revoke(RevokeScope::All)
        .await?;
        self.store.delete_user(&user_id).await?;
        Ok(())
    }

    /// The verified owner of the address claims the user: the password goes,
    /// and so does every account linked while nobody had proven the address
    /// (the claimant's, not the owner's), each with its kept provider tokens.
    /// Accounts go first, one write each: a crash part-way leaves the address
    /// unproven, so the owner's next sign-in takes over the rest.
    async fn take_over(self) -> Result<User, EngineError> {
        let mut updated = self.state.user.clone();
        let now = self.shared.now();
        while let Some(removed) = updated.accounts.pop() {
            updated.updated_at = now;
            self.store
                .unlink_account(&updated, &removed.provider, &removed.subject)
                .await?;
        }
        self.update_user(|u| {
            u.accounts.clear();
            u.password_hash = None;
            u.email_verified = true;
        })
        .await
    }

    async fn update_user(self, change: impl FnOnce(&mut UserRecord)) -> Result<User, EngineError> {
        let mut updated = self.state.user.clone();
        change(&mut updated);
        updated.updated_at = self.shared.now();
        self.store.put_user(&updated).await?;
        self.state.set_user(self.shared, updated);
        Ok(User::clone(&self.state.user_view))
    }
}

/// Whether a session's refresh tokens belong to `holder`: the dashboard's to
/// dashboard sessions, a client's to the app sessions of that client.
fn held_by(record: &SessionRecord, holder: &RefreshHolder) -> bool {
    match holder {
        RefreshHolder::Dashboard => record.surface == Surface::Dashboard,
        RefreshHolder::App { client_id, .. } => {
            record.surface == Surface::App
                && crate::app_session::client_of(record.context.as_deref()) == Some(client_id)
        }
        RefreshHolder::AnyApp => record.surface == Surface::App,
    }
}

/// A refresh token for a session this actor does not hold: its family may be a
/// revoked tombstone (answer "reused" when it was revoked for reuse); otherwise the
/// token is simply invalid. Nothing changes either way.
async fn answer_for_absent_family(
    s: &Shared,
    session_id: &str,
    presented: &TokenHash,
    now: UnixMillis,
) -> Result<EngineError, EngineError> {
    let Some(family) = s.store.family(session_id).await? else {
        return Ok(EngineError::InvalidRefreshToken);
    };
    let verdict = presentation(s, &family, presented, now).await?;
    Ok(match verdict {
        Presentation::Revoked(FamilyRevocation::Reuse) => EngineError::RefreshTokenReused,
        _ => EngineError::InvalidRefreshToken,
    })
}

/// What `presented` means for `family` (see [`refresh_family::classify`]).
/// The retired-token lookup runs only for a token that is neither of the two
/// the family holds; a failed lookup fails the request (it never reads as
/// "not retired", which would skip reuse detection).
async fn presentation(
    s: &Shared,
    family: &FamilyRecord,
    presented: &TokenHash,
    now: UnixMillis,
) -> Result<Presentation, EngineError> {
    let retired_earlier = if refresh_family::needs_retired_lookup(family, presented) {
        s.store
            .was_retired_by(&family.session_id, presented)
            .await?
    } else {
        false
    };
    Ok(refresh_family::classify(
        family,
        presented,
        now,
        s.options.refresh_grace_ms,
        || retired_earlier,
    ))
}

/// Used by the engine to log an audit event without failing the caller's request.
pub(crate) fn audit_event(
    kind: &str,
    user_id: Option<&str>,
    session_id: Option<&str>,
    detail: &str,
    at: UnixMillis,
) -> AuditEvent {
    AuditEvent {
        at,
        kind: kind.to_string(),
        user_id: user_id.map(str::to_string),
        session_id: session_id.map(str::to_string),
        ip: None,
        detail: detail.to_string(),
    }
}

/// A digest of the user's password hash (or of none): a reset token carries
/// the stamp of its day, so it is void once the password changed.
pub(crate) fn password_stamp(user: &UserRecord) -> TokenHash {
    crate::opaque_token::hash_secret(user.password_hash.as_deref().unwrap_or("").as_bytes())
}
