//! The live monitoring page at `/monitor` (seed 000, §6.1.3: "the real-time
//! display").
//!
//! [`router`] serves, on the master's port:
//!
//! * `GET /monitor?token=TOKEN`: the page. Without the token, or with a wrong
//!   one, a short page that says so (status 401 or 403), and no data.
//! * `GET /monitor/events?token=TOKEN`: Server-Sent Events, one JSON
//!   snapshot of the map every [`UPDATE_INTERVAL`] (the first at once),
//!   shared by the pages open at once: the map's snapshot is taken at most
//!   twice per interval (pages opened at different times see the same one
//!   while it is less than half an interval old), never per page nor per device.
//!   At most [`MonitorConfig::max_streams`] streams are open at once
//!   ([`DEFAULT_MAX_STREAMS`] by default); beyond, `503 Service Unavailable`
//!   with a short text saying why. A stream ends when its page goes (at the
//!   next update it cannot send).
//! * `GET /monitor/assets/…`: the page's script and style, and uPlot (MIT,
//!   vendored with its licence), compiled into the binary: no CDN.
//!
//! The page shows the totals and the lender's state (read, in flight,
//! re-lent, waiting to be re-lent, skipped, output), a table of the devices
//! (name, short id, address, items done, items/s, in flight, failures,
//! connected since) and a plot of throughput over time, in total and per
//! device. When replicas wait for workers ([`MapStats::replicas`]) it says so.
//! It keeps a section for the Genet tree, hidden until the updates carry one.
//!
//! A device's items/s is the monitor's own measure: its items done over the
//! last five seconds of snapshots (seed 000, §6.1.2, the second option),
//! falling back on the Limiter's one-second rate for a device just joined;
//! the total is their sum, so it counts devices that left within the window.
//!
//! ## A snapshot
//!
//! ```json
//! {"t":1790000000000,"connected":2,"rate":12.5,
//!  "lender":{"read":40,"lent":40,"in_flight":4,"waiting_to_be_relent":0,"relent":0,
//!            "skipped":0,"output":36,"input_ended":false},
//!  "workers":[{"id":1,"name":"laptop","peer":"127.0.0.1:50312","since":1789999990000,
//!              "connected":true,"done":20,"sent":22,"failed":0,"in_flight":2,"rate":6.5}]}
//! ```
//!
//! `t` and `since` are milliseconds since the Unix epoch; `replicas`
//! (`{"wanted":3,"connected":1}`) is there only when replicas wait.

mod rates;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::Stream;
use pando_distributed_map::MapStats;
use serde::Serialize;
use subtle::ConstantTimeEq;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
// Tokio's clock: the tests pause it.
use tokio::time::Instant;

/// How often the page is updated.
pub const UPDATE_INTERVAL: Duration = Duration::from_millis(500);

/// How many event streams may be open at once, by default (see
/// [`MonitorConfig::max_streams`]).
pub const DEFAULT_MAX_STREAMS: usize = 64;

/// The window of the devices' rates (items done in it, per second).
const RATE_WINDOW: Duration = Duration::from_secs(5);

const PAGE: &str = include_str!("../assets/monitor.html");
const SCRIPT: &str = include_str!("../assets/monitor.js");
const STYLE: &str = include_str!("../assets/monitor.css");
const UPLOT_SCRIPT: &str = include_str!("../assets/uplot/uPlot.iife.min.js");
const UPLOT_STYLE: &str = include_str!("../assets/uplot/uPlot.min.css");
const UPLOT_LICENSE: &str = include_str!("../assets/uplot/LICENSE");

/// The monitoring page's limits: give it to [`router_with`].
///
/// ```
/// let config = pando_web::monitor::MonitorConfig::default().max_streams(8);
/// assert_eq!(config.get_max_streams(), 8);
/// assert_eq!(
///     pando_web::monitor::MonitorConfig::default().get_max_streams(),
///     pando_web::monitor::DEFAULT_MAX_STREAMS,
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MonitorConfig {
    max_streams: usize,
}

impl Default for MonitorConfig {
    /// At most [`DEFAULT_MAX_STREAMS`] event streams.
    ///
    /// See [`MonitorConfig`] for an example.
    fn default() -> Self {
        MonitorConfig {
            max_streams: DEFAULT_MAX_STREAMS,
        }
    }
}

impl MonitorConfig {
    /// The most `/monitor/events` streams open at once (at least 1); one
    /// more is answered `503 Service Unavailable`. Each stream holds a
    /// connection and its buffers until its page goes.
    ///
    /// See [`MonitorConfig`] for an example.
    #[must_use]
    pub fn max_streams(mut self, max: usize) -> Self {
        self.max_streams = max.max(1);
        self
    }

    /// See [`max_streams`](MonitorConfig::max_streams).
    ///
    /// See [`MonitorConfig`] for an example.
    pub fn get_max_streams(&self) -> usize {
        self.max_streams
    }
}

/// The monitoring page's routes, to merge into the master's server:
/// `app.merge(pando_web::monitor::router(move || map.stats(), token))`,
/// with the default [`MonitorConfig`] (see [`router_with`]).
///
/// `stats` is called at most twice per [`UPDATE_INTERVAL`], however many
/// pages are open (and never while none is); `token` is the join token, which
/// the page and its updates need in their `?token=` (compared in constant
/// time).
///
/// ```
/// use pando_distributed_map::{DistributedMap, MapConfig};
///
/// let map = DistributedMap::<u64, u64, ()>::new(MapConfig::default());
/// let token = map.config().token.clone();
/// let stats = map.clone();
/// let app = axum::Router::new().merge(pando_web::monitor::router(move || stats.stats(), token));
/// # let _ = app;
/// ```
pub fn router<F>(stats: F, token: impl Into<String>) -> Router
where
    F: Fn() -> MapStats + Send + Sync + 'static,
{
    router_with(stats, token, MonitorConfig::default())
}

/// The monitoring page's routes, as [`router`] makes them, with the limits
/// of `config`.
///
/// ```
/// use pando_distributed_map::{DistributedMap, MapConfig};
/// use pando_web::monitor::{MonitorConfig, router_with};
///
/// let map = DistributedMap::<u64, u64, ()>::new(MapConfig::default());
/// let token = map.config().token.clone();
/// let stats = map.clone();
/// let config = MonitorConfig::default().max_streams(4);
/// let app = axum::Router::new().merge(router_with(move || stats.stats(), token, config));
/// # let _ = app;
/// ```
pub fn router_with<F>(stats: F, token: impl Into<String>, config: MonitorConfig) -> Router
where
    F: Fn() -> MapStats + Send + Sync + 'static,
{
    let shared = Arc::new(Shared {
        stats: Box::new(stats),
        token: token.into(),
        streams: Arc::new(Semaphore::new(config.max_streams)),
        max_streams: config.max_streams,
        interval: UPDATE_INTERVAL,
        last: Mutex::new(None),
        rates: Mutex::new(rates::Rates::new(RATE_WINDOW)),
    });
    Router::new()
        .route("/monitor", get(page))
        .route("/monitor/events", get(events))
        .route(
            "/monitor/assets/monitor.js",
            get(|| asset(SCRIPT, "text/javascript; charset=utf-8")),
        )
        .route(
            "/monitor/assets/monitor.css",
            get(|| asset(STYLE, "text/css; charset=utf-8")),
        )
        .route(
            "/monitor/assets/uplot/uPlot.iife.min.js",
            get(|| asset(UPLOT_SCRIPT, "text/javascript; charset=utf-8")),
        )
        .route(
            "/monitor/assets/uplot/uPlot.min.css",
            get(|| asset(UPLOT_STYLE, "text/css; charset=utf-8")),
        )
        .route(
            "/monitor/assets/uplot/LICENSE",
            get(|| asset(UPLOT_LICENSE, "text/plain; charset=utf-8")),
        )
        .with_state(shared)
}

type StatsFn = Box<dyn Fn() -> MapStats + Send + Sync>;

struct Shared {
    stats: StatsFn,
    token: String,
    /// One permit per event stream open.
    streams: Arc<Semaphore>,
    max_streams: usize,
    interval: Duration,
    /// The last snapshot, shared by the pages open at once.
    last: Mutex<Option<(Instant, Arc<str>)>>,
    rates: Mutex<rates::Rates>,
}

impl Shared {
    /// The current snapshot, in JSON: taken anew when the last one is older
    /// than half an interval.
    fn snapshot(&self) -> Arc<str> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, json)) = &*last {
            if at.elapsed() < self.interval / 2 {
                return json.clone();
            }
        }
        let stats = (self.stats)();
        let devices: Vec<(u64, u64, f64)> = stats
            .workers
            .iter()
            .map(|w| (w.id, w.done, w.items_per_sec))
            .collect();
        let rates = self
            .rates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .update(Instant::now(), &devices);
        let json: Arc<str> = Update::new(&stats, &rates).to_json().into();
        *last = Some((Instant::now(), json.clone()));
        json
    }

    fn check(&self, query: &HashMap<String, String>) -> Result<(), Denied> {
        match query.get("token") {
            None => Err(Denied::Missing),
            Some(given) if bool::from(given.as_bytes().ct_eq(self.token.as_bytes())) => Ok(()),
            Some(_) => Err(Denied::Wrong),
        }
    }
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug)]
enum Denied {
    Missing,
    Wrong,
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        let (status, why) = match self {
            Denied::Missing => (
                StatusCode::UNAUTHORIZED,
                "This page needs the join token: open the monitoring URL that pando printed, with its <code>?token=…</code>.",
            ),
            Denied::Wrong => (
                StatusCode::FORBIDDEN,
                "The token in this URL is not this master's join token: open the monitoring URL that pando printed.",
            ),
        };
        let body = format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Pando monitor: access refused</title></head>\n\
             <body><h1>Pando monitor: access refused</h1><p>{why}</p></body></html>\n"
        );
        (status, page_headers(), body).into_response()
    }
}

fn page_headers() -> [(header::HeaderName, HeaderValue); 5] {
    [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        // The token is in the URL: never send it on as a referrer.
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'self'; style-src 'self' 'unsafe-inline'"),
        ),
    ]
}

async fn page(State(shared): State<Arc<Shared>>, Query(query): Query<HashMap<String, String>>) -> Response {
    match shared.check(&query) {
        Ok(()) => (page_headers(), PAGE).into_response(),
        Err(denied) => denied.into_response(),
    }
}

async fn events(State(shared): State<Arc<Shared>>, Query(query): Query<HashMap<String, String>>) -> Response {
    if let Err(denied) = shared.check(&query) {
        return denied.into_response();
    }
    let Ok(open) = shared.streams.clone().try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            format!(
                "too many monitoring pages are open ({}, the most at once): close one and reload this page\n",
                shared.max_streams
            ),
        )
            .into_response();
    };
    Sse::new(updates(shared, open))
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// One event per interval, the first at once; ends when the page goes,
/// and with it `open`, its place among the streams.
fn updates(shared: Arc<Shared>, open: OwnedSemaphorePermit) -> impl Stream<Item = Result<Event, Infallible>> {
    let mut ticks = tokio::time::interval(shared.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    futures::stream::unfold((shared, ticks, open), |(shared, mut ticks, open)| async move {
        ticks.tick().await;
        let event = Event::default().data(&*shared.snapshot());
        Some((Ok(event), (shared, ticks, open)))
    })
}

async fn asset(body: &'static str, content_type: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
}

/// A snapshot as the page reads it.
#[derive(Serialize)]
struct Update<'a> {
    t: u64,
    connected: usize,
    rate: f64,
    lender: Lender,
    #[serde(skip_serializing_if = "Option::is_none")]
    replicas: Option<Replicas>,
    workers: Vec<Device<'a>>,
}

#[derive(Serialize)]
struct Lender {
    read: u64,
    lent: u64,
    in_flight: u64,
    waiting_to_be_relent: u64,
    relent: u64,
    skipped: u64,
    output: u64,
    input_ended: bool,
}

#[derive(Serialize)]
struct Replicas {
    wanted: usize,
    connected: usize,
}

#[derive(Serialize)]
struct Device<'a> {
    id: u64,
    name: &'a str,
    peer: &'a str,
    since: u64,
    connected: bool,
    done: u64,
    sent: u64,
    failed: u64,
    in_flight: u64,
    rate: f64,
}

/// Milliseconds since the Unix epoch (0 before it).
fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Two decimals are enough for a rate, and make the JSON shorter.
fn round(rate: f64) -> f64 {
    if rate.is_finite() {
        (rate * 100.0).round() / 100.0
    } else {
        0.0
    }
}

impl<'a> Update<'a> {
    /// `rates`: each worker's, in order (see [`rates::Rates`]); the total is
    /// their sum, those of workers that left within the window included.
    fn new(stats: &'a MapStats, rates: &[f64]) -> Self {
        let l = &stats.lender;
        Update {
            t: unix_ms(SystemTime::now()),
            connected: stats.connected(),
            rate: round(rates.iter().sum()),
            lender: Lender {
                read: l.read,
                lent: l.lent,
                in_flight: l.in_flight,
                waiting_to_be_relent: l.waiting_to_be_relent,
                relent: l.relent,
                skipped: l.skipped,
                output: l.output,
                input_ended: l.input_ended,
            },
            replicas: stats.replicas.map(|r| Replicas {
                wanted: r.wanted,
                connected: r.connected,
            }),
            workers: stats
                .workers
                .iter()
                .zip(rates)
                .map(|(w, &rate)| Device {
                    id: w.id,
                    name: &w.name,
                    peer: &w.peer,
                    since: unix_ms(w.connected_at),
                    connected: w.connected,
                    done: w.done,
                    sent: w.sent,
                    failed: w.failed,
                    in_flight: w.in_flight,
                    rate: round(rate),
                })
                .collect(),
        }
    }

    fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a snapshot is plain data")
    }
}
