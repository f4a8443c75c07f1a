//! The monitoring page's routes, without a browser: the token, the page, the
//! assets, and the Server-Sent Events' JSON after a real run.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use pando_distributed_map::{DistributedMap, MapConfig, ReplicaWait};
use pando_pull_stream::{collect, count, pull};
use pando_web::monitor::UPDATE_INTERVAL;
use tower::ServiceExt;

const TOKEN: &str = "0123456789abcdef0123456789abcdef";
const DEADLINE: Duration = Duration::from_secs(20);

fn map() -> DistributedMap<u64, u64, ()> {
    DistributedMap::new(MapConfig {
        token: TOKEN.to_string(),
        ..MapConfig::default()
    })
}

fn app(map: &DistributedMap<u64, u64, ()>) -> axum::Router {
    let map = map.clone();
    pando_web::monitor::router(move || map.stats(), TOKEN)
}

async fn get(app: &axum::Router, uri: &str) -> (StatusCode, String, String) {
    let response = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = tokio::time::timeout(DEADLINE, response.into_body().collect())
        .await
        .unwrap_or_else(|_| panic!("{uri}: no whole body within {DEADLINE:?}"))
        .unwrap()
        .to_bytes();
    (status, content_type, String::from_utf8(body.to_vec()).unwrap())
}

/// The updates of one `/monitor/events` stream, as they come.
struct Events {
    body: Body,
    text: String,
}

impl Events {
    async fn open(app: &axum::Router) -> Events {
        let response = app
            .clone()
            .oneshot(
                Request::get(format!("/monitor/events?token={TOKEN}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers().get(header::CONTENT_TYPE).unwrap(),
            "text/event-stream"
        );
        Events {
            body: response.into_body(),
            text: String::new(),
        }
    }

    /// The next update's JSON (keep-alive comments skipped).
    async fn next(&mut self) -> serde_json::Value {
        tokio::time::timeout(DEADLINE, async {
            loop {
                if let Some(end) = self.text.find("\n\n") {
                    let event: String = self.text.drain(..end + 2).collect();
                    if let Some(json) = event.lines().find_map(|l| l.strip_prefix("data:")) {
                        return serde_json::from_str(json.trim()).unwrap();
                    }
                    continue;
                }
                let frame = self.body.frame().await.expect("the stream ended").unwrap();
                if let Ok(data) = frame.into_data() {
                    self.text.push_str(std::str::from_utf8(&data).unwrap());
                }
            }
        })
        .await
        .expect("no update within the deadline")
    }
}

/// The first update of `/monitor/events`, which comes at once.
async fn first_event(app: &axum::Router) -> serde_json::Value {
    Events::open(app).await.next().await
}

#[tokio::test]
async fn the_page_needs_the_token() {
    let map = map();
    let app = app(&map);

    let (status, kind, body) = get(&app, "/monitor").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(kind.starts_with("text/html"), "{kind}");
    assert!(body.contains("needs the join token"), "{body}");

    let (status, kind, body) = get(&app, "/monitor?token=nope").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(kind.starts_with("text/html"), "{kind}");
    assert!(body.contains("not this master's join token"), "{body}");
    assert!(!body.contains(TOKEN));

    for uri in ["/monitor/events", "/monitor/events?token=nope"] {
        let (status, _, body) = get(&app, uri).await;
        assert!(
            status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN,
            "{uri}: {status}"
        );
        assert!(!body.contains("\"workers\""), "{uri} sent data: {body}");
    }

    let (status, kind, body) = get(&app, &format!("/monitor?token={TOKEN}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(kind.starts_with("text/html"), "{kind}");
    assert!(body.contains("<title>Pando monitor</title>"), "{body}");
    assert!(body.contains("monitor/assets/uplot/uPlot.iife.min.js"));
}

#[tokio::test]
async fn the_assets_are_served_from_the_binary() {
    let map = map();
    let app = app(&map);
    for (uri, kind, start) in [
        (
            "/monitor/assets/monitor.js",
            "text/javascript",
            "// Pando's monitoring page",
        ),
        ("/monitor/assets/monitor.css", "text/css", ":root"),
        (
            "/monitor/assets/uplot/uPlot.iife.min.js",
            "text/javascript",
            "/*! https://github.com/leeoniya/uPlot",
        ),
        ("/monitor/assets/uplot/uPlot.min.css", "text/css", ".uplot"),
        ("/monitor/assets/uplot/LICENSE", "text/plain", "The MIT License"),
    ] {
        let (status, content_type, body) = get(&app, uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert!(content_type.starts_with(kind), "{uri}: {content_type}");
        assert!(
            body.starts_with(start),
            "{uri} starts with {:?}",
            &body[..40.min(body.len())]
        );
    }
}

#[tokio::test]
async fn the_events_carry_the_devices_and_the_lenders_state() {
    let map = map();
    map.local_workers(2, false, |x: u64| async move { Ok::<_, String>(x * 2) });
    let out = tokio::time::timeout(DEADLINE, pull!(count(100), map.clone(), collect::<Vec<_>>()))
        .await
        .expect("the map did not finish within the deadline")
        .unwrap();
    assert_eq!(out.len(), 100);

    let update = first_event(&app(&map)).await;

    let lender = &update["lender"];
    assert_eq!(lender["read"], 100, "{update}");
    assert_eq!(lender["output"], 100, "{update}");
    assert_eq!(lender["in_flight"], 0, "{update}");
    assert_eq!(lender["relent"], 0, "{update}");
    assert_eq!(lender["skipped"], 0, "{update}");
    assert!(
        update.get("replicas").is_none(),
        "no replicas configured: {update}"
    );
    assert!(update["t"].as_u64().unwrap() > 0);
    let workers = update["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2, "{update}");
    let ids: Vec<u64> = workers.iter().map(|w| w["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, [1, 2]);
    let done: u64 = workers.iter().map(|w| w["done"].as_u64().unwrap()).sum();
    assert_eq!(done, 100, "{update}");
    for w in workers {
        for field in ["name", "peer"] {
            assert!(w[field].is_string(), "{field} in {w}");
        }
        for field in ["since", "sent", "failed", "in_flight"] {
            assert!(w[field].is_u64(), "{field} in {w}");
        }
        assert!(w["rate"].is_number(), "rate in {w}");
        assert!(w["connected"].is_boolean(), "connected in {w}");
        assert_eq!(w["failed"], 0);
    }
}

#[tokio::test]
async fn replicas_waiting_for_workers_are_in_the_updates() {
    let map = map();
    let stats = map.clone();
    let app = pando_web::monitor::router(
        move || {
            let mut stats = stats.stats();
            stats.replicas = Some(ReplicaWait::new(3, 1));
            stats
        },
        TOKEN,
    );
    let update = first_event(&app).await;
    assert_eq!(update["replicas"]["wanted"], 3, "{update}");
    assert_eq!(update["replicas"]["connected"], 1, "{update}");
    assert_eq!(update["connected"], 0, "{update}");
}

/// Updates come every `UPDATE_INTERVAL`, and the pages open at once share
/// one snapshot of the map per interval (on a paused clock).
#[tokio::test(start_paused = true)]
async fn one_snapshot_per_interval_whatever_the_pages() {
    let map = map();
    let calls = Arc::new(AtomicUsize::new(0));
    let (stats, counted) = (map.clone(), calls.clone());
    let app = pando_web::monitor::router(
        move || {
            counted.fetch_add(1, Ordering::SeqCst);
            stats.stats()
        },
        TOKEN,
    );
    let start = tokio::time::Instant::now();
    let mut pages = [
        Events::open(&app).await,
        Events::open(&app).await,
        Events::open(&app).await,
    ];
    for page in &mut pages {
        page.next().await;
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "three pages, one snapshot");
    assert_eq!(start.elapsed(), Duration::ZERO, "the first update comes at once");
    for page in &mut pages {
        page.next().await;
    }
    assert_eq!(start.elapsed(), UPDATE_INTERVAL, "the next one an interval later");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "three pages, one snapshot per interval"
    );
}

/// At most `max_streams` event streams at once: one more gets 503 and a
/// text saying why; a page that goes gives its place back.
#[tokio::test]
async fn event_streams_beyond_the_cap_get_503_until_one_goes() {
    let map = map();
    let stats = map.clone();
    let config = pando_web::monitor::MonitorConfig::default().max_streams(3);
    let app = pando_web::monitor::router_with(move || stats.stats(), TOKEN, config);
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut events = Events::open(&app).await;
        events.next().await;
        open.push(events);
    }
    let uri = format!("/monitor/events?token={TOKEN}");
    let (status, content_type, body) = get(&app, &uri).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(content_type, "text/plain; charset=utf-8");
    assert!(body.contains("too many monitoring pages are open (3"), "{body}");
    // The page itself is not capped.
    let (status, _, _) = get(&app, &format!("/monitor?token={TOKEN}")).await;
    assert_eq!(status, StatusCode::OK);
    // A page that goes (its stream dropped) frees its place.
    drop(open.pop());
    Events::open(&app).await.next().await;
    assert_eq!(
        pando_web::monitor::MonitorConfig::default().get_max_streams(),
        pando_web::monitor::DEFAULT_MAX_STREAMS
    );
}
