//! The Genet tree in `pando`: `pando --children-limit L` makes the master
//! the root of a fat tree, with the relay built in; `pando work URL`, with
//! the tree's URL (its path is `/genet`), joins the tree as a node, which
//! computes while it is a leaf and relays values to its children once it
//! has some (see `pando_genet::tree`).

use std::num::NonZeroUsize;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pando_distributed_map::frame::DEFAULT_MAX_FRAME;
use pando_distributed_map::session::RESULT_OVERHEAD;
use pando_distributed_map::{generate_token, join_url, split_join_url};
use pando_genet::tree::{self, TreeConfig, TreeError, Volunteer};
use pando_genet::ws::{Relay, RelayConfig, WsNode, WsNodeConfig};
use pando_genet::{Backoff, Config, Event};

use crate::runner::Runner;
use crate::{Map, WorkArgs, confirm, fail, runner_mode, shutdown_signal};

/// The path of a tree's join URL: `pando work` joins the tree when its URL has it.
pub(crate) const TREE_PATH: &str = "/genet";

/// How long a node waits for its parent link after joining (or re-joining),
/// at each attempt.
const PARENT_WAIT: Duration = Duration::from_secs(60);

/// A tree node's join and candidate timeouts.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The root of a tree: the relay, and the master's node.
pub(crate) struct Root {
    _relay: Relay,
    _node: WsNode,
}

/// Starts the relay on `bind:relay_port` and the master's root node, which
/// listens for children on `host` (an address they reach), and lends the
/// map's values to them. Returns the root and the tree's join URL.
pub(crate) async fn start_root(
    map: &Map,
    bind: &str,
    relay_port: u16,
    host: &str,
    children_limit: NonZeroUsize,
) -> Result<(Root, String), String> {
    let token = map.config().token.clone();
    let secret = generate_token();
    let relay = Relay::bind(&format!("{bind}:{relay_port}"), RelayConfig::new(&secret, &token))
        .await
        .map_err(|e| {
            format!("--children-limit: cannot start the tree's relay on {bind}:{relay_port}: {e}")
        })?;
    let port = relay
        .url()
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse::<u16>().ok())
        .ok_or_else(|| format!("the relay's URL {} has no port", relay.url()))?;
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut cfg = WsNodeConfig::new(&format!("ws://{authority}/"), &token, seed());
    cfg.listen = Some(if host.contains(':') {
        format!("[{host}]:0")
    } else {
        format!("{host}:0")
    });
    cfg.app_links = true;
    cfg.genet = Config {
        children_limit: children_limit.get(),
        ..Config::default()
    };
    let mut node = WsNode::start(cfg)
        .await
        .map_err(|e| format!("--children-limit: cannot start the tree's root: {e}"))?;
    log_events(&node, Arc::new(AtomicBool::new(false)));
    let links = node.take_links().ok_or("the root node gives no links")?;
    tree::lend_to_children(map, links, map.config().batch_size);
    node.become_root(&secret)
        .await
        .map_err(|e| format!("--children-limit: the root could not register: {e}"))?;
    let url = join_url(&format!("ws://{authority}{TREE_PATH}"), &token);
    Ok((
        Root {
            _relay: relay,
            _node: node,
        },
        url,
    ))
}

fn seed() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        return u64::from(std::process::id()) ^ 0x9e37_79b9_7f4a_7c15;
    }
    u64::from_le_bytes(b)
}

/// Logs what the node says of its tree: errors as warnings (at debug level
/// once `ending` is set: the run is over), the rest at debug level
/// (`RUST_LOG=debug`).
pub(crate) fn log_events(node: &WsNode, ending: Arc<AtomicBool>) {
    let mut events = node.subscribe();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(Event::Error(e)) if ending.load(Ordering::Relaxed) => tracing::debug!("genet: {e}"),
                Ok(Event::Error(e)) => tracing::warn!("genet: {e}"),
                Ok(Event::Left { reason }) => tracing::info!("genet: left the tree ({reason:?})"),
                Ok(Event::Rejoining { .. }) => tracing::info!("genet: re-joining the tree"),
                Ok(e) => tracing::debug!("genet: {e:?}"),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::debug!("genet: {n} events not logged (too many at once)")
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
}

/// Whether `url` (a ws:// URL) is a tree's join URL.
pub(crate) fn is_tree_url(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| u.scheme() == "ws" && u.path() == TREE_PATH)
}

/// `pando work` with a tree's URL: joins the tree as a node and serves
/// the parents it gets until one says it is done.
pub(crate) async fn work(args: &WorkArgs, url: &str, shown: &str, name: String, jobs: usize) -> ExitCode {
    let (base, token) = split_join_url(url);
    let mut cfg = WsNodeConfig::new(&base, &token, seed());
    cfg.listen = args.listen.clone();
    cfg.app_links = true;
    cfg.genet = Config {
        children_limit: args.children_limit.get(),
        rejoin: args.reconnect.map(|_| Backoff::default()),
        // Over WebSocket a join takes milliseconds: one lost on its way (to
        // a parent that just died) is retried after 10 s, not the seeds' 60 s.
        candidate_timeout: JOIN_TIMEOUT,
        join_timeout: JOIN_TIMEOUT,
        ..Config::default()
    };
    let node = tokio::select! {
        node = WsNode::start(cfg) => match node {
            Ok(node) => node,
            Err(e) => return fail(format!("cannot join the tree at {shown}: {}", e.to_string().replace(url, shown))),
        },
        code = shutdown_signal() => return code,
    };
    // After the run's end, the relay and the parent going away is normal.
    let ending = Arc::new(AtomicBool::new(false));
    log_events(&node, ending.clone());
    match node.listen_url() {
        Some(at) => tracing::info!("joining the tree at {shown}; taking children at {at}"),
        None => tracing::info!("joining the tree at {shown} as a leaf (no --listen)"),
    }
    let mut config = TreeConfig::new(name);
    config.batch_size = args.batch_size;
    config.jobs = NonZeroUsize::new(jobs).unwrap_or(NonZeroUsize::MIN);
    let mut volunteer = match Volunteer::new(node, &token, config) {
        Ok(v) => v,
        Err(e) => return fail(e),
    };
    let mut agreed: Option<Vec<String>> = None;
    // With --reconnect: since when this node has had no parent.
    let mut orphan_since: Option<tokio::time::Instant> = None;
    loop {
        let session = tokio::select! {
            s = volunteer.next_parent(PARENT_WAIT) => s,
            code = shutdown_signal() => return code,
        };
        let session = match session {
            Ok(s) => s,
            Err(TreeError::Stopped) => {
                // The relay (the master) went away while this node had no
                // parent, so it held nothing: the run is over, or its master
                // is gone.
                ending.store(true, Ordering::Relaxed);
                tracing::info!("the tree's relay at {shown} closed while this node had no parent: stopping");
                return ExitCode::SUCCESS;
            }
            // With --reconnect, a join or a parent's handshake that fails is
            // tried again (the node re-joins) until the window closes.
            Err(e @ (TreeError::NoParent(_) | TreeError::Parent { .. }))
                if args.reconnect.is_some_and(|window| {
                    orphan_since
                        .get_or_insert_with(tokio::time::Instant::now)
                        .elapsed()
                        < window
                }) =>
            {
                tracing::warn!("tree at {shown}: {e}; trying again");
                continue;
            }
            Err(e @ TreeError::NoParent(_)) => {
                return fail(format!(
                    "tree at {shown}: {e}; the tree may be full of nodes that take no children (joined without --listen)"
                ));
            }
            Err(e) => return fail(format!("tree at {shown}: {e}")),
        };
        let mode = match runner_mode(&session) {
            Ok(m) => m,
            Err(e) => return fail(e),
        };
        let command = if !args.command.is_empty() {
            args.command.clone()
        } else {
            let theirs = session.command().to_vec();
            match &agreed {
                Some(a) if *a == theirs => theirs,
                Some(a) => {
                    return fail(format!(
                        "a new parent in the tree at {shown} asks to run {theirs:?}, not {a:?} as agreed; stopping"
                    ));
                }
                None if theirs.is_empty() => {
                    return fail("the master did not say which command to run; name one after --");
                }
                None if !args.accept && !confirm(&theirs, mode) => {
                    return fail("declined to run the master's command");
                }
                None => theirs,
            }
        };
        agreed = Some(session.command().to_vec());
        let timeout = match (session.value_timeout(), args.timeout) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let runner = match Runner::new(command, mode, jobs, timeout, DEFAULT_MAX_FRAME - RESULT_OVERHEAD) {
            Ok(r) => Arc::new(r),
            Err(e) => return fail(e),
        };
        let served = tokio::select! {
            r = volunteer.serve(session, move |v: Vec<u8>| runner.run(v)) => r,
            code = shutdown_signal() => return code,
        };
        match served {
            Ok(_) => {
                ending.store(true, Ordering::Relaxed);
                volunteer.shutdown().await;
                return ExitCode::SUCCESS;
            }
            Err(e @ (TreeError::Parent { .. } | TreeError::Subtree(_))) if args.reconnect.is_some() => {
                tracing::warn!("lost the parent in the tree at {shown} ({e}); re-joining");
                orphan_since = Some(tokio::time::Instant::now());
            }
            Err(e) => return fail(format!("tree at {shown}: {e}")),
        }
    }
}
