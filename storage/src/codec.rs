//! The one place that turns records into bytes and back.
//!
//! A stored value is one schema-version byte followed by the bincode 2 (serde,
//! standard config) encoding of the record. A later schema bumps
//! [`SCHEMA_VERSION`] and migrates older versions here, on read, so no other
//! module ever sees an old layout.
//!
//! | version | change |
//! |---|---|
//! | 1 | first layout |
//! | 2 | OAuth states name the session that started a link flow (`link_session_id`); every other record is unchanged |

use serde::{de::DeserializeOwned, Serialize};

use crate::StorageError;

/// The schema version written by this build.
pub const SCHEMA_VERSION: u8 = 2;

/// The oldest version this build reads.
const OLDEST_READABLE: u8 = 1;

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

fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, StorageError> {
    bincode::serde::decode_from_slice(body, config())
        .map(|(record, _)| record)
        .map_err(|e| StorageError::Corrupt(e.to_string()))
}

fn split_version(bytes: &[u8]) -> Result<(u8, &[u8]), StorageError> {
    let (&version, body) = bytes
        .split_first()
        .ok_or_else(|| StorageError::Corrupt("empty record".into()))?;
    if !(OLDEST_READABLE..=SCHEMA_VERSION).contains(&version) {
        return Err(StorageError::Corrupt(format!(
            "record has schema version {version}, this build reads versions \
             {OLDEST_READABLE} to {SCHEMA_VERSION}"
        )));
    }
    Ok((version, body))
}

/// Decodes a record whose layout is the same in every readable version,
/// refusing versions this build does not know.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StorageError> {
    let (_, body) = split_version(bytes)?;
    decode_body(body)
}

/// Decodes a record whose layout changed at version `changed_in`: older bytes
/// are read as `Old` and converted.
pub fn decode_migrating<T: DeserializeOwned, Old: DeserializeOwned + Into<T>>(
    bytes: &[u8],
    changed_in: u8,
) -> Result<T, StorageError> {
    let (version, body) = split_version(bytes)?;
    if version < changed_in {
        decode_body::<Old>(body).map(Into::into)
    } else {
        decode_body(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::UserRecord;

    #[test]
    fn version_one_oauth_states_are_migrated_on_read() {
        use crate::records::{OAuthStateRecord, OAuthStateRecordV1, OAUTH_STATE_LAYOUT_VERSION};
        let v1 = OAuthStateRecordV1 {
            provider: "google".into(),
            pkce_verifier: "v".into(),
            nonce: None,
            binding_hash: [7; 32],
            callback_url: "https://app/cb".into(),
            error_callback_url: "https://app/err".into(),
            new_user_callback_url: None,
            link_user_id: Some("u1".into()),
            created_at: 1,
            expires_at: 2,
        };
        let mut bytes = vec![1u8];
        bincode::serde::encode_into_std_write(&v1, &mut bytes, config()).unwrap();
        let read: OAuthStateRecord =
            decode_migrating::<_, OAuthStateRecordV1>(&bytes, OAUTH_STATE_LAYOUT_VERSION).unwrap();
        assert_eq!(read.link_user_id.as_deref(), Some("u1"));
        assert_eq!(read.link_session_id, None);
        let current = OAuthStateRecord {
            link_session_id: Some("s1".into()),
            ..read
        };
        let again: OAuthStateRecord = decode_migrating::<_, OAuthStateRecordV1>(
            &encode(&current),
            OAUTH_STATE_LAYOUT_VERSION,
        )
        .unwrap();
        assert_eq!(again, current);
    }

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
}
