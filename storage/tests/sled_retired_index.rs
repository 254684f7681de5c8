//! A sled database written by an earlier build kept retired refresh-token
//! hashes in an index of their own (hash → session id). Opening it with this
//! build moves them to their families (see `sled_store::retired_tokens`):
//! every one is still recognised, exported and swept, and the old index is gone.

use std::path::Path;
use std::time::Duration;

use tachigo_storage::sled_store::retired_tokens::LEGACY_INDEX;
use tachigo_storage::sled_store::SledStore;
use tachigo_storage::{FamilyRecord, RotationOutcome, SessionRecord, Store, Surface, TokenHash};

const T0: i64 = 1_700_000_000_000;

fn hash(n: u8) -> TokenHash {
    [n; 32]
}

fn open(path: &Path) -> SledStore {
    SledStore::open(path, true).expect("opening the store")
}

async fn close(store: SledStore) {
    let watch = store.release_watch();
    drop(store);
    assert!(watch.wait(Duration::from_secs(10)).await, "released");
}

fn session(id: &str) -> SessionRecord {
    SessionRecord {
        id: id.into(),
        user_id: "u".into(),
        surface: Surface::Dashboard,
        token_hash: None,
        created_at: T0,
        updated_at: T0,
        expires_at: T0 + 60_000,
        absolute_expires_at: T0 + 60_000,
        user_agent: None,
        ip: None,
        context: None,
    }
}

fn family(id: &str, current: TokenHash, generation: u32) -> FamilyRecord {
    FamilyRecord {
        session_id: id.into(),
        user_id: "u".into(),
        current,
        generation,
        previous: None,
        revoked: None,
        last_rotated_at: T0,
        idle_expires_at: T0 + 60_000,
        absolute_expires_at: T0 + 60_000,
    }
}

fn tree_names(path: &Path) -> Vec<String> {
    let db = sled::open(path).expect("opening sled itself");
    let names = db
        .tree_names()
        .iter()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    drop(db);
    names
}

#[tokio::test]
async fn the_old_index_moves_to_the_families_when_the_database_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");

    // A database with one family, as any build writes it.
    let store = open(&path);
    let f0 = family("s", hash(1), 0);
    store.put_session(&session("s"), Some(&f0)).await.unwrap();
    close(store).await;

    // What an earlier build's rotations left: the index, hash → session id,
    // for the live family and for one that is gone.
    {
        let db = sled::open(&path).unwrap();
        let legacy = db.open_tree(LEGACY_INDEX).unwrap();
        legacy.insert(hash(70), "s").unwrap();
        legacy.insert(hash(71), "s").unwrap();
        legacy.insert(hash(80), "gone").unwrap();
        db.flush().unwrap();
    }
    assert!(tree_names(&path).contains(&LEGACY_INDEX.to_string()));

    let store = open(&path);
    for (session_id, n) in [("s", 70), ("s", 71), ("gone", 80)] {
        assert!(
            store.was_retired_by(session_id, &hash(n)).await.unwrap(),
            "{n} of {session_id}"
        );
    }
    assert!(!store.was_retired_by("gone", &hash(70)).await.unwrap());
    // Rotations go on from there; the old hashes stay known.
    let f1 = family("s", hash(2), 1);
    assert_eq!(
        store.rotate_family(&f0, &f1, &f0.current).await.unwrap(),
        RotationOutcome::Committed
    );
    let exported: Vec<(TokenHash, String)> = store.export().await.unwrap().retired_tokens;
    assert_eq!(
        exported,
        vec![
            (hash(1), "s".to_string()),
            (hash(70), "s".to_string()),
            (hash(71), "s".to_string()),
            (hash(80), "gone".to_string()),
        ]
    );
    // The sweep drops what belongs to no family.
    store.sweep_expired_sessions(T0).await.unwrap();
    assert!(!store.was_retired_by("gone", &hash(80)).await.unwrap());
    assert!(store.was_retired_by("s", &hash(70)).await.unwrap());
    close(store).await;

    assert!(!tree_names(&path).contains(&LEGACY_INDEX.to_string()));
    let store = open(&path);
    assert!(store.was_retired_by("s", &hash(71)).await.unwrap());
    assert!(store.was_retired_by("s", &hash(1)).await.unwrap());
    close(store).await;
}
