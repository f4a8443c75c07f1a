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
        let mut driver = tokio::process::Command::new(CHROMEDRIVER)
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        // chromedriver says on which port it listens once it does.
        let mut lines = BufReader::new(driver.stdout.take().expect("piped")).lines();
        let port = within(30, "chromedriver to say it started", async {
            while let Some(line) = lines.next_line().await.expect("chromedriver's output") {
                if let Some(rest) = line.split("started successfully on port ").nth(1) {
                    return rest.trim().trim_end_matches('.').parse::<u16>().expect("a port");
                }
            }
            panic!("chromedriver ended before it started");
        })
        .await;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
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
        let _ = self.client.close().await;
    }
}
