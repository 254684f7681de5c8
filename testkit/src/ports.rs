//! Loopback ports for servers a test starts in another process (PostgreSQL, an
//! SMTP server) or must name before they start (a public URL).
//!
//! Asking the kernel for port 0 and closing the socket hands out a port from
//! the ephemeral range, which every outgoing connection of the machine (a
//! database client, an HTTP client) also draws from: one of them can take it
//! before the server binds. These ports come from below that range instead,
//! never twice in one process, and are checked free when handed out.

use std::collections::HashSet;
use std::sync::Mutex;

/// The lowest port handed out.
const LOWEST: u16 = 15_000;

/// The first port of the kernel's ephemeral range (32768 when unreadable).
fn ephemeral_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .filter(|start| *start > LOWEST + 1_000)
        .unwrap_or(32_768)
}

/// A loopback port below the ephemeral range, free right now and not handed
/// out before by this process.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let end = ephemeral_start();
    let mut given = GIVEN.lock().expect("port registry");
    let given = given.get_or_insert_with(HashSet::new);
    for _ in 0..10_000 {
        let port = LOWEST + (rand_u16() % (end - LOWEST));
        if given.contains(&port) {
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.insert(port);
            return port;
        }
    }
    panic!("no free loopback port below {end}");
}

/// A random number without another dependency: the process's randomly seeded hasher.
fn rand_u16() -> u16 {
    use std::hash::{BuildHasher, RandomState};
    static STATE: std::sync::OnceLock<RandomState> = std::sync::OnceLock::new();
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    STATE.get_or_init(RandomState::new).hash_one(n) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_below_the_ephemeral_range_and_never_repeat() {
        let end = ephemeral_start();
        let ports: HashSet<u16> = (0..200).map(|_| free_port()).collect();
        assert_eq!(ports.len(), 200);
        assert!(ports.iter().all(|p| (LOWEST..end).contains(p)));
    }
}
