//! The cluster: several nodes over one PostgreSQL, on ractor_cluster.
//!
//! Each node runs a ractor_cluster `NodeServer` (authenticated node sessions,
//! remote actors, process groups) and one [`endpoint`] actor. Membership is
//! the set of peers whose node session is ready and whose settings digest
//! matched this node's ([`settings`]); placement hashes each user over the
//! members ([`placement`]). The engine asks [`Cluster::route`] before every
//! request for a user's actor: a request for a user another member owns is
//! forwarded to that member's endpoint as a versioned message ([`wire`]) and
//! its answer comes back the same way. Writes stay correct through every
//! membership change because each actor's writes are fenced by its claim on
//! the user (see `tachigo_storage::Fence`).

pub(crate) mod endpoint;
mod placement;
mod settings;
mod tls;
mod wire;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::time::{Duration, Instant};

use ractor::rpc::CallResult;
use ractor::{Actor, ActorId, ActorRef};
use ractor_cluster::node::{NodeConnectionMode, NodeServerSessionInformation};
use ractor_cluster::{
    IncomingEncryptionMode, NodeEventSubscription, NodeServer, NodeServerMessage,
};
use tokio::sync::{mpsc, watch};

use crate::engine::Shared;
use crate::messages::{UserReply, UserRequest};
use crate::EngineError;
use endpoint::{group_of, Endpoint, EndpointMsg};
pub use settings::ClusterSettings;
use wire::{ClusterReply, ClusterRequest};

/// How often a node dials the seeds it has no session with.
const SEED_RETRY: Duration = Duration::from_millis(500);

/// This node's view of the cluster.
pub(crate) struct Cluster {
    settings: ClusterSettings,
    shared: Weak<Shared>,
    members: RwLock<Members>,
    /// Set once a peer accepted this node, or no seed answered within the
    /// join timeout: `/readyz` waits for it.
    joined: AtomicBool,
    /// Set by [`Cluster::leave`]: this node routes every user elsewhere.
    leaving: AtomicBool,
    /// A reason this node must not go on (a peer refused its settings before it joined).
    fatal: watch::Sender<Option<String>>,
    node_server: OnceLock<ActorRef<NodeServerMessage>>,
    endpoint: OnceLock<ActorRef<EndpointMsg>>,
    /// Node addresses of sessions open now (dialled, or advertised by the peer).
    connected: Mutex<HashMap<ActorId, Vec<String>>>,
    /// Set once a seed accepted a connection: a node whose seeds answer but
    /// refuse it (another secret) does not form a cluster alone.
    reached_seed: AtomicBool,
    /// Peers' requests this node is answering now, and when the last arrived
    /// (a departing node answers until they stop: see [`Cluster::drain`]).
    answering: AtomicUsize,
    last_request: Mutex<Instant>,
    tls: Option<tls::NodeTls>,
}

#[derive(Default)]
struct Members {
    /// Peers that passed the hello.
    peers: BTreeMap<String, ()>,
    /// What placement hashes over: the peers, and this node unless it leaves.
    placement: Vec<String>,
}

/// Counts one forward when it ends: answered, failed, or cancelled (the
/// caller went away while the owner answered), so the forwarding node's
/// count matches the owners' `tachigo_cluster_forwards_received_total`.
struct ForwardRecord {
    started: Instant,
    outcome: &'static str,
}

impl Drop for ForwardRecord {
    fn drop(&mut self) {
        metrics::counter!("tachigo_cluster_forwarded_total", "outcome" => self.outcome)
            .increment(1);
        metrics::histogram!("tachigo_cluster_forward_seconds")
            .record(self.started.elapsed().as_secs_f64());
    }
}

/// A node session event, as ractor_cluster reports it.
enum SessionEvent {
    Opened(NodeServerSessionInformation),
    Authenticated(NodeServerSessionInformation),
    Ready(NodeServerSessionInformation),
    Disconnected(NodeServerSessionInformation),
}

struct Events(mpsc::UnboundedSender<SessionEvent>);

impl NodeEventSubscription for Events {
    fn node_session_opened(&self, ses: NodeServerSessionInformation) {
        let _ = self.0.send(SessionEvent::Opened(ses));
    }
    fn node_session_disconnected(&self, ses: NodeServerSessionInformation) {
        let _ = self.0.send(SessionEvent::Disconnected(ses));
    }
    fn node_session_authenticated(&self, ses: NodeServerSessionInformation) {
        let _ = self.0.send(SessionEvent::Authenticated(ses));
    }
    fn node_session_ready(&self, ses: NodeServerSessionInformation) {
        let _ = self.0.send(SessionEvent::Ready(ses));
    }
}

/// The node name of a ractor_cluster peer name (`name@host`).
fn node_of(full_name: &str) -> &str {
    full_name.split_once('@').map_or(full_name, |(n, _)| n)
}

impl Cluster {
    /// Starts this node's server, endpoint and seed dialling.
    pub(crate) async fn start(
        shared: &Arc<Shared>,
        settings: ClusterSettings,
    ) -> Result<Arc<Cluster>, EngineError> {
        // ractor_cluster binds in a child actor and only logs a failure: bind
        // here first so a taken address refuses the start.
        std::net::TcpListener::bind(settings.listen)
            .map_err(|e| EngineError::Config(format!("cluster.listen {}: {e}", settings.listen)))?;
        let tls = settings.tls.as_ref().map(tls::NodeTls::load).transpose()?;
        let (fatal, _) = watch::channel(None);
        let cluster = Arc::new(Cluster {
            shared: Arc::downgrade(shared),
            members: RwLock::new(Members::default()),
            joined: AtomicBool::new(settings.seeds.is_empty()),
            leaving: AtomicBool::new(false),
            fatal,
            node_server: OnceLock::new(),
            endpoint: OnceLock::new(),
            connected: Mutex::new(HashMap::new()),
            reached_seed: AtomicBool::new(false),
            answering: AtomicUsize::new(0),
            last_request: Mutex::new(Instant::now()),
            tls,
            settings,
        });
        cluster.recompute();
        let (endpoint, _) = Actor::spawn(
            None,
            Endpoint {
                cluster: Arc::downgrade(&cluster),
                node_name: cluster.settings.node_name.clone(),
            },
            (),
        )
        .await
        .map_err(|e| EngineError::Config(format!("cluster endpoint: {e}")))?;
        let _ = cluster.endpoint.set(endpoint);

        let listen = cluster.settings.listen;
        let encryption = match &cluster.tls {
            Some(t) => IncomingEncryptionMode::Tls(t.acceptor.clone()),
            None => IncomingEncryptionMode::Raw,
        };
        let server = NodeServer::new(
            listen.port(),
            cluster.settings.secret.clone(),
            cluster.settings.node_name.clone(),
            listen.ip().to_string(),
            Some(encryption),
            Some(NodeConnectionMode::Isolated),
        )
        .with_listen_addr(listen.ip())
        .with_max_inbound_frame_size((wire::MAX_MESSAGE_BYTES + 64 * 1024) as u64);
        let (node_server, _) = Actor::spawn(None, server, ())
            .await
            .map_err(|e| EngineError::Config(format!("cluster node server: {e}")))?;
        let (events, receive) = mpsc::unbounded_channel();
        node_server
            .cast(NodeServerMessage::SubscribeToEvents {
                id: "tachigo.membership".into(),
                subscription: Box::new(Events(events)),
            })
            .map_err(|e| EngineError::Config(format!("cluster node server: {e}")))?;
        let _ = cluster.node_server.set(node_server);
        tokio::spawn(run_events(Arc::downgrade(&cluster), receive));
        tokio::spawn(dial_seeds(Arc::downgrade(&cluster)));
        tokio::spawn(join_deadline(Arc::downgrade(&cluster)));
        tracing::info!(node = %cluster.settings.node_name, %listen, seeds = ?cluster.settings.seeds,
            tls = cluster.tls.is_some(), "cluster node started");
        Ok(cluster)
    }

    pub(crate) fn is_joined(&self) -> bool {
        self.joined.load(Ordering::Acquire)
    }

    pub(crate) fn fatal(&self) -> watch::Receiver<Option<String>> {
        self.fatal.subscribe()
    }

    /// The member to forward a request for `user_id` to, or `None` to
    /// answer it here. A request already forwarded twice is answered here.
    pub(crate) fn route(&self, user_id: &str, hops: u8) -> Option<String> {
        if hops >= 2 {
            return None;
        }
        let members = self.members.read().expect("members lock");
        let owner = placement::owner(user_id, &members.placement)?;
        (owner != self.settings.node_name).then(|| owner.to_string())
    }

    /// The endpoint of `node` as this node sees it through ractor_cluster.
    fn endpoint_of(&self, node: &str) -> Option<ActorRef<EndpointMsg>> {
        ractor::pg::get_members(&group_of(node))
            .into_iter()
            .find(|cell| !cell.get_id().is_local())
            .map(ActorRef::from)
    }

    /// Sends one request to `node` and waits for its reply, at most the
    /// forward timeout; any failure is [`EngineError::Unavailable`].
    async fn call(
        &self,
        node: &str,
        request: &ClusterRequest,
    ) -> Result<ClusterReply, EngineError> {
        let endpoint = self.endpoint_of(node).ok_or(EngineError::Unavailable)?;
        let bytes = wire::encode(request);
        let outcome = endpoint
            .call(
                |port| EndpointMsg::Call(bytes, port),
                Some(self.settings.forward_timeout),
            )
            .await;
        match outcome {
            Ok(CallResult::Success(reply)) => wire::decode::<ClusterReply>(&reply).map_err(|e| {
                tracing::warn!(peer = node, error = %e, "a peer's reply could not be read");
                EngineError::Unavailable
            }),
            Ok(CallResult::Timeout) => {
                tracing::warn!(peer = node, timeout = ?self.settings.forward_timeout, "a peer did not answer in time");
                Err(EngineError::Unavailable)
            }
            Ok(CallResult::SenderError) | Err(_) => Err(EngineError::Unavailable),
        }
    }

    /// Forwards a request for `user_id` to its owner `node`.
    pub(crate) async fn forward(
        &self,
        node: &str,
        user_id: &str,
        request: UserRequest,
        hops: u8,
    ) -> Result<UserReply, EngineError> {
        let mut record = ForwardRecord {
            started: Instant::now(),
            outcome: "cancelled",
        };
        let message = ClusterRequest::Ask {
            user_id: user_id.to_string(),
            hops: hops + 1,
            request,
        };
        let result = match self.call(node, &message).await {
            Ok(ClusterReply::Answer(answer)) => answer,
            Ok(ClusterReply::Refused(why)) => {
                tracing::warn!(peer = node, why, "a peer refused a forwarded request");
                Err(EngineError::Unavailable)
            }
            Ok(_) => Err(EngineError::Unavailable),
            Err(e) => Err(e),
        };
        record.outcome = match &result {
            Err(EngineError::Unavailable) => "failed",
            _ => "answered",
        };
        result
    }

    /// Answers one encoded request from a peer.
    pub(crate) async fn answer(self: &Arc<Self>, bytes: &[u8]) -> Vec<u8> {
        *self.last_request.lock().expect("last request lock") = Instant::now();
        self.answering.fetch_add(1, Ordering::AcqRel);
        let reply = self.answer_decoded(bytes).await;
        self.answering.fetch_sub(1, Ordering::AcqRel);
        reply
    }

    async fn answer_decoded(self: &Arc<Self>, bytes: &[u8]) -> Vec<u8> {
        let reply = match wire::decode::<ClusterRequest>(bytes) {
            Err(why) => {
                metrics::counter!("tachigo_cluster_messages_refused_total").increment(1);
                tracing::warn!(why, "refused a cluster message");
                ClusterReply::Refused(why)
            }
            Ok(ClusterRequest::Hello {
                node,
                digest,
                settings,
            }) => {
                if digest != self.settings.digest {
                    self.refuse_settings(&node, &settings, "it connected");
                }
                ClusterReply::Hello {
                    node: self.settings.node_name.clone(),
                    digest: self.settings.digest,
                    settings: self.settings.shared_settings.clone(),
                }
            }
            Ok(ClusterRequest::Ask {
                user_id,
                hops,
                request,
            }) => match self.shared.upgrade() {
                Some(shared) => {
                    metrics::counter!("tachigo_cluster_forwards_received_total").increment(1);
                    ClusterReply::Answer(shared.ask(&user_id, request, hops).await)
                }
                None => ClusterReply::Answer(Err(EngineError::Unavailable)),
            },
            Ok(ClusterRequest::Leaving { node }) => {
                tracing::info!(peer = %node, "a peer is leaving the cluster");
                self.remove_peer(&node);
                ClusterReply::Ack
            }
        };
        wire::encode(&reply)
    }

    fn refuse_settings(&self, node: &str, theirs: &[String], when: &str) {
        let differences = settings::differences(&self.settings.shared_settings, theirs);
        metrics::counter!("tachigo_cluster_peers_refused_total", "reason" => "settings")
            .increment(1);
        tracing::error!(peer = %node, when, ?differences,
            "refused a peer whose shared settings differ from this node's; every node behind one load balancer needs the same public_url, trusted_origins and cookie settings");
    }

    /// Greets a peer whose node session is ready; a peer whose settings
    /// match becomes a member.
    async fn greet(self: Arc<Self>, node: String) {
        let mut gone_since: Option<Instant> = None;
        loop {
            if self.leaving.load(Ordering::Acquire)
                || self
                    .members
                    .read()
                    .expect("members lock")
                    .peers
                    .contains_key(&node)
            {
                return;
            }
            if self.endpoint_of(&node).is_none() {
                // The session closed (or its endpoint is not synchronised yet).
                let since = *gone_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= self.settings.join_timeout {
                    tracing::warn!(peer = %node, "a peer's endpoint never appeared; not greeting it");
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            gone_since = None;
            let hello = ClusterRequest::Hello {
                node: self.settings.node_name.clone(),
                digest: self.settings.digest,
                settings: self.settings.shared_settings.clone(),
            };
            match self.call(&node, &hello).await {
                Ok(ClusterReply::Hello {
                    node: name,
                    digest,
                    settings,
                }) => {
                    if name != node {
                        tracing::warn!(peer = %node, says = %name, "a peer answered with another node's name");
                        return;
                    }
                    if digest != self.settings.digest {
                        self.refuse_settings(&node, &settings, "this node connected");
                        if !self.is_joined() {
                            let _ = self.fatal.send(Some(format!(
                                "peer {node} has other shared settings ({}); every node needs the same public_url, trusted_origins and cookie settings",
                                settings::differences(&self.settings.shared_settings, &settings).join("; ")
                            )));
                        }
                        return;
                    }
                    self.add_peer(&node);
                    return;
                }
                Ok(_) | Err(_) => {
                    tracing::info!(peer = %node, "a peer did not answer the hello yet; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    fn add_peer(&self, node: &str) {
        {
            let mut members = self.members.write().expect("members lock");
            if members.peers.insert(node.to_string(), ()).is_some() {
                return;
            }
        }
        tracing::info!(peer = %node, "a peer joined the cluster");
        self.joined.store(true, Ordering::Release);
        self.recompute();
    }

    fn remove_peer(&self, node: &str) {
        {
            let mut members = self.members.write().expect("members lock");
            if members.peers.remove(node).is_none() {
                return;
            }
        }
        tracing::info!(peer = %node, "a peer left the cluster");
        self.recompute();
    }

    /// Placement changed: passivates the live actors of users this node no
    /// longer owns (their next request activates them on the owner).
    fn recompute(&self) {
        let count = {
            let mut members = self.members.write().expect("members lock");
            let mut placement: Vec<String> = members.peers.keys().cloned().collect();
            if !self.leaving.load(Ordering::Acquire) || placement.is_empty() {
                placement.push(self.settings.node_name.clone());
            }
            placement.sort();
            members.placement = placement;
            members.placement.len()
        };
        metrics::gauge!("tachigo_cluster_members").set(count as f64);
        if let Some(shared) = self.shared.upgrade() {
            let moved = shared
                .router
                .passivate_where(|user_id| self.route(user_id, 0).is_some());
            if moved > 0 {
                metrics::counter!("tachigo_cluster_activations_moved_total")
                    .increment(moved as u64);
                tracing::info!(
                    moved,
                    members = count,
                    "membership changed; passivated the users that moved"
                );
            }
        }
    }

    /// Graceful departure: routes every user to the other members, tells
    /// them, and passivates this node's actors. Requests that still reach
    /// this node are forwarded, so none fails.
    pub(crate) async fn leave(&self) {
        self.leaving.store(true, Ordering::Release);
        self.recompute();
        let peers: Vec<String> = self
            .members
            .read()
            .expect("members lock")
            .peers
            .keys()
            .cloned()
            .collect();
        let leaving = ClusterRequest::Leaving {
            node: self.settings.node_name.clone(),
        };
        let told = futures::future::join_all(peers.iter().map(|p| self.call(p, &leaving))).await;
        let acknowledged = told
            .iter()
            .filter(|r| matches!(r, Ok(ClusterReply::Ack)))
            .count();
        tracing::info!(peers = peers.len(), acknowledged, "left the cluster");
    }

    /// After [`Cluster::leave`]: waits until this node answers no peer's
    /// request and none arrived for a moment (a peer may have routed one here
    /// just before it heard of the departure), at most the forward timeout.
    pub(crate) async fn drain(&self) {
        const QUIET: Duration = Duration::from_millis(250);
        let deadline = Instant::now() + self.settings.forward_timeout;
        while Instant::now() < deadline {
            let quiet = self
                .last_request
                .lock()
                .expect("last request lock")
                .elapsed()
                >= QUIET;
            if quiet && self.answering.load(Ordering::Acquire) == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tracing::warn!("stopping with peers' requests still in flight");
    }

    /// Stops the node server (its sessions close) and the endpoint.
    pub(crate) fn stop(&self) {
        if let Some(server) = self.node_server.get() {
            server.stop(None);
        }
        if let Some(endpoint) = self.endpoint.get() {
            endpoint.stop(None);
        }
    }

    fn is_connected(&self, address: &str) -> bool {
        self.connected
            .lock()
            .expect("connected lock")
            .values()
            .any(|addresses| addresses.iter().any(|a| a == address))
    }
}

/// Follows node sessions: greets ready peers, drops members whose session
/// closed, and logs sessions that closed before they authenticated.
async fn run_events(cluster: Weak<Cluster>, mut events: mpsc::UnboundedReceiver<SessionEvent>) {
    let mut authenticated: HashSet<ActorId> = HashSet::new();
    let mut refusals = RefusalLog::default();
    while let Some(event) = events.recv().await {
        let Some(cluster) = cluster.upgrade() else {
            return;
        };
        match event {
            SessionEvent::Opened(ses) => {
                if !ses.is_server {
                    cluster
                        .connected
                        .lock()
                        .expect("connected lock")
                        .insert(ses.actor.get_id(), vec![ses.peer_addr.clone()]);
                }
            }
            SessionEvent::Authenticated(ses) => {
                authenticated.insert(ses.actor.get_id());
            }
            SessionEvent::Ready(ses) => {
                let Some(name) = ses.peer_name.as_ref() else {
                    continue;
                };
                let node = node_of(&name.name).to_string();
                cluster
                    .connected
                    .lock()
                    .expect("connected lock")
                    .entry(ses.actor.get_id())
                    .or_default()
                    .push(name.connection_string.clone());
                tokio::spawn(cluster.clone().greet(node));
            }
            SessionEvent::Disconnected(ses) => {
                let id = ses.actor.get_id();
                cluster
                    .connected
                    .lock()
                    .expect("connected lock")
                    .remove(&id);
                if !authenticated.remove(&id) {
                    metrics::counter!("tachigo_cluster_sessions_refused_total").increment(1);
                    refusals.record(&ses.peer_addr);
                    continue;
                }
                let Some(name) = ses.peer_name.as_ref() else {
                    continue;
                };
                let node = node_of(&name.name).to_string();
                let cluster = cluster.clone();
                // A duplicate session to the same peer may close while
                // another stays: the peer goes only if its endpoint did.
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    if cluster.endpoint_of(&node).is_none() {
                        cluster.remove_peer(&node);
                    }
                });
            }
        }
    }
}

/// Logs node sessions that closed before they authenticated: the first at
/// once, then at most one line a minute with how many there were, so a
/// stranger dialling the node port cannot grow the log without bound.
#[derive(Default)]
struct RefusalLog {
    last: Option<Instant>,
    unlogged: u64,
}

impl RefusalLog {
    const EVERY: Duration = Duration::from_secs(60);

    fn record(&mut self, peer_addr: &str) {
        if self.last.is_some_and(|t| t.elapsed() < Self::EVERY) {
            self.unlogged += 1;
            return;
        }
        tracing::warn!(peer_addr, also_since_last_line = self.unlogged,
            "a node session closed before it authenticated: a wrong cluster secret, another build, or not a tachigo-auth node");
        self.last = Some(Instant::now());
        self.unlogged = 0;
    }
}

/// Dials every seed this node has no session with, until the node stops.
async fn dial_seeds(cluster: Weak<Cluster>) {
    let mut failing: HashSet<String> = HashSet::new();
    loop {
        let Some(c) = cluster.upgrade() else {
            return;
        };
        if c.leaving.load(Ordering::Acquire) {
            return;
        }
        let Some(server) = c.node_server.get().cloned() else {
            return;
        };
        let own = c.settings.listen.to_string();
        for seed in &c.settings.seeds {
            let address = resolve(seed).unwrap_or_else(|| seed.clone());
            if address == own || c.is_connected(&address) || c.is_connected(seed) {
                continue;
            }
            let dialled = match &c.tls {
                Some(t) => ractor_cluster::client_connect_enc(
                    &server,
                    address.as_str(),
                    t.connector.clone(),
                    t.server_name.clone(),
                )
                .await
                .map_err(|e| e.to_string()),
                None => ractor_cluster::client_connect(&server, address.as_str())
                    .await
                    .map_err(|e| e.to_string()),
            };
            match dialled {
                Ok(()) => {
                    failing.remove(seed);
                    c.reached_seed.store(true, Ordering::Release);
                    // Counted as connected until its session reports in.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => {
                    if failing.insert(seed.clone()) {
                        tracing::info!(seed, error = %e, "cannot reach a seed yet; retrying");
                    }
                }
            }
        }
        drop(c);
        tokio::time::sleep(SEED_RETRY).await;
    }
}

fn resolve(seed: &str) -> Option<String> {
    use std::net::ToSocketAddrs;
    seed.to_socket_addrs()
        .ok()?
        .next()
        .map(|a: SocketAddr| a.to_string())
}

/// A node no seed accepted within the join timeout forms a cluster alone.
async fn join_deadline(cluster: Weak<Cluster>) {
    let timeout = match cluster.upgrade() {
        Some(c) => c.settings.join_timeout,
        None => return,
    };
    tokio::time::sleep(timeout).await;
    let Some(c) = cluster.upgrade() else {
        return;
    };
    if c.is_joined() {
        return;
    }
    if c.reached_seed.load(Ordering::Acquire) {
        tracing::error!(timeout = ?timeout, seeds = ?c.settings.seeds,
            "seeds accept connections but no peer accepted this node (check cluster.secret_file and the shared settings); not ready until one does");
        return;
    }
    c.joined.store(true, Ordering::Release);
    // The first node of a cluster starting up says this every time: INFO.
    tracing::info!(timeout = ?timeout, seeds = ?c.settings.seeds,
        "no seed answered within the join timeout; this node serves alone until peers connect");
}
