//! Join URLs and tokens: how a worker finds a master and proves it may join.
//!
//! A join URL is the transport's URL with the token in its query string,
//! percent-encoded: `ws://HOST:PORT/?token=TOKEN` or `tcp://HOST:PORT?token=TOKEN`.
//! The transports ignore the path and the query; the token travels in the
//! worker's `Hello`.

use subtle::ConstantTimeEq;
use url::Url;

/// A fresh join token: 128 bits from the operating system's random source, in hex.
///
/// ```
/// let a = pando_distributed_map::generate_token();
/// assert_eq!(a.len(), 32);
/// assert_ne!(a, pando_distributed_map::generate_token());
/// ```
pub fn generate_token() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source is available");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The join URL for a listener URL and a token: `URL?token=TOKEN`, with the
/// token percent-encoded (any other query is replaced).
///
/// ```
/// use pando_distributed_map::{join_url, split_join_url};
/// assert_eq!(join_url("ws://127.0.0.1:9000/", "ab"), "ws://127.0.0.1:9000/?token=ab");
/// let url = join_url("tcp://127.0.0.1:9000", "a&b c");
/// assert_eq!(url, "tcp://127.0.0.1:9000?token=a%26b+c");
/// assert_eq!(split_join_url(&url), ("tcp://127.0.0.1:9000".to_string(), "a&b c".to_string()));
/// ```
pub fn join_url(listener_url: &str, token: &str) -> String {
    match Url::parse(listener_url) {
        Ok(mut url) => {
            url.query_pairs_mut().clear().append_pair("token", token);
            url.to_string()
        }
        // Not a URL: the connector will say so; keep the token readable.
        Err(_) => format!("{listener_url}?token={token}"),
    }
}

/// Splits a join URL into the transport URL (without the query) and the
/// token (percent-decoded; empty if none).
///
/// ```
/// use pando_distributed_map::split_join_url;
/// assert_eq!(split_join_url("ws://h:1/?token=ab"), ("ws://h:1/".to_string(), "ab".to_string()));
/// assert_eq!(split_join_url("ws://h:1/"), ("ws://h:1/".to_string(), String::new()));
/// ```
pub fn split_join_url(join_url: &str) -> (String, String) {
    let Ok(mut url) = Url::parse(join_url) else {
        return (join_url.to_string(), String::new());
    };
    let token = url
        .query_pairs()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    url.set_query(None);
    url.set_fragment(None);
    (url.to_string(), token)
}

/// The join URLs of a listener bound to `listener_url`: one for workers on
/// this machine (an unspecified address such as `0.0.0.0` becomes
/// `127.0.0.1`) and one for other machines (it becomes this machine's host name).
///
/// ```
/// use pando_distributed_map::join::local_and_public_urls;
/// let (local, public) = local_and_public_urls("ws://0.0.0.0:9000/", "ab");
/// assert_eq!(local, "ws://127.0.0.1:9000/?token=ab");
/// assert!(public.ends_with(":9000/?token=ab") && !public.contains("0.0.0.0"));
/// ```
pub fn local_and_public_urls(listener_url: &str, token: &str) -> (String, String) {
    let with_host = |host: &str| -> String {
        let Ok(mut url) = Url::parse(listener_url) else {
            return listener_url.to_string();
        };
        // For a scheme the `url` crate does not know (`tcp`), an IPv4 host is
        // kept as a name: parse it here.
        let unspecified = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_unspecified(),
            Some(url::Host::Ipv6(ip)) => ip.is_unspecified(),
            Some(url::Host::Domain(name)) => name
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_unspecified()),
            None => false,
        };
        if unspecified && url.set_host(Some(host)).is_err() {
            return listener_url.to_string();
        }
        url.to_string()
    };
    (
        join_url(&with_host("127.0.0.1"), token),
        join_url(&with_host(&hostname()), token),
    )
}

/// This machine's host name (`localhost` if it has none that is valid UTF-8).
///
/// ```
/// assert!(!pando_distributed_map::join::hostname().is_empty());
/// ```
pub fn hostname() -> String {
    gethostname::gethostname()
        .into_string()
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Compares tokens in time independent of where they differ.
pub(crate) fn same_token(given: &str, expected: &str) -> bool {
    given.as_bytes().ct_eq(expected.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_with_reserved_characters_survive_the_round_trip() {
        for token in ["a&b", "x=y", "100%", "é", "a b", "#frag", "?q"] {
            for base in ["ws://127.0.0.1:1/", "tcp://127.0.0.1:1", "memory://local"] {
                let (b, t) = split_join_url(&join_url(base, token));
                assert_eq!(t, token, "{base}");
                assert_eq!(b, base);
            }
        }
    }

    #[test]
    fn a_tcp_public_url_does_not_keep_the_unspecified_address() {
        let (local, public) = local_and_public_urls("tcp://0.0.0.0:9000", "ab");
        assert_eq!(local, "tcp://127.0.0.1:9000?token=ab");
        assert!(!public.contains("0.0.0.0"), "{public}");
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abd", "abc"));
        assert!(!same_token("ab", "abc"));
        assert!(!same_token("", "abc"));
    }
}
