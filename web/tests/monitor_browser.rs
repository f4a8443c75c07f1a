//! The monitoring page in a real browser (Debian's chromium and
//! chromium-driver, driven over WebDriver with fantoccini), during a real run:
//! a DistributedMap over a loopback WebSocket, with real `Worker`s in this
//! process, each on its own WebSocket connection.
//!
//! Each test skips, saying why, when chromium or chromedriver is missing
//! (see `support::tools`: `PANDO_CHROMIUM` and `PANDO_CHROMEDRIVER` name
//! other binaries); `PANDO_MONITOR_SCREENSHOT=FILE` keeps the screenshot
//! (docs/monitor.png).

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::wd::TimeoutConfiguration;
use pando_distributed_map::transport::{Listener, ws::WsListener};
use pando_distributed_map::{DistributedMap, MapConfig, ReplicaWait, Worker, join_url};
use pando_pull_stream::{count, drain, pull};
use serde_json::{Value, json};
use tokio::sync::mpsc;

mod support;
use support::{Browser, ONE_AT_A_TIME, Tools, tools, within};

const TOKEN: &str = "feedfacefeedfacefeedfacefeedface";
/// The longest any wait in these tests may take.
const DEADLINE: Duration = Duration::from_secs(120);
/// The longest script time allowed for one page update.
const UPDATE_BUDGET_MS: f64 = 50.0;
/// The window of the tests that take a screenshot (docs/monitor.png).
const SCREENSHOT_WINDOW: (u32, u32) = (1280, 1000);

/// A chromium whose window is `window`, whose scripts and page loads may
/// take up to [`DEADLINE`].
async fn start(tools: &Tools, window: (u32, u32)) -> Browser {
    let browser = Browser::start_sized(tools, window).await;
    browser
        .client
        .update_timeouts(TimeoutConfiguration::new(Some(DEADLINE), Some(DEADLINE), None))
        .await
        .expect("chromedriver takes the timeouts");
    browser
}

/// Waits in `browser`'s page (on its `pando-update` events, up to the script
/// deadline) until `updates` more updates have come with at least `devices`
/// devices connected and as many rows in the table; returns the page's
/// measurements.
async fn updates_with(browser: &Browser, devices: u64, updates: u64) -> Value {
    let script = r#"
        const [devices, updates, done] = arguments;
        const perf = window.pandoMonitor;
        const start = perf ? perf.updates : 0;
        let seen = 0;
        const check = () => {
            const p = window.pandoMonitor;
            if (p.devices >= devices && p.rows >= devices) seen += 1;
            if (seen >= updates) {
                document.removeEventListener('pando-update', check);
                done({ updates: p.updates, devices: p.devices, bytes: p.bytes, times: p.times.slice(), parts: p.parts.slice() });
            }
        };
        document.addEventListener('pando-update', check);
    "#;
    browser
        .client
        .execute_async(script, vec![json!(devices), json!(updates)])
        .await
        .unwrap_or_else(|e| {
            panic!("the page did not show {updates} updates with {devices} devices in time: {e}")
        })
}

/// A worker's name that would run a script if the page took it for HTML.
const HOSTILE_NAME: &str = "<img src=x onerror=\"window.pwned=1\">";

/// A master on a loopback WebSocket with an endless input, and `n` workers
/// in this process, each with the name `name(i)` and a speed of its own (a
/// value takes it `work(i)`, a simulated computation); the monitoring page on
/// a loopback HTTP port. Returns the page's URL.
async fn run(
    n: usize,
    name: fn(usize) -> String,
    work: fn(usize) -> Duration,
) -> (DistributedMap<u64, u64, ()>, String) {
    let map = DistributedMap::<u64, u64, ()>::new(MapConfig {
        token: TOKEN.to_string(),
        max_pending: 2 * n,
        ..MapConfig::default()
    });
    let listener = WsListener::bind("127.0.0.1:0", map.config().max_frame)
        .await
        .unwrap();
    let url = join_url(&listener.url(), TOKEN);
    map.serve(listener);
    tokio::spawn(pull!(count(u64::MAX), map.clone(), drain()));

    let (joined, mut joins) = mpsc::channel(n);
    for i in 0..n {
        let url = url.clone();
        let joined = joined.clone();
        tokio::spawn(async move {
            let session = Worker::new(name(i))
                .connect(&url)
                .await
                .unwrap_or_else(|e| panic!("worker {i} could not join: {e}"));
            joined.send(()).await.unwrap();
            let work = work(i);
            let _ = session
                .run(move |x: u64| async move {
                    tokio::time::sleep(work).await;
                    Ok::<_, String>(x)
                })
                .await;
        });
    }
    within(DEADLINE.as_secs(), &format!("{n} workers to join"), async {
        for _ in 0..n {
            joins.recv().await.expect("a worker task ended before joining");
        }
    })
    .await;

    let stats = map.clone();
    let app = pando_web::monitor::router(move || stats.stats(), TOKEN);
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let page = format!("http://{}/monitor?token={TOKEN}", http.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(http, app).await.unwrap() });
    (map, page)
}

fn times(measured: &Value) -> Vec<f64> {
    measured["times"]
        .as_array()
        .expect("the page's update times")
        .iter()
        .map(|t| t.as_f64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_devices_update_in_under_50_ms_each() {
    let Some(tools) = tools() else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().await;
    let browser = start(&tools, SCREENSHOT_WINDOW).await;
    const DEVICES: usize = 500;
    let (map, page) = run(
        DEVICES,
        |i| {
            if i == DEVICES - 1 {
                HOSTILE_NAME.to_string()
            } else {
                format!("sim-{i:03}")
            }
        },
        // 2 to 5.5 s a value: about 140 items/s in all, which leaves the
        // two cores to the browser (the page's cost grows with the devices,
        // not with their speed).
        |i| Duration::from_millis(2000 + (i as u64 % 8) * 500),
    )
    .await;
    browser.client.goto(&page).await.unwrap();
    // Twenty updates (ten seconds) with all 500 devices in the table.
    let measured = updates_with(&browser, DEVICES as u64, 20).await;
    let rows: u64 = serde_json::from_value(
        browser
            .client
            .execute(
                "return document.querySelectorAll('#devices-body tr').length",
                vec![],
            )
            .await
            .unwrap(),
    )
    .unwrap();
    let times = times(&measured);
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let max = sorted.last().copied().unwrap_or(0.0);
    println!(
        "{} updates measured ({} devices, {} bytes of JSON each): script time median {:.1} ms, max {:.1} ms; map: {} workers, {:.0} items/s",
        times.len(),
        measured["devices"],
        measured["bytes"],
        sorted[sorted.len() / 2],
        max,
        map.stats().connected(),
        map.stats().items_per_sec()
    );
    let parts = measured["parts"].as_array().unwrap();
    let mut slowest: Vec<usize> = (0..times.len()).collect();
    slowest.sort_by(|&a, &b| times[b].total_cmp(&times[a]));
    for &i in slowest.iter().take(3) {
        println!(
            "update {i}: {:.1} ms (parse, summary, table, plot: {})",
            times[i], parts[i]
        );
    }
    if let Some(path) = std::env::var_os("PANDO_MONITOR_SCREENSHOT_500") {
        std::fs::write(&path, browser.client.screenshot().await.unwrap()).unwrap();
    }
    // A worker's name is text, never HTML.
    let hostile: Value = browser
        .client
        .execute(
            "return { pwned: window.pwned === 1, images: document.querySelectorAll('#devices-body img').length, \
                      names: [...document.querySelectorAll('#devices-body tr td:first-child')].map((td) => td.textContent) }",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(hostile["pwned"], false, "a worker's name ran a script");
    assert_eq!(hostile["images"], 0, "a worker's name became an element");
    assert!(
        hostile["names"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == HOSTILE_NAME),
        "the name is shown as it is"
    );
    assert_eq!(rows, DEVICES as u64, "one row per device");
    // Every update, the first ones (which create the rows and the plot's series) included.
    assert!(
        times.iter().all(|&t| t < UPDATE_BUDGET_MS),
        "an update took over {UPDATE_BUDGET_MS} ms of script time: {times:?}"
    );
    browser.end().await;
}

/// Pixels of the screenshot: (distinct colours, non-white pixels, saturated pixels, all pixels).
fn pixels(png_bytes: &[u8]) -> (usize, usize, usize, usize) {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().expect("a PNG header");
    let mut buffer = vec![0; reader.output_buffer_size().expect("a PNG of a sensible size")];
    let info = reader.next_frame(&mut buffer).expect("a PNG frame");
    let channels = info.color_type.samples();
    assert_eq!(info.bit_depth, png::BitDepth::Eight, "8-bit screenshot");
    assert!(channels >= 3, "a colour screenshot, not {:?}", info.color_type);
    let mut colours = std::collections::HashSet::new();
    let (mut ink, mut saturated, mut all) = (0, 0, 0);
    for px in buffer[..info.buffer_size()].chunks_exact(channels) {
        let (r, g, b) = (px[0], px[1], px[2]);
        all += 1;
        colours.insert((r, g, b));
        if (r, g, b) != (255, 255, 255) {
            ink += 1;
        }
        if r.max(g).max(b) - r.min(g).min(b) > 60 {
            saturated += 1;
        }
    }
    (colours.len(), ink, saturated, all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_screenshot_during_a_run_is_not_blank() {
    let Some(tools) = tools() else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().await;
    let browser = start(&tools, SCREENSHOT_WINDOW).await;
    const DEVICES: usize = 12;
    let (_map, page) = run(
        DEVICES,
        |i| format!("sim-{i:03}"),
        |i| Duration::from_millis(100 + (i as u64 % 6) * 60),
    )
    .await;
    browser.client.goto(&page).await.unwrap();
    // Enough updates for the plot to have lines.
    updates_with(&browser, DEVICES as u64, 24).await;
    let png_bytes = browser.client.screenshot().await.unwrap();
    if let Some(path) = std::env::var_os("PANDO_MONITOR_SCREENSHOT") {
        std::fs::write(&path, &png_bytes).unwrap();
        println!("screenshot saved to {}", PathBuf::from(path).display());
    }
    let (colours, ink, saturated, all) = pixels(&png_bytes);
    println!("screenshot: {all} pixels, {colours} colours, {ink} not white, {saturated} saturated");
    assert!(all >= 800 * 600, "a screenshot of the window, not {all} pixels");
    assert!(
        colours >= 64,
        "a page with text, a plot and colours: only {colours} colours"
    );
    assert!(
        ink * 20 >= all,
        "at least 5% of the page is not white: {ink} of {all}"
    );
    // The devices' colours (plot lines and the table's swatches) and the header.
    assert!(
        saturated >= 5000,
        "the plot's coloured lines: only {saturated} saturated pixels"
    );
    browser.end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_says_when_replicas_wait_for_workers() {
    let Some(tools) = tools() else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().await;
    let browser = start(&tools, support::WINDOW).await;
    let map = DistributedMap::<u64, u64, ()>::new(MapConfig {
        token: TOKEN.to_string(),
        ..MapConfig::default()
    });
    let app = pando_web::monitor::router(
        move || {
            let mut stats = map.stats();
            stats.replicas = Some(ReplicaWait::new(3, 1));
            stats
        },
        TOKEN,
    );
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let page = format!("http://{}/monitor?token={TOKEN}", http.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(http, app).await.unwrap() });
    browser.client.goto(&page).await.unwrap();
    updates_with(&browser, 0, 1).await;
    let notice: Value = browser
        .client
        .execute(
            "const n = document.getElementById('replicas'); return { hidden: n.hidden, text: n.textContent }",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(notice["hidden"], false, "{notice}");
    let text = notice["text"].as_str().unwrap();
    assert!(text.contains("needs 3 workers, 1 connected"), "{text}");
    browser.end().await;
}
