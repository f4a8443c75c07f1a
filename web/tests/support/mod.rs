//! What the browser tests and the browser benchmark share: a master serving
//! a JavaScript function, finding chromium and chromedriver, one headless
//! chromium session through chromedriver (fantoccini, plain HTTP on
//! loopback), and deadlines.
//!
//! `PANDO_CHROMIUM` and `PANDO_CHROMEDRIVER` name other binaries than the
//! `chromium` and `chromedriver` on the `PATH`.

#![allow(dead_code)]

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use pando_distributed_map::codec::Line;
use pando_distributed_map::{DistributedMap, MapConfig, join_url};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

/// One browser at a time: each test runs its own chromium, and the machine is small.
pub(crate) static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The window's size unless a test asks for another ([`Browser::start_sized`]).
pub(crate) const WINDOW: (u32, u32) = (1000, 800);

/// Waits for `what` for at most `secs` seconds, or fails saying what it waited for.
pub(crate) async fn within<T>(secs: u64, what: &str, f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(secs), f).await {
        Ok(t) => t,
        Err(_) => panic!("timed out after {secs} s waiting for {what}"),
    }
}

/// A master on a loopback port with the JavaScript `function` (the file
/// `f.js` in a directory of its own, with `siblings` beside it).
pub(crate) struct Master {
    pub(crate) map: DistributedMap<Line, Line, ()>,
    /// The volunteer page, with the token.
    pub(crate) page: String,
    /// The native workers' join URL.
    pub(crate) native: String,
    /// The tabs' WebSocket endpoint.
    pub(crate) browser_ws: String,
    pub(crate) token: String,
    _dir: tempfile::TempDir,
}

impl Master {
    pub(crate) async fn start(config: MapConfig, function: &str, siblings: &[(&str, &str)]) -> Master {
        let dir = tempfile::tempdir().expect("a directory");
        std::fs::write(dir.path().join("f.js"), function).unwrap();
        for (name, source) in siblings {
            std::fs::write(dir.path().join(name), source).unwrap();
        }
        let map = DistributedMap::<Line, Line, ()>::new(config);
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let native = format!("ws://{addr}/");
        let (router, listener) = pando_web::Site::new(&map.config().token, map.config().max_frame)
            .function(dir.path().join("f.js"))
            .unwrap()
            .build(&native);
        map.serve(listener);
        tokio::spawn(pando_web::serve(tcp, router));
        let token = map.config().token.clone();
        Master {
            page: format!("http://{addr}/?token={token}"),
            native: join_url(&native, &token),
            browser_ws: format!("ws://{addr}/browser"),
            token,
            map,
            _dir: dir,
        }
    }
}

/// The browser and its driver.
#[derive(Debug, Clone)]
pub(crate) struct Tools {
    pub(crate) chromium: PathBuf,
    pub(crate) chromedriver: PathBuf,
}

/// The browser's tools, or `None` when they are missing and the caller
/// should skip: the reason then goes straight to stderr (the test harness
/// would hide an `eprintln!`). With `PANDO_BROWSER_TESTS=required`
/// (`.ci/run` in CI), a missing tool fails instead.
pub(crate) fn tools() -> Option<Tools> {
    let find = |var: &str, name: &str| -> Result<PathBuf, String> {
        match std::env::var_os(var) {
            Some(path) if std::path::Path::new(&path).is_file() => Ok(PathBuf::from(path)),
            Some(path) => Err(format!("{var}={} is not a file", PathBuf::from(path).display())),
            None => which::which(name).map_err(|e| {
                format!("{name} not found ({e}); set {var}, or apt-get install chromium chromium-driver (.ci/run does)")
            }),
        }
    };
    let found = find("PANDO_CHROMIUM", "chromium").and_then(|chromium| {
        Ok(Tools {
            chromium,
            chromedriver: find("PANDO_CHROMEDRIVER", "chromedriver")?,
        })
    });
    match found {
        Ok(tools) => Some(tools),
        Err(why) if std::env::var("PANDO_BROWSER_TESTS").as_deref() == Ok("required") => {
            panic!("PANDO_BROWSER_TESTS=required, but {why}")
        }
        Err(why) => {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: the browser test needs chromium and chromedriver: {why}"
            );
            None
        }
    }
}

/// chromedriver and one chromium session through it. [`Browser::end`] closes
/// the session; dropping the browser (a failed test) kills both.
pub(crate) struct Browser {
    pub(crate) client: Client,
    _driver: tokio::process::Child,
}

impl Browser {
    /// Starts chromedriver and a headless chromium of [`WINDOW`]'s size.
    pub(crate) async fn start(tools: &Tools) -> Browser {
        Self::start_sized(tools, WINDOW).await
    }

    /// Starts chromedriver and a headless chromium whose window is
    /// `(width, height)` pixels.
    pub(crate) async fn start_sized(tools: &Tools, (width, height): (u32, u32)) -> Browser {
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
            let mut driver = tokio::process::Command::new(&tools.chromedriver)
                .arg(format!("--port={port}"))
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                // Its own process group, with the chromium it starts: a test
                // that fails leaves no browser behind (see `Drop`).
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", tools.chromedriver.display()));
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
                    // Keep reading its stdout, so that it never blocks on a full pipe.
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
                "binary": tools.chromium,
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
                    format!("--window-size={width},{height}"),
                ],
            }),
        );
        let client = within(60, "a chromium session", async {
            // chromedriver is on loopback: plain HTTP, no TLS.
            ClientBuilder::new(HttpConnector::new())
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

    /// Ends the chromium session; chromedriver goes when `self` is dropped.
    pub(crate) async fn end(self) {
        within(30, "the chromium session to end", self.client.clone().close())
            .await
            .expect("the chromium session ends");
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
