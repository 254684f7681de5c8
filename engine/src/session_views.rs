//! [`SessionViews`]: what a live actor's sessions look like, readable without a
//! message to the actor.
//!
//! Reading a session (a get-session call, the liveness check behind every
//! bearer request) changes nothing, yet it used to cost two task wake-ups: a
//! message to the user's actor and its reply. The actor stays the only writer:
//! it publishes an immutable view of each live session when it activates and
//! after every change (a rotation, a renewal, a changed user), and withdraws
//! it *before* it answers a revocation, so a reader that starts after a
//! revocation was acknowledged never finds the session. A read that the view
//! cannot answer alone (no view, an expired one, a web session whose sliding
//! expiry is due) goes to the actor as before.
//!
//! A view also keeps one rendering of itself (the bytes of a reply that shows
//! the session and its user, made by the first renderer that asks), so
//! repeated reads of an unchanged session cost no serialisation: a change
//! publishes a new view, and with it a new rendering.
//!
//! Views exist only for sessions of live actors (an actor withdraws its own when
//! it passivates), so they are bounded by `engine.max_live_actors` like the
//! actors themselves. Each view is tagged with the activation that published
//! it: a passivating actor withdraws only its own, never those a newer
//! activation of the same user has already published.

use std::any::TypeId;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use bytes::Bytes;

use tachigo_storage::TokenHash;

use crate::model::{Session, Surface, UnixMillis, User};
use crate::opaque_token::hashes_equal;

const SHARDS: usize = 32;

/// One live session as readers see it.
pub(crate) struct SessionView {
    /// As clients see it (a refresh family's idle expiry for dashboard and app sessions).
    pub(crate) session: Session,
    pub(crate) user: Arc<User>,
    /// The cookie's hash, for web sessions.
    token_hash: Option<TokenHash>,
    /// The view answers only before this instant (the session's own expiry).
    valid_until: UnixMillis,
    /// A web session read at or after this instant slides its expiry: the actor must write.
    renew_at: Option<UnixMillis>,
    /// Readers record when they saw the session; the actor lists it.
    last_seen_at: AtomicI64,
    /// The activation that published this view.
    activation: u64,
    /// The first rendering asked for, with the renderer's type.
    rendered: OnceLock<(TypeId, Bytes)>,
}

/// What a reader presents.
pub(crate) enum Presented<'a> {
    /// A web session cookie's hash.
    Cookie(&'a TokenHash),
    /// A verified access token naming this user.
    User(&'a str),
}

impl SessionView {
    pub(crate) fn last_seen_at(&self) -> UnixMillis {
        self.last_seen_at.load(Ordering::Relaxed)
    }

    /// Records that the session was seen at `now`.
    pub(crate) fn seen(&self, now: UnixMillis) {
        self.last_seen_at.fetch_max(now, Ordering::Relaxed);
    }

    pub(crate) fn activation(&self) -> u64 {
        self.activation
    }

    /// Whether the view alone can answer for `presented` at `now` (and, if
    /// so, the session counts as seen); `false` sends the read to the actor.
    fn answers(&self, presented: &Presented<'_>, now: UnixMillis) -> bool {
        let matches = match presented {
            Presented::Cookie(hash) => self
                .token_hash
                .as_ref()
                .is_some_and(|stored| hashes_equal(stored, hash)),
            Presented::User(user_id) => self.session.user_id == *user_id,
        };
        if !matches || now >= self.valid_until || self.renew_at.is_some_and(|at| now >= at) {
            return false;
        }
        self.seen(now);
        true
    }

    /// `render`'s bytes for this view: made once, by the first renderer type
    /// that asks; another type renders anew each time.
    fn rendered<F: Fn(&Session, &User) -> Bytes + 'static>(&self, render: &F) -> Bytes {
        let kind = TypeId::of::<F>();
        match self.rendered.get() {
            Some((k, bytes)) if *k == kind => bytes.clone(),
            Some(_) => render(&self.session, &self.user),
            None => self
                .rendered
                .get_or_init(|| (kind, render(&self.session, &self.user)))
                .1
                .clone(),
        }
    }
}

/// The published views, by session id.
pub(crate) struct SessionViews {
    shards: Vec<RwLock<HashMap<String, Arc<SessionView>>>>,
    hasher: RandomState,
}

impl SessionViews {
    pub(crate) fn new() -> SessionViews {
        SessionViews {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, session_id: &str) -> &RwLock<HashMap<String, Arc<SessionView>>> {
        &self.shards[self.hasher.hash_one(session_id) as usize % SHARDS]
    }

    /// The published view of `session_id` if it can answer for `presented`
    /// at `now` alone; `None` sends the read to the actor.
    fn answering(
        &self,
        session_id: &str,
        presented: Presented<'_>,
        now: UnixMillis,
    ) -> Option<Arc<SessionView>> {
        let view = self
            .shard(session_id)
            .read()
            .expect("session views lock")
            .get(session_id)
            .cloned()?;
        view.answers(&presented, now).then_some(view)
    }

    /// Answers a read from the published view, or `None` (ask the actor).
    pub(crate) fn read(
        &self,
        session_id: &str,
        presented: Presented<'_>,
        now: UnixMillis,
    ) -> Option<(Session, User)> {
        let view = self.answering(session_id, presented, now)?;
        Some((view.session.clone(), User::clone(&view.user)))
    }

    /// As [`SessionViews::read`], answered with the view's rendering by `render`.
    pub(crate) fn read_rendered<F: Fn(&Session, &User) -> Bytes + 'static>(
        &self,
        session_id: &str,
        presented: Presented<'_>,
        now: UnixMillis,
        render: &F,
    ) -> Option<Bytes> {
        Some(self.answering(session_id, presented, now)?.rendered(render))
    }

    /// Publishes (or replaces) the view of a session.
    pub(crate) fn publish(&self, view: Arc<SessionView>) {
        let id = view.session.id.clone();
        self.shard(&id)
            .write()
            .expect("session views lock")
            .insert(id, view);
    }

    /// Withdraws the view of a session, whoever published it (a revocation).
    pub(crate) fn withdraw(&self, session_id: &str) {
        self.shard(session_id)
            .write()
            .expect("session views lock")
            .remove(session_id);
    }

    /// Withdraws a session's view only if `activation` published it (passivation).
    pub(crate) fn withdraw_own(&self, session_id: &str, activation: u64) {
        let mut shard = self.shard(session_id).write().expect("session views lock");
        if shard
            .get(session_id)
            .is_some_and(|v| v.activation == activation)
        {
            shard.remove(session_id);
        }
    }

    /// How many views are published (tests and metrics).
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().expect("session views lock").len())
            .sum()
    }
}

/// What the actor knows when it publishes a view.
pub(crate) struct ViewOf<'a> {
    pub(crate) session: Session,
    pub(crate) user: &'a Arc<User>,
    pub(crate) token_hash: Option<TokenHash>,
    pub(crate) valid_until: UnixMillis,
    pub(crate) web_update_age_ms: i64,
    pub(crate) last_seen_at: UnixMillis,
    pub(crate) activation: u64,
}

impl ViewOf<'_> {
    pub(crate) fn build(self) -> Arc<SessionView> {
        let renew_at = (self.session.surface == Surface::Web)
            .then(|| self.session.updated_at + self.web_update_age_ms);
        Arc::new(SessionView {
            renew_at,
            session: self.session,
            user: self.user.clone(),
            token_hash: self.token_hash,
            valid_until: self.valid_until,
            last_seen_at: AtomicI64::new(self.last_seen_at),
            activation: self.activation,
            rendered: OnceLock::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> Arc<User> {
        Arc::new(User {
            id: "u1".into(),
            email: None,
            email_verified: false,
            name: None,
            image: None,
            has_password: false,
            roles: vec![],
            accounts: vec![],
            created_at: 0,
            updated_at: 0,
        })
    }

    fn view(surface: Surface, activation: u64, token_hash: Option<TokenHash>) -> Arc<SessionView> {
        ViewOf {
            session: Session {
                id: "s1".into(),
                user_id: "u1".into(),
                surface,
                created_at: 0,
                updated_at: 1_000,
                expires_at: 10_000,
                absolute_expires_at: 20_000,
                user_agent: None,
                ip: None,
                context: None,
            },
            user: &user(),
            token_hash,
            valid_until: 10_000,
            web_update_age_ms: 2_000,
            last_seen_at: 0,
            activation,
        }
        .build()
    }

    #[test]
    fn a_view_answers_only_what_it_can_answer_alone() {
        let views = SessionViews::new();
        let hash = [7u8; 32];
        views.publish(view(Surface::Web, 1, Some(hash)));
        assert!(views.read("s1", Presented::Cookie(&hash), 2_000).is_some());
        assert!(views
            .read("s1", Presented::Cookie(&[8u8; 32]), 2_000)
            .is_none());
        // Sliding expiry due at updated_at + update_age: the actor must write.
        assert!(views.read("s1", Presented::Cookie(&hash), 3_000).is_none());
        assert!(views.read("s1", Presented::User("u1"), 2_000).is_some());
        assert!(views.read("s1", Presented::User("u2"), 2_000).is_none());
        assert!(views.read("s2", Presented::User("u1"), 2_000).is_none());

        views.publish(view(Surface::Dashboard, 1, None));
        assert!(views.read("s1", Presented::Cookie(&hash), 2_000).is_none());
        assert!(views.read("s1", Presented::User("u1"), 9_999).is_some());
        assert!(views.read("s1", Presented::User("u1"), 10_000).is_none());
    }

    #[test]
    fn a_view_renders_once_per_renderer_and_a_new_view_anew() {
        let views = SessionViews::new();
        fn other(_: &Session, _: &User) -> Bytes {
            Bytes::from_static(b"other")
        }
        views.publish(view(Surface::Dashboard, 1, None));
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        fn counted(s: &Session, _: &User) -> Bytes {
            CALLS.fetch_add(1, Ordering::Relaxed);
            Bytes::from(s.id.clone())
        }
        for _ in 0..3 {
            let bytes = views
                .read_rendered("s1", Presented::User("u1"), 2_000, &counted)
                .unwrap();
            assert_eq!(&bytes[..], b"s1");
        }
        assert_eq!(CALLS.load(Ordering::Relaxed), 1);
        // Another renderer is never handed the first one's bytes.
        let bytes = views
            .read_rendered("s1", Presented::User("u1"), 2_000, &other)
            .unwrap();
        assert_eq!(&bytes[..], b"other");
        // A changed session is a new view: rendered again.
        views.publish(view(Surface::Dashboard, 1, None));
        views
            .read_rendered("s1", Presented::User("u1"), 2_000, &counted)
            .unwrap();
        assert_eq!(CALLS.load(Ordering::Relaxed), 2);
        // Nothing to answer: no rendering.
        assert!(views
            .read_rendered("s1", Presented::User("u2"), 2_000, &counted)
            .is_none());
        assert_eq!(CALLS.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn reads_record_when_the_session_was_seen() {
        let views = SessionViews::new();
        let v = view(Surface::Dashboard, 1, None);
        views.publish(v.clone());
        views.read("s1", Presented::User("u1"), 5_000);
        views.read("s1", Presented::User("u1"), 4_000);
        assert_eq!(v.last_seen_at(), 5_000);
    }

    #[test]
    fn a_passivating_activation_withdraws_only_its_own_views() {
        let views = SessionViews::new();
        views.publish(view(Surface::Dashboard, 2, None));
        views.withdraw_own("s1", 1);
        assert_eq!(views.len(), 1);
        views.withdraw_own("s1", 2);
        assert_eq!(views.len(), 0);
        views.publish(view(Surface::Dashboard, 3, None));
        views.withdraw("s1");
        assert_eq!(views.len(), 0);
    }
}
