//! The master's port against slow HTTP clients (slowloris): a request whose
//! header does not arrive within the deadline is dropped, and so is every
//! connection beyond the cap of pending ones, with a log line naming the
//! peer; WebSocket workers and event streams outlive the deadline.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pando_distributed_map::codec::Line;
use pando_distributed_map::{DistributedMap, MapConfig, Worker, join_url};
use pando_pull_stream::{collect, pull, values};
use pando_web::{ServeConfig, Site};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN: &str = "0123456789abcdef0123456789abcdef";
const DEADLINE: Duration = Duration::from_secs(20);
/// Half a request: the header never ends.
const HALF: &[u8] = b"GET /?token=x HTTP/1.1\r\nHost: pando\r\nX-Slow: ";

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(DEADLINE, f).await {
        Ok(t) => t,
        Err(_) => panic!("timed out after {DEADLINE:?} waiting for {what}"),
    }
}

/// The log lines of the test's thread (the runtime is current-thread, so
/// the server's tasks log here too).
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Log {
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let log = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || log.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A master serving the site and the monitor with `config`.
struct Master {
    map: DistributedMap<Line, Line, ()>,
    addr: std::net::SocketAddr,
}

async fn master(config: ServeConfig) -> Master {
    let map = DistributedMap::<Line, Line, ()>::new(MapConfig {
        token: TOKEN.to_string(),
        ..MapConfig::default()
    });
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let (router, listener) = Site::new(TOKEN, map.config().max_frame).build(&format!("ws://{addr}/"));
    let stats = map.clone();
    let router = router.merge(pando_web::monitor::router(move || stats.stats(), TOKEN));
    map.serve(listener);
    tokio::spawn(pando_web::serve_with(tcp, router, config));
    Master { map, addr }
}

/// Reads until the server closes the connection; what it sent.
async fn until_closed(tcp: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tcp.read(&mut buf).await {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// An event stream read over TCP: each call, the next `data:` line.
struct EventStream {
    tcp: TcpStream,
    text: String,
}

impl EventStream {
    async fn open(addr: std::net::SocketAddr) -> EventStream {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let request = format!("GET /monitor/events?token={TOKEN} HTTP/1.1\r\nHost: pando\r\n\r\n");
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut stream = EventStream {
            tcp,
            text: String::new(),
        };
        let first = stream.next().await;
        assert!(first.contains("\"lender\""), "{first}");
        stream
    }

    async fn next(&mut self) -> String {
        within("an update of the event stream", async {
            loop {
                if let Some(start) = self.text.find("data:") {
                    if let Some(end) = self.text[start..].find('\n') {
                        let line = self.text[start..start + end].to_string();
                        self.text.drain(..start + end);
                        return line;
                    }
                }
                let mut buf = [0u8; 4096];
                let n = self.tcp.read(&mut buf).await.expect("the stream is readable");
                assert!(n > 0, "the event stream ended; so far: {}", self.text);
                self.text.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
        .await
    }
}

/// A connection that sends half a header is dropped at the deadline (not
/// before), with a log line naming it; a WebSocket worker and an event
/// stream opened before it are still served after.
#[tokio::test]
async fn a_stalled_header_is_dropped_at_the_deadline_and_workers_and_streams_stay() {
    let log = Log::default();
    let _guard = log.install();
    let timeout = Duration::from_millis(300);
    let m = master(ServeConfig::default().header_timeout(timeout)).await;

    // A native worker (WebSocket) and an event stream, first.
    let joined = join_url(&format!("ws://{}/", m.addr), TOKEN);
    let session = within("the worker's handshake", Worker::new("w").connect(&joined))
        .await
        .expect("the worker joins");
    let worker =
        tokio::spawn(session.run(|x: Vec<u8>| async move { Ok::<_, String>([x.clone(), x].concat()) }));
    let mut events = EventStream::open(m.addr).await;

    // Then a slow client.
    // From before the connection: the server's deadline cannot start earlier.
    let started = tokio::time::Instant::now();
    let mut slow = TcpStream::connect(m.addr).await.unwrap();
    let peer = slow.local_addr().unwrap();
    slow.write_all(HALF).await.unwrap();
    let answer = within("the stalled connection to be dropped", until_closed(&mut slow)).await;
    assert!(
        started.elapsed() >= timeout,
        "dropped after {:?}, before the deadline {timeout:?}",
        started.elapsed()
    );
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    let text = log.text();
    assert!(
        text.contains(&format!(
            "closed the connection of {peer}: its request header did not arrive within 300ms"
        )),
        "{text}"
    );

    // Both are past the deadline now, and still served.
    events.next().await;
    let input = values(vec![Line(b"ab".to_vec()), Line(b"c".to_vec())]);
    let out = within(
        "the map's results",
        pull!(input, m.map.clone(), collect::<Vec<_>>()),
    )
    .await
    .unwrap();
    assert_eq!(out, [Line(b"abab".to_vec()), Line(b"cc".to_vec())]);
    within("the worker's end", worker).await.unwrap().unwrap();
    events.next().await;
}

/// With `max_pending` connections stalled in their header, one more is
/// closed at once, with a log line naming it; a whole request frees a place.
#[tokio::test]
async fn a_connection_beyond_the_pending_cap_is_closed_at_once() {
    let log = Log::default();
    let _guard = log.install();
    // A deadline the test never reaches.
    let config = ServeConfig::default()
        .header_timeout(Duration::from_secs(3600))
        .max_pending(4);
    let m = master(config).await;
    let mut stalled = Vec::new();
    for _ in 0..4 {
        let mut tcp = TcpStream::connect(m.addr).await.unwrap();
        tcp.write_all(HALF).await.unwrap();
        stalled.push(tcp);
    }
    let mut fifth = TcpStream::connect(m.addr).await.unwrap();
    let peer = fifth.local_addr().unwrap();
    let answer = within("the fifth connection to be closed", until_closed(&mut fifth)).await;
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    let text = log.text();
    assert!(
        text.contains(&format!(
            "closed the connection of {peer}: 4 connections have not sent a whole request yet"
        )),
        "{text}"
    );
    // The four are still open: nothing to read, and no end.
    for tcp in &stalled {
        let mut buf = [0u8; 16];
        match tcp.try_read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("a stalled connection was closed or answered: {other:?}"),
        }
    }

    // One of them ends its header: it is answered (403: a wrong token for
    // the page), and its place goes to a new connection.
    let mut first = stalled.remove(0);
    first.write_all(b"1\r\n\r\n").await.unwrap();
    let answer = within("the answer to the whole request", until_closed(&mut first)).await;
    assert!(
        answer.starts_with(b"HTTP/1.1 403"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    let mut next = TcpStream::connect(m.addr).await.unwrap();
    next.write_all(b"GET /volunteer.js HTTP/1.1\r\nHost: pando\r\n\r\n")
        .await
        .unwrap();
    let answer = within("the answer to the new connection", until_closed(&mut next)).await;
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}

/// Over a real connection, the event stream beyond the monitor's cap is
/// answered 503 with its reason (the default cap is 64).
#[tokio::test]
async fn the_event_stream_beyond_the_cap_is_answered_503_over_http() {
    let m = master(ServeConfig::default()).await;
    let mut open = Vec::new();
    for _ in 0..pando_web::monitor::DEFAULT_MAX_STREAMS {
        open.push(EventStream::open(m.addr).await);
    }
    let mut one_more = TcpStream::connect(m.addr).await.unwrap();
    let request = format!("GET /monitor/events?token={TOKEN} HTTP/1.1\r\nHost: pando\r\n\r\n");
    one_more.write_all(request.as_bytes()).await.unwrap();
    let answer = String::from_utf8(within("the 503", until_closed(&mut one_more)).await).unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.contains("too many monitoring pages are open (64"),
        "{answer}"
    );
}
