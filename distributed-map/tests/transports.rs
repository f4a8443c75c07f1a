//! Every transport over real endpoints (loopback sockets for WebSocket and
//! TCP): frames round-trip both ways, an oversized frame is refused with an
//! error naming the peer, and a closed peer ends the stream.

use futures::{SinkExt, StreamExt};
use pando_distributed_map::codec::Codec;
use pando_distributed_map::frame::{Frame, PROTOCOL_VERSION};
use pando_distributed_map::transport::{Connection, Connector, Listener, TransportError, memory, tcp, ws};

const MAX: usize = 64 * 1024;

async fn pair(listener: &mut dyn Listener, connector: &dyn Connector) -> (Connection, Connection) {
    let url = listener.url();
    let (worker, master) = tokio::join!(connector.connect(&url), async {
        listener.accept().await?.upgrade().await
    });
    (master.unwrap(), worker.unwrap())
}

async fn round_trip(master: &mut Connection, worker: &mut Connection) {
    let hello = Frame::Hello {
        version: PROTOCOL_VERSION,
        token: "tok".into(),
        name: "w1".into(),
    };
    worker.sink.send(Codec::Postcard.encode(&hello)).await.unwrap();
    let got = master.stream.next().await.unwrap().unwrap();
    assert_eq!(Codec::Postcard.decode(&got, MAX).unwrap(), hello);
    for id in 0..100u64 {
        let value = Frame::Value {
            id,
            payload: vec![id as u8; id as usize],
        };
        master.sink.send(Codec::Postcard.encode(&value)).await.unwrap();
        let got = worker.stream.next().await.unwrap().unwrap();
        assert_eq!(Codec::Postcard.decode(&got, MAX).unwrap(), value);
    }
    // A frame at the limit passes.
    worker.sink.send(vec![7; MAX]).await.unwrap();
    assert_eq!(master.stream.next().await.unwrap().unwrap().len(), MAX);
}

async fn oversized_is_refused(master: &mut Connection, worker: &mut Connection) {
    let _ = worker.sink.send(vec![1; MAX + 1]).await;
    match master.stream.next().await {
        Some(Err(TransportError::FrameTooLarge { peer, max, .. })) => {
            assert_eq!(max, MAX);
            assert!(!peer.is_empty());
        }
        other => panic!("expected FrameTooLarge, got {other:?}"),
    }
}

async fn close_ends_the_stream(master: &mut Connection, worker: Connection) {
    let Connection { mut sink, .. } = worker;
    sink.close().await.unwrap();
    drop(sink);
    // The stream ends (None) or reports the closed connection; it never hangs.
    match master.stream.next().await {
        None | Some(Err(_)) => {}
        Some(Ok(frame)) => panic!("unexpected frame {frame:?} after close"),
    }
}

#[tokio::test]
async fn websocket_round_trips_refuses_oversized_frames_and_closes() {
    let mut listener = ws::WsListener::bind("127.0.0.1:0", MAX).await.unwrap();
    let connector = ws::WsConnector::new(MAX * 4);
    let (mut m, mut w) = pair(&mut listener, &connector).await;
    round_trip(&mut m, &mut w).await;
    oversized_is_refused(&mut m, &mut w).await;
    let (mut m, w) = pair(&mut listener, &connector).await;
    close_ends_the_stream(&mut m, w).await;
}

#[tokio::test]
async fn tcp_round_trips_refuses_oversized_frames_and_closes() {
    let mut listener = tcp::TcpListener::bind("127.0.0.1:0", MAX).await.unwrap();
    let connector = tcp::TcpConnector::new(MAX * 4);
    let (mut m, mut w) = pair(&mut listener, &connector).await;
    round_trip(&mut m, &mut w).await;
    oversized_is_refused(&mut m, &mut w).await;
    let (mut m, w) = pair(&mut listener, &connector).await;
    close_ends_the_stream(&mut m, w).await;
}

#[tokio::test]
async fn memory_round_trips_and_closes() {
    let (mut listener, connector) = memory::endpoint("t");
    let (mut m, mut w) = pair(&mut listener, &connector).await;
    round_trip(&mut m, &mut w).await;
    let (mut m, w) = pair(&mut listener, &connector).await;
    close_ends_the_stream(&mut m, w).await;
}

#[tokio::test]
async fn a_websocket_text_message_is_a_protocol_error_naming_the_peer() {
    use tokio_tungstenite::tungstenite::Message;
    let mut listener = ws::WsListener::bind("127.0.0.1:0", MAX).await.unwrap();
    let url = listener.url();
    let client = tokio::spawn(async move {
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        ws.send(Message::Text("hello".into())).await.unwrap();
        ws
    });
    let mut master = listener.accept().await.unwrap().upgrade().await.unwrap();
    let err = master.stream.next().await.unwrap().unwrap_err();
    assert!(
        matches!(
            &err,
            TransportError::Protocol {
                transport: "websocket",
                ..
            }
        ),
        "got {err:?}"
    );
    assert!(err.to_string().contains(&master.peer), "{err}");
    drop(client.await.unwrap());
}

#[tokio::test]
async fn unreachable_and_malformed_urls_give_clear_errors() {
    // Find a port with nothing listening: bind, note the port, close.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = ws::WsConnector::new(MAX)
        .connect(&format!("ws://127.0.0.1:{port}/"))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("cannot reach ws://127.0.0.1:{port}/")),
        "{err}"
    );
    let err = tcp::TcpConnector::new(MAX)
        .connect("http://example")
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::BadUrl { .. }), "{err:?}");
}

/// Issue 8 row 4: a sink that failed once reports an error again when used
/// again, instead of panicking ("polled MapErr after completion").
#[tokio::test]
async fn a_broken_connection_keeps_reporting_errors_without_panicking() {
    for network in ["ws", "tcp"] {
        let (mut listener, connector): (Box<dyn Listener>, Box<dyn Connector>) = match network {
            "ws" => (
                Box::new(ws::WsListener::bind("127.0.0.1:0", MAX).await.unwrap()),
                Box::new(ws::WsConnector::new(MAX)),
            ),
            _ => (
                Box::new(tcp::TcpListener::bind("127.0.0.1:0", MAX).await.unwrap()),
                Box::new(tcp::TcpConnector::new(MAX)),
            ),
        };
        let (master, mut worker) = pair(listener.as_mut(), connector.as_ref()).await;
        drop(master);
        // Writes fail once the peer is gone (the first ones may still be buffered).
        let mut errors = 0;
        for _ in 0..10_000 {
            if worker.sink.send(vec![0; 1024]).await.is_err() {
                errors += 1;
                if errors == 3 {
                    break;
                }
            }
        }
        assert_eq!(errors, 3, "{network}: every send after the break is an error");
    }
}
