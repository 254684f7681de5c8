//! The one place that turns records into bytes and back.
//!
//! A stored value is one schema-version byte followed by the bincode 2 (serde,
//! standard config) encoding of the record. A later schema bumps
//! [`SCHEMA_VERSION`] and migrates older versions here, on read, so no other
//! module ever sees an old layout.

use serde::{de::DeserializeOwned, Serialize};

use crate::StorageError;

/// The schema version written by this build.
pub const SCHEMA_VERSION: u8 = 1;

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encodes a record with the current schema version in front.
pub fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.push(SCHEMA_VERSION);
    bincode::serde::encode_into_std_write(record, &mut out, config())
        .expect("encoding into a Vec cannot fail");
    out
}

/// Decodes a record, refusing versions this build does not know. Bytes after
/// the record are ignored (a backend may keep data of its own there).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StorageError> {
    decode_prefix(bytes).map(|(record, _)| record)
}

/// As [`decode`], also returning how many bytes the record took (its version
/// byte included): what follows is not part of it.
pub fn decode_prefix<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, usize), StorageError> {
    let (&version, body) = bytes
        .split_first()
        .ok_or_else(|| StorageError::Corrupt("empty record".into()))?;
    match version {
        SCHEMA_VERSION => bincode::serde::decode_from_slice(body, config())
            .map(|(record, used)| (record, used + 1))
            .map_err(|e| StorageError::Corrupt(e.to_string())),
        other => Err(StorageError::Corrupt(format!(
            "record has schema version {other}, this build reads version {SCHEMA_VERSION}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::UserRecord;

    #[test]
    fn round_trips_and_refuses_unknown_versions() {
        let user = UserRecord {
            id: "u1".into(),
            email: Some("a@example.com".into()),
            roles: vec!["admin".into()],
            ..UserRecord::default()
        };
        let bytes = encode(&user);
        assert_eq!(bytes[0], SCHEMA_VERSION);
        let back: UserRecord = decode(&bytes).unwrap();
        assert_eq!(back, user);

        let mut future = bytes.clone();
        future[0] = SCHEMA_VERSION + 1;
        assert!(matches!(
            decode::<UserRecord>(&future),
            Err(StorageError::Corrupt(_))
        ));
        assert!(matches!(
            decode::<UserRecord>(&[]),
            Err(StorageError::Corrupt(_))
        ));
    }

    #[test]
    fn a_prefix_decode_says_where_the_record_ends() {
        let user = UserRecord {
            id: "u1".into(),
            ..UserRecord::default()
        };
        let mut bytes = encode(&user);
        let len = bytes.len();
        bytes.extend_from_slice(&[7u8; 64]);
        let (back, used): (UserRecord, usize) = decode_prefix(&bytes).unwrap();
        assert_eq!((back, used), (user.clone(), len));
        assert_eq!(decode::<UserRecord>(&bytes).unwrap(), user);
    }
}
