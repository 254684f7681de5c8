//! Pins the storage layer's durability and exclusivity promises: many concurrent
//! writers are all acknowledged through group commit; every acknowledged write is
//! there after the database is reopened, including after the writing process dies
//! without closing it; and a database that is open refuses a second opener with
//! `StorageError::Locked`. (The codec's refusal of unknown schema versions is
//! covered by the unit test in `codec.rs`.)

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tachigo_storage::sled_store::SledStore;
use tachigo_storage::{LinkedAccount, StorageError, Store, UserRecord};

const WRITERS: usize = 64;
const WRITES_PER_WRITER: usize = 50;

fn open(path: &Path) -> Result<SledStore, StorageError> {
    SledStore::open(path, true)
}

/// A user with a unique email and one linked account, so one write touches three trees.
fn user(writer: usize, n: usize) -> UserRecord {
    let id = format!("user-{writer:03}-{n:03}");
    UserRecord {
        id: id.clone(),
        email: Some(format!("{id}@example.com")),
        email_verified: true,
        name: Some(format!("Writer {writer} record {n}")),
        accounts: vec![LinkedAccount {
            provider: "twitch".into(),
            subject: id.clone(),
            email: None,
            linked_at: 1_700_000_000_000,
        }],
        created_at: 1_700_000_000_000,
        updated_at: 1_700_000_000_000,
        ..UserRecord::default()
    }
}

/// Asserts that `expected` is stored with its email and account indexes.
async fn assert_stored(store: &SledStore, expected: &UserRecord) {
    assert_eq!(
        store.user(&expected.id).await.unwrap().as_ref(),
        Some(expected),
        "user {} is stored",
        expected.id
    );
    let email = expected.email.as_deref().unwrap();
    assert_eq!(
        store.user_id_by_email(email).await.unwrap().as_deref(),
        Some(expected.id.as_str())
    );
    assert_eq!(
        store
            .user_id_by_account("twitch", &expected.id)
            .await
            .unwrap()
            .as_deref(),
        Some(expected.id.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_is_there_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let store = open(&path).unwrap();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for n in 0..WRITES_PER_WRITER {
                    store
                        .create_user(&user(w, n))
                        .await
                        .unwrap_or_else(|e| panic!("write {n} of writer {w} failed: {e}"));
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("a writer finished");
    }
    assert_eq!(
        store.user_count().await.unwrap(),
        (WRITERS * WRITES_PER_WRITER) as u64
    );
    // A unique index still refuses a duplicate after the storm.
    assert!(matches!(
        store.create_user(&user(0, 0)).await,
        Err(StorageError::EmailTaken)
    ));
    drop(store);

    let store = open(&path).expect("reopening after a clean close");
    assert_eq!(
        store.user_count().await.unwrap(),
        (WRITERS * WRITES_PER_WRITER) as u64
    );
    for w in 0..WRITERS {
        for n in 0..WRITES_PER_WRITER {
            assert_stored(&store, &user(w, n)).await;
        }
    }
}

const CRASH_DIR_VAR: &str = "TACHIGO_GROUP_COMMIT_CRASH_DIR";
/// The child process exits abruptly once this many writes were acknowledged,
/// with the other writers still in flight.
const ACKS_BEFORE_CRASH: usize = 1_000;
const CRASH_EXIT_CODE: i32 = 42;

/// In the child: writes from many tasks, reports each acknowledged write on stdout,
/// and exits without closing the database (no destructors, no final flush).
async fn write_until_crash(path: &Path) -> ! {
    use std::io::Write;
    let store = open(path).unwrap();
    let acked = Arc::new(AtomicUsize::new(0));
    for w in 0..WRITERS {
        let store = store.clone();
        let acked = acked.clone();
        tokio::spawn(async move {
            for n in 0..WRITES_PER_WRITER {
                let record = user(w, n);
                store.create_user(&record).await.unwrap();
                let mut out = std::io::stdout().lock();
                writeln!(out, "ACK {}", record.id).unwrap();
                out.flush().unwrap();
                if acked.fetch_add(1, Ordering::SeqCst) + 1 == ACKS_BEFORE_CRASH {
                    std::process::exit(CRASH_EXIT_CODE);
                }
            }
        });
    }
    std::future::pending().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_a_crash() {
    if let Some(path) = std::env::var_os(CRASH_DIR_VAR) {
        write_until_crash(Path::new(&path)).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "acknowledged_writes_survive_a_crash",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_DIR_VAR, &path)
        .output()
        .await
        .expect("running the writer process");
    assert_eq!(
        child.status.code(),
        Some(CRASH_EXIT_CODE),
        "the writer process should exit abruptly; stderr:\n{}",
        String::from_utf8_lossy(&child.stderr)
    );
    let stdout = String::from_utf8_lossy(&child.stdout);
    // The harness prints "test <name> ... " without a newline before the first ACK.
    let acked: HashSet<&str> = stdout
        .lines()
        .filter_map(|line| line.rsplit_once("ACK ").map(|(_, id)| id))
        .collect();
    assert!(
        acked.len() >= ACKS_BEFORE_CRASH,
        "only {} acknowledgements were reported",
        acked.len()
    );

    let store = open(&path).expect("reopening after the crash");
    for id in &acked {
        let (w, n) = id
            .strip_prefix("user-")
            .and_then(|rest| rest.split_once('-'))
            .map(|(w, n)| (w.parse().unwrap(), n.parse().unwrap()))
            .expect("an id this test wrote");
        assert_stored(&store, &user(w, n)).await;
    }
    assert!(store.user_count().await.unwrap() >= acked.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_database_refuses_a_second_opener() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let first = open(&path).unwrap();
    first.create_user(&user(0, 0)).await.unwrap();

    let second = tokio::task::spawn_blocking({
        let path = path.clone();
        move || open(&path)
    })
    .await
    .unwrap();
    match second {
        Err(StorageError::Locked { dir }) => {
            assert!(dir.contains("db"), "the error names the directory: {dir}")
        }
        Err(other) => panic!("expected Locked, got {other}"),
        Ok(_) => panic!("the same database was opened twice"),
    }
    // The first handle is unaffected.
    first.create_user(&user(0, 1)).await.unwrap();
    drop(first);

    let reopened = tokio::task::spawn_blocking(move || open(&path))
        .await
        .unwrap()
        .expect("opening once the first handle is closed");
    assert_stored(&reopened, &user(0, 0)).await;
    assert_stored(&reopened, &user(0, 1)).await;
}
