//! Connections no client can hold: one that trickles its request head is cut
//! at `limits.header_read_timeout`, one that never sends a request (or idles
//! between requests) at `limits.keep_alive_idle_timeout`, and at most
//! `limits.max_connections` are open at once — while a normal client is served
//! all along.

mod support;

use std::time::{Duration, Instant};

use support::{plain_client, TestServer};
use tachigo_engine::config::ConfigDuration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Waits (at most `limit`) for the server to close `stream`; true if it did.
async fn closed_by_server(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // A 408 or similar before the close: keep reading to the end.
            Ok(Ok(_)) => continue,
        }
    }
}

async fn healthz_ok(server: &TestServer) {
    let r = plain_client()
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_silent_clients_are_cut_off_while_others_are_served() {
    let mut server = TestServer::start_with(|c| {
        c.limits.header_read_timeout = ConfigDuration::from_secs(1);
        c.limits.keep_alive_idle_timeout = ConfigDuration::from_secs(2);
    })
    .await;
    let addr = server.running().addrs.main;

    // 200 clients trickling a request head, one byte every 200 ms.
    let mut tricklers = Vec::new();
    for _ in 0..200 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        tricklers.push(s);
    }
    // 50 that connect and never send a byte.
    let mut silent = Vec::new();
    for _ in 0..50 {
        silent.push(TcpStream::connect(addr).await.unwrap());
    }
    let trickle = async {
        for _ in 0..30 {
            for s in tricklers.iter_mut() {
                let _ = s.write_all(b"X").await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let served_meanwhile = async {
        for _ in 0..5 {
            healthz_ok(&server).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    // The trickle runs 6 s, past both limits; a normal client is served throughout.
    tokio::join!(trickle, served_meanwhile);

    for (i, s) in tricklers.iter_mut().enumerate() {
        assert!(
            closed_by_server(s, Duration::from_secs(5)).await,
            "trickling client {i} is still connected"
        );
    }
    for (i, s) in silent.iter_mut().enumerate() {
        assert!(
            closed_by_server(s, Duration::from_secs(5)).await,
            "silent client {i} is still connected"
        );
    }
    healthz_ok(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_its_last_answer() {
    let mut server = TestServer::start_with(|c| {
        c.limits.header_read_timeout = ConfigDuration::from_secs(10);
        c.limits.keep_alive_idle_timeout = ConfigDuration::from_secs(1);
    })
    .await;
    let mut s = TcpStream::connect(server.running().addrs.main)
        .await
        .unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    // Kept alive, then closed once idle past the limit.
    assert!(closed_by_server(&mut s, Duration::from_secs(5)).await);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_max_connections_are_served_at_once() {
    let mut server = TestServer::start_with(|c| {
        c.limits.max_connections = 4;
        c.limits.keep_alive_idle_timeout = ConfigDuration::from_secs(30);
        c.limits.header_read_timeout = ConfigDuration::from_secs(30);
    })
    .await;
    let addr = server.running().addrs.main;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(s);
    }
    // A fifth client waits in the accept queue: not answered while four are open.
    let fifth = tokio::spawn({
        let url = server.url("/healthz");
        async move { plain_client().get(url).send().await.map(|r| r.status()) }
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!fifth.is_finished(), "a fifth connection was served");
    // One of the four leaves: the fifth is served.
    drop(held.pop());
    let status = tokio::time::timeout(Duration::from_secs(10), fifth)
        .await
        .expect("served once a slot freed")
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
    drop(held);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_never_arrives_is_answered_408_and_the_connection_closed() {
    let mut server = TestServer::start().await;
    let mut s = TcpStream::connect(server.running().addrs.main)
        .await
        .unwrap();
    s.write_all(
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"email\":",
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the connection stayed open");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_timeout"), "{answer}");
    server.stop().await;
}

/// The head clock runs for every request head, not only a connection's first:
/// a keep-alive client that trickles its second head is cut at
/// `header_read_timeout` (long before the idle limit), while one that merely
/// sits idle between requests keeps its connection until the idle limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_head_is_bounded_and_idle_keep_alive_is_not_a_slow_head() {
    let mut server = TestServer::start_with(|c| {
        c.limits.header_read_timeout = ConfigDuration::from_secs(1);
        c.limits.keep_alive_idle_timeout = ConfigDuration::from_secs(30);
    })
    .await;
    let addr = server.running().addrs.main;
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

    let mut trickler = TcpStream::connect(addr).await.unwrap();
    let mut idler = TcpStream::connect(addr).await.unwrap();
    for s in [&mut trickler, &mut idler] {
        s.write_all(request).await.unwrap();
        let mut buf = [0u8; 1024];
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    }

    let started = Instant::now();
    trickler
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .unwrap();
    let trickle = async {
        for _ in 0..20 {
            if trickler.write_all(b"X").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    trickle.await;
    assert!(
        closed_by_server(&mut trickler, Duration::from_secs(3)).await,
        "the trickled second head was not cut"
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "cut only after {:?}",
        started.elapsed()
    );

    // Idle for three head timeouts, with no byte sent: still open, and serving.
    idler.write_all(request).await.unwrap();
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), idler.read(&mut buf))
        .await
        .expect("an answer on the idle connection")
        .unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    server.stop().await;
}
