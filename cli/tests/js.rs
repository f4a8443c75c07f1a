//! `pando --js`: the volunteer page's URLs, the page and the function file
//! on the master's port, and native workers in the same run. The browser
//! itself is driven in pando-web's browser tests.

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{PANDO, join_url, lines, next_line, quiet};

/// How long to wait for each line of the master.
const LINE: Duration = Duration::from_secs(30);

/// A plain HTTP/1.1 GET; the status line and the body.
fn get(url: &str) -> (String, String) {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut tcp = std::net::TcpStream::connect(host).unwrap();
    tcp.set_read_timeout(Some(LINE)).unwrap();
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).unwrap();
    let status = response.lines().next().unwrap_or_default().to_string();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn js_serves_the_page_and_the_function_and_native_workers_share_the_run() {
    let dir = std::env::temp_dir().join(format!("pando-js-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let function = dir.join("square.js");
    std::fs::write(&function, "export default (x) => Number(x) * Number(x);").unwrap();
    let mut master = Command::new(PANDO)
        .args(["--bind", "127.0.0.1", "--js"])
        .arg(&function)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first lines: the native join command, then the volunteer URLs.
    let stderr = lines(master.stderr.take().unwrap());
    let next = || next_line(&stderr, LINE, "a line from the master");
    let native = join_url(&next());
    assert_eq!(next(), "pando: volunteers open in a browser:");
    let page = next();
    let page = page
        .strip_prefix("pando:   ")
        .unwrap_or_else(|| panic!("no volunteer URL in {page:?}"));
    assert!(
        page.starts_with("http://127.0.0.1:") && page.contains("/?token="),
        "{page}"
    );
    // Bound to 127.0.0.1: that address only; the monitoring page there too.
    let monitor = next();
    assert_eq!(
        monitor,
        format!(
            "pando: watch the run at {}",
            page.replacen("/?token=", "/monitor?token=", 1)
        ),
    );
    // No COMMAND: no local workers.
    let local = next();
    assert!(local.contains("no local workers"), "{local}");

    let (status, body) = get(page);
    assert!(status.contains("200"), "{status}");
    assert!(body.contains("const FUNCTION = \"square.js\";"), "{body}");
    let (status, body) = get(page.split('?').next().unwrap());
    assert!(
        status.contains("401") && body.contains("needs the join token"),
        "{status} {body}"
    );
    let token = page.split("token=").nth(1).unwrap();
    let base = page.split('?').next().unwrap();
    let (status, body) = get(&format!("{base}t/{token}/fn/square.js"));
    assert!(
        status.contains("200") && body.contains("export default"),
        "{status} {body}"
    );
    let (status, _) = get(&format!("{base}t/wrong/fn/square.js"));
    assert!(status.contains("403"), "{status}");

    // A native worker, with its own command (the master has none), does the run.
    let mut worker = quiet(&["work", &native, "--", "sh", "-c", "read x; echo $((x*x))"], &[]);
    let mut stdin = master.stdin.take().unwrap();
    stdin.write_all(b"1\n2\n3\n").unwrap();
    drop(stdin);
    let mut out = String::new();
    master.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert_eq!(out, "1\n4\n9\n");
    assert!(master.wait().unwrap().success());
    assert!(worker.wait().unwrap().success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn public_url_replaces_the_printed_addresses() {
    let dir = std::env::temp_dir().join(format!("pando-js-public-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("f.js"), "export default (x) => x;").unwrap();
    // It waits for volunteers (the input is read as workers ask): read what
    // it printed, then stop it.
    let mut master = Command::new(PANDO)
        .args([
            "--bind",
            "127.0.0.1",
            "--token",
            "tok",
            "--public-url",
            "https://example.org/pando/",
            "--js",
        ])
        .arg(dir.join("f.js"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = lines(master.stderr.take().unwrap());
    let printed: Vec<String> = (0..5)
        .map(|_| next_line(&stderr, LINE, "a line from the master"))
        .collect();
    let _ = master.kill();
    let _ = master.wait();
    assert_eq!(
        printed[0],
        "pando: other machines join with: pando work 'wss://example.org/pando/?token=tok'"
    );
    assert_eq!(printed[1], "pando: volunteers open in a browser:");
    assert_eq!(printed[2], "pando:   https://example.org/pando/?token=tok");
    assert_eq!(
        printed[3],
        "pando: watch the run at https://example.org/pando/monitor?token=tok"
    );
    assert!(printed[4].contains("no local workers"), "{printed:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn js_and_a_missing_file_is_one_clear_line() {
    let out = Command::new(PANDO)
        .args(["--js", "/no/such/f.js"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("pando: --js: cannot read the function file /no/such/f.js"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}
