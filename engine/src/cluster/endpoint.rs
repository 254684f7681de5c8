//! The endpoint: one ractor actor per node, joined to the process group
//! `tachigo.endpoint.<node name>`, which ractor_cluster makes visible on every
//! peer. Other nodes send it [`EndpointMsg::Call`] with an encoded
//! [`ClusterRequest`](super::wire::ClusterRequest) and get the encoded reply
//! back on the same RPC. Each call is answered on its own task, so a slow
//! actor never holds up the endpoint.

use std::sync::Weak;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::RactorClusterMessage;

use super::Cluster;

/// The process group of `node`'s endpoint.
pub(crate) fn group_of(node: &str) -> String {
    format!("tachigo.endpoint.{node}")
}

#[derive(RactorClusterMessage)]
pub(crate) enum EndpointMsg {
    /// An encoded request; the reply port takes the encoded reply.
    #[rpc]
    Call(Vec<u8>, RpcReplyPort<Vec<u8>>),
}

pub(crate) struct Endpoint {
    pub(crate) cluster: Weak<Cluster>,
    pub(crate) node_name: String,
}

impl Actor for Endpoint {
    type Msg = EndpointMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        _: (),
    ) -> Result<(), ActorProcessingErr> {
        ractor::pg::join(group_of(&self.node_name), vec![myself.get_cell()]);
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        _state: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        let EndpointMsg::Call(bytes, reply) = message;
        let Some(cluster) = self.cluster.upgrade() else {
            return Ok(());
        };
        tokio::spawn(async move {
            let answer = cluster.answer(&bytes).await;
            let _ = reply.send(answer);
        });
        Ok(())
    }
}
