//! What the rows run besides this process: the `pando` binary (built with
//! cargo), the JavaScript originals on node (installed with npm under
//! `target/`), GNU parallel and the filters. Each is looked for once, when a
//! row first needs it; a missing one is a reason to skip, never a guess.

use std::cell::OnceCell;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wait_timeout::ChildExt;

/// The JavaScript originals, at the versions the rows compare with.
pub(crate) const JS_PACKAGES: [(&str, &str); 3] = [
    ("pull-stream", "3.7.0"),
    ("pull-limit", "1.2.2"),
    ("pull-lend-stream", "1.2.2"),
];

/// The node side of the rows, written next to the installed packages.
const PEERS_JS: &str = include_str!("../js/peers.js");

/// What every row may use; the costly parts are prepared on first use.
#[derive(Debug)]
pub(crate) struct Ctx {
    /// Small sizes, for a smoke test.
    pub(crate) quick: bool,
    /// Runs per figure.
    pub(crate) runs: usize,
    /// Runs of the 10^7-value memory row (a few minutes each).
    pub(crate) memory_runs: usize,
    /// A folder of this build's own under `target/`, for inputs, outputs and
    /// node packages.
    pub(crate) scratch: PathBuf,
    pando_given: Option<PathBuf>,
    pando: OnceCell<Result<PathBuf, String>>,
    node: OnceCell<Result<Node, String>>,
}

impl Ctx {
    /// A context; `pando` overrides the binary that would be built.
    pub(crate) fn new(quick: bool, runs: usize, memory_runs: usize, pando: Option<PathBuf>) -> Ctx {
        Ctx {
            quick,
            runs,
            memory_runs,
            scratch: target_dir().join("pando-bench"),
            pando_given: pando,
            pando: OnceCell::new(),
            node: OnceCell::new(),
        }
    }

    /// The `pando` binary: `--pando`, or built with cargo in this binary's
    /// profile and target directory.
    pub(crate) fn pando(&self) -> Result<&Path, String> {
        self.pando
            .get_or_init(|| match &self.pando_given {
                Some(p) if p.is_file() => Ok(p.clone()),
                Some(p) => Err(format!("pando not found at {}", p.display())),
                None => build_pando(),
            })
            .as_deref()
            .map_err(Clone::clone)
    }

    /// Node with `package` installed (all of [`JS_PACKAGES`] are installed
    /// on the first call).
    pub(crate) fn node(&self, package: &str) -> Result<&Node, String> {
        let node = self
            .node
            .get_or_init(|| install_node_peers(&self.scratch.join("node")))
            .as_ref()
            .map_err(Clone::clone)?;
        let (_, version) = JS_PACKAGES
            .iter()
            .find(|(name, _)| *name == package)
            .expect("one of JS_PACKAGES");
        if installed_version(&node.dir, package).as_deref() == Some(*version) {
            Ok(node)
        } else {
            Err(format!(
                "{package} {version} not found under {}",
                node.dir.display()
            ))
        }
    }
}

/// Where this binary was built: `target/`.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the path of this binary");
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The workspace this binary was built from.
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ is inside the workspace")
        .to_path_buf()
}

/// `cargo build -p pando-cli` in this binary's profile and target directory.
fn build_pando() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot locate pando-bench: {e}"))?;
    let profile_dir = exe.parent().ok_or("pando-bench has no folder")?;
    let profile = profile_dir
        .file_name()
        .and_then(|p| p.to_str())
        .unwrap_or("release");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.args(["build", "--quiet", "-p", "pando-cli", "--bin", "pando"])
        .current_dir(workspace_root())
        .env("CARGO_TARGET_DIR", target_dir());
    match profile {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    eprintln!("pando-bench: building pando ({profile}) with {cmd:?}");
    let status = cmd
        .status()
        .map_err(|e| format!("cargo not found ({e}): cannot build pando"))?;
    let pando = profile_dir.join("pando");
    if status.success() && pando.is_file() {
        Ok(pando)
    } else {
        Err(format!(
            "pando not found: `cargo build -p pando-cli` ended with {status}"
        ))
    }
}

/// Node, and the JavaScript originals installed with npm into `dir`.
#[derive(Debug)]
pub(crate) struct Node {
    node: PathBuf,
    dir: PathBuf,
}

impl Node {
    /// One run of `node peers.js ARGS… n 1`: nanoseconds per item of the
    /// measured run (each process first runs the job once unmeasured).
    pub(crate) fn ns_per_item(&self, args: &[&str], n: u64) -> Result<f64, String> {
        let out = Command::new(&self.node)
            .arg(self.dir.join("peers.js"))
            .args(args)
            .args([n.to_string(), "1".to_string()])
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("node: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "node peers.js {} ended with {}: {}",
                args.join(" "),
                out.status,
                tail(&String::from_utf8_lossy(&out.stderr))
            ));
        }
        stdout
            .lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| format!("node peers.js {} printed no figure", args.join(" ")))
    }
}

/// The version of `package` installed under `dir`, from its package.json.
fn installed_version(dir: &Path, package: &str) -> Option<String> {
    let json = std::fs::read_to_string(dir.join("node_modules").join(package).join("package.json")).ok()?;
    let after = &json[json.find("\"version\"")? + "\"version\"".len()..];
    let start = after.find('"')? + 1;
    let end = start + after[start..].find('"')?;
    Some(after[start..end].to_string())
}

/// Finds node and npm, and installs [`JS_PACKAGES`] into `dir` unless they
/// are there already.
fn install_node_peers(dir: &Path) -> Result<Node, String> {
    let node = which::which("node").map_err(|_| "node not found".to_string())?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    std::fs::write(dir.join("peers.js"), PEERS_JS).map_err(|e| format!("{}: {e}", dir.display()))?;
    let missing: Vec<String> = JS_PACKAGES
        .iter()
        .filter(|(name, version)| installed_version(dir, name).as_deref() != Some(*version))
        .map(|(name, version)| format!("{name}@{version}"))
        .collect();
    if !missing.is_empty() {
        let npm = which::which("npm")
            .map_err(|_| format!("{} not found (npm not found to install them)", missing.join(", ")))?;
        let package_json = dir.join("package.json");
        if !package_json.exists() {
            std::fs::write(&package_json, "{ \"private\": true }\n")
                .map_err(|e| format!("{}: {e}", package_json.display()))?;
        }
        eprintln!(
            "pando-bench: npm install {} into {}",
            missing.join(" "),
            dir.display()
        );
        let mut cmd = Command::new(npm);
        cmd.args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
            .args(&missing)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        timed(&mut cmd, Duration::from_secs(300), None)
            .map_err(|e| format!("{} not found (npm install: {e})", missing.join(", ")))?;
    }
    Ok(Node {
        node,
        dir: dir.to_path_buf(),
    })
}

/// The last line or two of `text`, for an error message.
pub(crate) fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(2)..].join(" / ")
}

/// Runs `cmd` to its end, at most `limit` (then kills it); returns how long
/// it took. A failure names the exit status and, when `stderr` is the file
/// its standard error went to, the end of it.
pub(crate) fn timed(cmd: &mut Command, limit: Duration, stderr: Option<&Path>) -> Result<Duration, String> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("{program}: {e}"))?;
    let status = child.wait_timeout(limit).map_err(|e| format!("{program}: {e}"))?;
    let elapsed = start.elapsed();
    let err_tail = || {
        stderr
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|s| tail(&s))
            .unwrap_or_default()
    };
    match status {
        None => {
            let _ = child.kill();
            let _ = child.wait();
            Err(format!("{program} still running after {limit:?}: killed"))
        }
        Some(status) if status.success() => Ok(elapsed),
        Some(status) => Err(format!("{program} ended with {status}: {}", err_tail())),
    }
}

/// A file in the scratch folder, created empty (for a command's output).
pub(crate) fn scratch_file(ctx: &Ctx, name: &str) -> Result<(PathBuf, File), String> {
    std::fs::create_dir_all(&ctx.scratch).map_err(|e| format!("{}: {e}", ctx.scratch.display()))?;
    let path = ctx.scratch.join(name);
    let file = File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((path, file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_installed_version() {
        let dir = std::env::temp_dir().join(format!("pando-bench-npm-{}", std::process::id()));
        let pkg = dir.join("node_modules").join("pull-limit");
        std::fs::create_dir_all(&pkg).unwrap();
        std::fs::write(
            pkg.join("package.json"),
            "{\n  \"name\": \"pull-limit\",\n  \"version\": \"1.2.2\",\n  \"main\": \"src/index.js\"\n}\n",
        )
        .unwrap();
        assert_eq!(installed_version(&dir, "pull-limit").as_deref(), Some("1.2.2"));
        assert_eq!(installed_version(&dir, "pull-stream"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failing_command_names_its_status() {
        let err = timed(
            Command::new("sh").args(["-c", "exit 3"]),
            Duration::from_secs(60),
            None,
        )
        .unwrap_err();
        assert!(err.contains("exit status: 3"), "{err}");
    }
}
