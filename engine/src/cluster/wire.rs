//! What crosses nodes, and how: each message is one [`ClusterRequest`] or
//! [`ClusterReply`], encoded with bincode (serde) behind a two-byte version.
//! A node refuses a version it does not know, and any message over
//! [`MAX_MESSAGE_BYTES`], with a clear error and no other effect.

use serde::{Deserialize, Serialize};

use crate::messages::{UserReply, UserRequest};
use crate::EngineError;

/// The version of the messages below. A change to any of them (or to a type
/// they carry) is a new version; a node answers only its own.
pub(crate) const WIRE_VERSION: u16 = 1;

/// The largest message a node decodes (and the frame limit it gives
/// ractor_cluster, with room for its own framing).
pub(crate) const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// A message to another node's endpoint. Built to be encoded at once, so
/// its variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ClusterRequest {
    /// Sent once a node session is ready: who the sender is and the digest of
    /// the settings every node must share (with the settings, to name any
    /// difference in the log).
    Hello {
        node: String,
        digest: [u8; 32],
        settings: Vec<String>,
    },
    /// A request for the actor of `user_id`, from a node that found the
    /// receiver its owner. `hops` counts forwards so far (a request is
    /// forwarded at most twice).
    Ask {
        user_id: String,
        hops: u8,
        request: UserRequest,
    },
    /// The sender is shutting down: stop routing users to it.
    Leaving { node: String },
}

/// The answer to a [`ClusterRequest`] (decoded and taken apart at once).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ClusterReply {
    Hello {
        node: String,
        digest: [u8; 32],
        settings: Vec<String>,
    },
    Answer(Result<UserReply, EngineError>),
    Ack,
    /// The message could not be read (its version, size or bytes).
    Refused(String),
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_MESSAGE_BYTES>()
}

pub(crate) fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    let mut bytes = WIRE_VERSION.to_le_bytes().to_vec();
    // Encoding into a Vec fails only past the limit, which no message of
    // ours reaches (requests and replies are bounded by the contracts).
    bincode::serde::encode_into_std_write(message, &mut bytes, config())
        .expect("a cluster message within the size limit");
    bytes
}

pub(crate) fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, String> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(format!(
            "a cluster message of {} bytes is over the limit",
            bytes.len()
        ));
    }
    let Some((version, body)) = bytes.split_first_chunk::<2>() else {
        return Err("a cluster message without a version".into());
    };
    let version = u16::from_le_bytes(*version);
    if version != WIRE_VERSION {
        return Err(format!(
            "cluster message version {version}; this node speaks {WIRE_VERSION}"
        ));
    }
    match bincode::serde::decode_from_slice(body, config()) {
        Ok((message, read)) if read == body.len() => Ok(message),
        Ok(_) => Err("a cluster message with trailing bytes".into()),
        Err(e) => Err(format!("an unreadable cluster message: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_survives_the_round_trip() {
        let request = ClusterRequest::Leaving { node: "n1".into() };
        let back: ClusterRequest = decode(&encode(&request)).unwrap();
        assert!(matches!(back, ClusterRequest::Leaving { node } if node == "n1"));
    }

    #[test]
    fn another_version_garbage_and_truncation_are_refused() {
        let mut bytes = encode(&ClusterRequest::Leaving { node: "n1".into() });
        let truncated = &bytes[..bytes.len() - 1];
        assert!(decode::<ClusterRequest>(truncated).is_err());
        assert!(decode::<ClusterRequest>(&[]).is_err());
        assert!(decode::<ClusterRequest>(&[1, 0, 0xff, 0xff, 0xff]).is_err());
        bytes[0] = 2;
        let e = decode::<ClusterRequest>(&bytes).unwrap_err();
        assert!(e.contains("version 2"), "{e}");
        let huge = vec![0u8; MAX_MESSAGE_BYTES + 1];
        assert!(decode::<ClusterRequest>(&huge)
            .unwrap_err()
            .contains("over the limit"));
    }
}
