//! What the browser tests and the browser benchmark share: chromium
//! through chromedriver (fantoccini), and deadlines.

#![allow(dead_code)]

use std::future::Future;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

pub(crate) const CHROMIUM: &str = "/usr/bin/chromium";
pub(crate) const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Waits for `what` for at most `secs` seconds, or fails saying what it waited for.
pub(crate) async fn within<T>(secs: u64, what: &str, f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(secs), f).await {
        Ok(t) => t,
        Err(_) => panic!("timed out after {secs} s waiting for {what}"),
    }
}

/// The browser's tools, or why the test is skipped. With
/// `PANDO_BROWSER_TESTS=required` (`.ci/run` in CI), a missing tool fails
/// the test instead.
pub(crate) fn tools() -> Result<(), String> {
    for tool in [CHROMIUM, CHROMEDRIVER] {
        if !Path::new(tool).exists() {
            let why = format!("{tool} is missing (apt-get install chromium chromium-driver; .ci/run does)");
            if std::env::var("PANDO_BROWSER_TESTS").as_deref() == Ok("required") {
                panic!("PANDO_BROWSER_TESTS=required, but {why}");
            }
            return Err(format!("skipped: {why}"));
        }
    }
    Ok(())
}

/// chromedriver and one chromium session through it; both end when dropped.
pub(crate) struct Browser {
    pub(crate) client: Client,
    _driver: tokio::process::Child,
}

impl Browser {
    pub(crate) async fn start() -> Browser {
        // chromedriver's own `--port=0` can fail ("IPv4 port not available"):
        // give it a port that was free a moment ago, and try again if it
        // was taken meanwhile.
        let mut attempt = 0;
        let (driver, port) = loop {
            attempt += 1;
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let mut driver = tokio::process::Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                // Its own process group, with the chromium it starts: a test
                // that fails leaves no browser behind (see `Drop`).
                .process_group(0)
                .spawn()
                .expect("chromedriver starts");
            let mut lines = BufReader::new(driver.stdout.take().expect("piped")).lines();
            let started = within(30, "chromedriver to say it started", async {
                let mut said = Vec::new();
                while let Some(line) = lines.next_line().await.expect("chromedriver's output") {
                    said.push(line.clone());
                    if line.contains("started successfully") {
                        return Ok(());
                    }
                }
                Err(said)
            })
            .await;
            match started {
                Ok(()) => {
                    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                    break (driver, port);
                }
                Err(said) if attempt < 5 => eprintln!("chromedriver did not start, trying again: {said:?}"),
                Err(said) => panic!("chromedriver did not start in 5 attempts: {said:?}"),
            }
        };
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-background-timer-throttling",
                    "--disable-renderer-backgrounding",
                    "--disable-background-networking",
                    "--disable-backgrounding-occluded-windows",
                    "--disable-dev-shm-usage",
                    "--disable-crash-reporter",
                    "--disable-breakpad",
                    "--window-size=1000,800",
                ],
            }),
        );
        let client = within(60, "a chromium session", async {
            ClientBuilder::rustls()
                .expect("rustls")
                .capabilities(caps)
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
                .expect("chromium starts through chromedriver")
        })
        .await;
        Browser {
            client,
            _driver: driver,
        }
    }

    /// Opens `url` in a new tab, which becomes the current one.
    pub(crate) async fn open_tab(&self, url: &str) -> fantoccini::wd::WindowHandle {
        let tab = self.client.new_window(true).await.expect("a new tab").handle;
        self.client.switch_to_window(tab.clone()).await.expect("switch");
        self.client.goto(url).await.expect("goto");
        tab
    }

    /// Waits until the current tab's page says `status`.
    pub(crate) async fn wait_status(&self, status: &str) {
        self.client
            .wait()
            .at_most(Duration::from_secs(60))
            .for_element(Locator::Css(&format!("#status[data-status={status}]")))
            .await
            .unwrap_or_else(|e| panic!("the tab's status never became {status:?}: {e}"));
    }

    pub(crate) async fn end(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    /// Kills chromedriver's process group: chromedriver and the chromium it
    /// started, even when a test failed before closing the session.
    fn drop(&mut self) {
        if let Some(pid) = self._driver.id() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stderr(Stdio::null())
                .status();
        }
    }
}
