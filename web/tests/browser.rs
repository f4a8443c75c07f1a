//! Browser volunteers in a real browser: Debian's chromium, driven through
//! chromedriver with fantoccini. Each test skips, saying why, when chromium
//! or chromedriver is missing (`.ci/run` installs both).
//!
//! Run them alone with `cargo test -p pando-web --test browser`.
//! Every wait has a deadline and says what it waited for.

use std::time::Duration;

use fantoccini::Locator;
use futures::StreamExt;
use pando_distributed_map::codec::Line;
use pando_distributed_map::{MapConfig, Worker};
use pando_pull_stream::{for_each, from_try_stream, pull};
use serde_json::{Value as Json, json};
use tokio::sync::{mpsc, oneshot};

mod support;
use support::{Browser, Master, ONE_AT_A_TIME, tools, within};

/// The master's log lines (tracing), for the tests that check what it says.
static LOGS: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());
/// Told whenever a log line is written.
static LOGGED: tokio::sync::Notify = tokio::sync::Notify::const_new();

struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(bytes);
        eprint!("{text}");
        LOGS.lock().unwrap_or_else(|p| p.into_inner()).push_str(&text);
        LOGGED.notify_waiters();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_writer(|| LogWriter)
            .with_ansi(false)
            .with_env_filter("info")
            .try_init();
    });
}

/// Waits until a log line contains every one of `words`; that line.
async fn logged(words: &[&str]) -> String {
    within(30, &format!("a log line with {words:?}"), async {
        loop {
            let notified = LOGGED.notified();
            let found = LOGS
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .lines()
                .find(|line| words.iter().all(|w| line.contains(w)))
                .map(str::to_string);
            if let Some(line) = found {
                return line;
            }
            notified.await;
        }
    })
    .await
}

impl Master {
    /// Runs the map over `inputs` once the returned gate is opened (sent
    /// to); each result on the channel.
    fn run(
        &self,
        inputs: Vec<String>,
    ) -> (
        oneshot::Sender<()>,
        mpsc::UnboundedReceiver<String>,
        tokio::task::JoinHandle<Result<(), String>>,
    ) {
        let (open, gate) = oneshot::channel();
        let (tx, rx) = mpsc::unbounded_channel();
        let input = futures::stream::once(async move {
            let _ = gate.await;
        })
        .flat_map(move |()| {
            futures::stream::iter(inputs.clone().into_iter().map(|s| Ok(Line(s.into_bytes()))))
        });
        let map = self.map.clone();
        let task = tokio::spawn(async move {
            pull!(
                from_try_stream(input),
                map,
                for_each(move |line: Line| {
                    let _ = tx.send(String::from_utf8(line.0).expect("results are text"));
                })
            )
            .await
            .map_err(|e| format!("{e:?}"))
        });
        (open, rx, task)
    }
}

/// Waits for the run to end, and for it to succeed.
async fn ended(run: tokio::task::JoinHandle<Result<(), String>>) {
    within(30, "the run to end", run).await.unwrap().unwrap();
}

/// Opens a tab on `page` and waits until it is working.
async fn working_tab(browser: &Browser, page: &str) -> fantoccini::wd::WindowHandle {
    let tab = browser.open_tab(page).await;
    browser.wait_status("working").await;
    tab
}

/// Receives `n` results, each within the deadline.
async fn results(rx: &mut mpsc::UnboundedReceiver<String>, n: usize, secs: u64) -> Vec<String> {
    let mut got = Vec::with_capacity(n);
    within(secs, &format!("{n} results"), async {
        while got.len() < n {
            match rx.recv().await {
                Some(r) => got.push(r),
                None => panic!("the run ended after {} results of {n}", got.len()),
            }
        }
    })
    .await;
    got
}

fn squares(n: u64) -> Vec<String> {
    (1..=n).map(|x| (x * x).to_string()).collect()
}

fn inputs(n: u64) -> Vec<String> {
    (1..=n).map(|x| x.to_string()).collect()
}

fn config() -> MapConfig {
    MapConfig {
        batch_size: std::num::NonZeroUsize::new(16).unwrap(),
        ..MapConfig::default()
    }
}

/// The browser's tools and the one-at-a-time guard, or returns (the test
/// is skipped, saying why; see `support::tools`).
macro_rules! browser_test {
    () => {{
        let Some(tools) = tools() else {
            return;
        };
        let one = ONE_AT_A_TIME.lock().await;
        capture_logs();
        (one, tools)
    }};
}

const SQUARE_ESM: &str = "export default function (x) { return Number(x) * Number(x); }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_tabs_compute_1000_values_in_order() {
    let (_one, tools) = browser_test!();
    let master = Master::start(config(), SQUARE_ESM, &[]).await;
    let browser = Browser::start(&tools).await;
    let (open, mut rx, run) = master.run(inputs(1000));
    for _ in 0..3 {
        working_tab(&browser, &master.page).await;
    }
    let _ = open.send(());
    assert_eq!(results(&mut rx, 1000, 120).await, squares(1000));
    ended(run).await;
    let stats = master.map.stats();
    let busy = stats.workers.iter().filter(|w| w.done > 0).count();
    assert_eq!(busy, 3, "every tab took part: {stats}");
    browser.end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_original_callback_form_and_require_of_a_sibling_work() {
    let (_one, tools) = browser_test!();
    let function = "const { times } = require('./times');\n\
                    module.exports['/pando/1.0.0'] = function (x, cb) { setTimeout(() => cb(null, times(Number(x), Number(x))), 0); };";
    let master = Master::start(
        config(),
        function,
        &[("times.js", "exports.times = (a, b) => a * b;")],
    )
    .await;
    let browser = Browser::start(&tools).await;
    let (open, mut rx, run) = master.run(inputs(100));
    browser.open_tab(&master.page).await;
    let _ = open.send(());
    assert_eq!(results(&mut rx, 100, 60).await, squares(100));
    ended(run).await;
    browser.wait_status("finished").await;
    browser.end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_es_module_imports_a_sibling() {
    let (_one, tools) = browser_test!();
    let function =
        "import { times } from './lib.mjs';\nexport default async (x) => times(Number(x), Number(x));";
    let master = Master::start(
        config(),
        function,
        &[("lib.mjs", "export const times = (a, b) => a * b;")],
    )
    .await;
    let browser = Browser::start(&tools).await;
    let (open, mut rx, run) = master.run(inputs(50));
    browser.open_tab(&master.page).await;
    let _ = open.send(());
    assert_eq!(results(&mut rx, 50, 60).await, squares(50));
    ended(run).await;
    browser.end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tab_closed_mid_run_loses_nothing_and_duplicates_nothing() {
    let (_one, tools) = browser_test!();
    // Slow enough that the tab to close still holds values when it goes.
    let function =
        "export default (x) => new Promise((ok) => setTimeout(() => ok(Number(x) * Number(x)), 5));";
    let master = Master::start(config(), function, &[]).await;
    let browser = Browser::start(&tools).await;
    let (open, mut rx, run) = master.run(inputs(400));
    let stays = working_tab(&browser, &master.page).await;
    working_tab(&browser, &master.page).await;
    let _ = open.send(());
    let mut got = results(&mut rx, 100, 60).await;
    browser
        .client
        .close_window()
        .await
        .expect("the second tab closes");
    browser.client.switch_to_window(stays).await.unwrap();
    got.extend(results(&mut rx, 300, 120).await);
    assert_eq!(got, squares(400), "every value once, in order");
    ended(run).await;
    let stats = master.map.stats();
    assert_eq!(stats.workers.len(), 2, "{stats}");
    browser.end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tab_and_a_native_worker_share_one_map() {
    let (_one, tools) = browser_test!();
    let function =
        "export default (x) => new Promise((ok) => setTimeout(() => ok(Number(x) * Number(x)), 2));";
    let master = Master::start(config(), function, &[]).await;
    let browser = Browser::start(&tools).await;
    let (open, mut rx, run) = master.run(inputs(300));
    let url = master.native.clone();
    let native = tokio::spawn(async move {
        let session = Worker::new("native").connect(&url).await?;
        session
            .run(|x: Vec<u8>| async move {
                tokio::time::sleep(Duration::from_millis(2)).await;
                let x: u64 = String::from_utf8(x)
                    .map_err(|e| e.to_string())?
                    .parse()
                    .map_err(|e: std::num::ParseIntError| e.to_string())?;
                Ok::<_, String>((x * x).to_string().into_bytes())
            })
            .await
    });
    within(30, "the native worker to join", master.map.remote_worker_joined()).await;
    working_tab(&browser, &master.page).await;
    let _ = open.send(());
    assert_eq!(results(&mut rx, 300, 120).await, squares(300));
    ended(run).await;
    let stats = master.map.stats();
    let tab = stats
        .workers
        .iter()
        .find(|w| w.name.contains('#'))
        .expect("the tab");
    let worker = stats
        .workers
        .iter()
        .find(|w| w.name == "native")
        .expect("the native worker");
    assert!(tab.done > 0 && worker.done > 0, "both took part: {stats}");
    let _ = within(30, "the native worker to finish", native).await;
    browser.end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_that_never_returns_is_stopped_at_the_timeout_and_its_worker_replaced() {
    let (_one, tools) = browser_test!();
    // Value 3 loops forever: each attempt times out, its Web Worker is
    // replaced, and the value is skipped after its retries.
    let function = "export default (x) => { if (x === '3') { for (;;) {} } return Number(x) * Number(x); };";
    let config = MapConfig {
        value_timeout: Some(Duration::from_millis(1000)),
        max_retries: Some(1),
        poison: pando_distributed_map::PoisonPolicy::Skip,
        ..config()
    };
    let master = Master::start(config, function, &[]).await;
    let browser = Browser::start(&tools).await;
    let (open, mut rx, run) = master.run(inputs(20));
    working_tab(&browser, &master.page).await;
    let _ = open.send(());
    let mut expected = squares(20);
    expected.remove(2);
    assert_eq!(results(&mut rx, 19, 60).await, expected);
    ended(run).await;
    assert_eq!(master.map.stats().lender.skipped, 1);
    let log: Json = browser
        .client
        .execute("return window.pando.log", vec![])
        .await
        .unwrap();
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().contains("--timeout")),
        "the page reports the timeout: {log}"
    );
    assert_eq!(
        master.map.stats().workers[0].failed,
        2,
        "both attempts failed on the tab"
    );
    browser.end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_leaves_cleanly() {
    let (_one, tools) = browser_test!();
    let function =
        "export default (x) => new Promise((ok) => setTimeout(() => ok(Number(x) * Number(x)), 5));";
    let master = Master::start(config(), function, &[]).await;
    let browser = Browser::start(&tools).await;
    let (open, mut rx, run) = master.run(inputs(200));
    let stays = working_tab(&browser, &master.page).await;
    working_tab(&browser, &master.page).await;
    let _ = open.send(());
    let mut got = results(&mut rx, 50, 60).await;
    browser
        .client
        .find(Locator::Id("stop"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser.wait_status("stopped").await;
    browser.client.switch_to_window(stays).await.unwrap();
    got.extend(results(&mut rx, 150, 120).await);
    assert_eq!(got, squares(200));
    ended(run).await;
    browser.end().await;
}

/// What a hostile script in a tab saw: the frames it received and how its
/// socket closed.
async fn hostile(browser: &Browser, master: &Master, plan: &str) -> Json {
    let script = r#"
        const [url, token, plan, done] = arguments;
        const ws = new WebSocket(url);
        const got = [];
        const text = (m) => ws.send(typeof m === 'string' ? m : JSON.stringify(m));
        ws.onopen = () => text({ type: 'hello', version: 3, token: plan === 'wrong-token' ? 'nope' : token, name: 'hostile ' + plan });
        ws.onmessage = (e) => {
            const m = JSON.parse(e.data);
            got.push(m);
            if (m.type === 'welcome') {
                if (plan === 'invalid-json') text('{"type": "result", "id": ');
                if (plan === 'wrong-type') text({ type: 'result', id: 'seven', value: '1' });
                if (plan === 'invalid-utf8') ws.send(new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]));
                if (plan === 'never-lent') text({ type: 'result', id: 987654321, value: '1' });
                if (plan === 'oversized') text({ type: 'heartbeat', pad: 'x'.repeat(200000) });
            }
            const values = m.type === 'values' ? m.values : m.type === 'value' ? [m] : [];
            if (values.length > 0 && plan === 'duplicate') {
                text({ type: 'result', id: values[0].id, value: String(values[0].value * values[0].value) });
                text({ type: 'result', id: values[0].id, value: String(values[0].value * values[0].value) });
            }
            if (values.length > 0 && plan === 'result-of-wrong-type') {
                text({ type: 'result', id: values[0].id, value: 5 });
            }
        };
        ws.onclose = (e) => done({ got, code: e.code });
    "#;
    within(
        60,
        &format!("the hostile {plan} socket to be closed"),
        browser.client.execute_async(
            script,
            vec![json!(master.browser_ws), json!(master.token), json!(plan)],
        ),
    )
    .await
    .expect("the script runs")
}

/// The message of the last `error` or `reject` frame in what a hostile
/// socket saw.
fn refusal(seen: &Json) -> String {
    seen["got"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|m| m["type"] == "error" || m["type"] == "reject")
        .map(|m| {
            m["message"]
                .as_str()
                .or(m["reason"].as_str())
                .unwrap()
                .to_string()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_browser_input_disconnects_that_tab_only_and_loses_nothing() {
    let (_one, tools) = browser_test!();
    let function =
        "export default (x) => new Promise((ok) => setTimeout(() => ok(Number(x) * Number(x)), 2));";
    let config = MapConfig {
        max_frame: 64 * 1024,
        // Each hostile socket that held values charges them once.
        max_retries: Some(20),
        ..config()
    };
    let master = Master::start(config, function, &[]).await;
    let browser = Browser::start(&tools).await;
    let (open, mut rx, run) = master.run(inputs(600));

    // The page without the token, or with a wrong one, says so, and has no script.
    for (url, says) in [
        (
            master.page.split('?').next().unwrap().to_string(),
            "needs the join token",
        ),
        (format!("{}x", master.page), "Wrong join token"),
    ] {
        browser.client.goto(&url).await.unwrap();
        let text = browser
            .client
            .find(Locator::Id("refused"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(text.contains(says), "{url}: {text}");
        let scripts: Json = browser
            .client
            .execute("return document.scripts.length", vec![])
            .await
            .unwrap();
        assert_eq!(scripts, json!(0));
    }

    let honest = working_tab(&browser, &master.page).await;
    let _ = open.send(());
    let mut got = results(&mut rx, 20, 60).await;

    browser
        .open_tab(&master.page.replace("/?", "/nothing-here?"))
        .await;
    let cases = [
        ("wrong-token", "wrong join token"),
        ("invalid-json", "not a JSON frame"),
        ("wrong-type", "invalid type"),
        ("invalid-utf8", "not UTF-8"),
        ("never-lent", "answered value #987654321, which it does not hold"),
        ("duplicate", "which it does not hold"),
        ("result-of-wrong-type", "payload: invalid type"),
        ("oversized", ""),
    ];
    for (plan, says) in cases {
        let seen = hostile(&browser, &master, plan).await;
        let why = refusal(&seen);
        assert!(why.contains(says), "{plan}: {seen}");
        if plan == "oversized" {
            assert_ne!(seen["code"], json!(1000), "{plan}: {seen}");
        }
        // The master's log names the tab and says why it was dropped.
        let name = format!("hostile {plan}");
        let line = if plan == "wrong-token" {
            logged(&["wrong join token"]).await
        } else {
            logged(&[
                &name,
                "dropped",
                if plan == "oversized" {
                    "over the limit"
                } else {
                    says
                },
            ])
            .await
        };
        eprintln!("{plan}: {seen} / {line}");
        let stats = master.map.stats();
        let hostile_name = format!("hostile {plan}");
        if plan != "wrong-token" {
            let it = stats.workers.iter().find(|w| w.name == hostile_name);
            assert!(
                it.is_some_and(|w| !w.connected),
                "{plan}: the tab is named and disconnected: {stats}"
            );
        }
    }
    browser.client.switch_to_window(honest).await.unwrap();
    got.extend(results(&mut rx, 580, 120).await);
    assert_eq!(got, squares(600), "nothing lost, nothing twice");
    ended(run).await;
    browser.end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_keep_a_tab_whose_function_runs_longer_than_the_heartbeat_timeout() {
    let (_one, tools) = browser_test!();
    // Each value keeps its Web Worker busy for 1.5 s, longer than the
    // heartbeat timeout (1 s): the page's main thread keeps the connection alive.
    let function = "export default (x) => { const end = Date.now() + 1500; while (Date.now() < end) {} return Number(x) * Number(x); };";
    let config = MapConfig {
        heartbeat: Duration::from_millis(100),
        heartbeat_timeout: Duration::from_secs(1),
        ..config()
    };
    let master = Master::start(config, function, &[]).await;
    let browser = Browser::start(&tools).await;
    let (open, mut rx, run) = master.run(inputs(3));
    working_tab(&browser, &master.page).await;
    let _ = open.send(());
    assert_eq!(results(&mut rx, 3, 60).await, squares(3));
    ended(run).await;
    let stats = master.map.stats();
    assert_eq!(stats.workers.len(), 1, "the tab was never dropped: {stats}");
    assert_eq!(
        (stats.workers[0].done, stats.workers[0].failed),
        (3, 0),
        "{stats}"
    );
    browser.end().await;
}
