//! URL import, SSRF-safe by construction. A URL is parsed (WHATWG rules, so odd IPv4
//! spellings such as `2130706433`, `0177.0.0.1`, `0x7f.1` and `127.1` become plain addresses
//! before anything is checked), its scheme must be http or https, it may carry no
//! credentials, its host is resolved exactly once, every resolved address must be public
//! (or on the operator's allow-list), and the connection goes to those checked addresses
//! only: the HTTP client is given a resolver that knows nothing else, so no second lookup
//! can be rebound. Redirects are followed here, not by the client, and every hop is checked
//! the same way. The client is fresh for every hop and sends no credential, cookie or
//! referrer; the caller's `Authorization` never leaves the service layer.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use ipnet::IpNet;
use tokio::time::Instant;
use url::{Host, Url};

use crate::Error;

/// How many redirects an import follows before giving up.
pub const MAX_REDIRECTS: usize = 5;
/// The default time cap of one import (resolution, connection, redirects and body).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The user agent upstream servers see.
const USER_AGENT: &str = concat!("warrant-import/", env!("CARGO_PKG_VERSION"));

/// Settings of URL import.
#[derive(Debug, Clone)]
pub struct ImportSettings {
    /// Addresses and host names that may be fetched although they are not public.
    pub allow: AllowList,
    /// The time cap of one import, from the request to the last byte.
    pub timeout: Duration,
    /// How many redirects are followed.
    pub max_redirects: usize,
}

impl Default for ImportSettings {
    fn default() -> Self {
        ImportSettings {
            allow: AllowList::default(),
            timeout: DEFAULT_TIMEOUT,
            max_redirects: MAX_REDIRECTS,
        }
    }
}

/// The operator's exceptions (`--import-allow`): networks (CIDR or single addresses) and host
/// names (`intranet.example`, or `*.corp.example` for every name below it). An allowed host
/// name may resolve to any address: the operator trusts that name's DNS.
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    nets: Vec<IpNet>,
    hosts: Vec<String>,
}

impl AllowList {
    /// Parses entries such as `127.0.0.1/32`, `10.0.0.0/8`, `::1`, `[fd00::1]`,
    /// `files.intranet`, `*.corp.example`.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        let mut list = AllowList::default();
        for raw in entries {
            let entry = raw.as_ref().trim();
            if entry.is_empty() {
                continue;
            }
            let bare = entry.trim_start_matches('[').replace(']', "");
            if let Ok(net) = bare.parse::<IpNet>() {
                list.nets.push(net.trunc());
            } else if let Ok(ip) = bare.parse::<IpAddr>() {
                list.nets.push(IpNet::from(ip));
            } else {
                let (wild, name) = match entry.strip_prefix("*.") {
                    Some(rest) => ("*.", rest),
                    None => ("", entry),
                };
                let ok = !name.is_empty()
                    && name.len() <= 253
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                    && !name.starts_with('.')
                    && !name.ends_with('.');
                if !ok {
                    return Err(format!(
                        "`{entry}` is neither a network (10.0.0.0/8), an address nor a host name"
                    ));
                }
                list.hosts
                    .push(format!("{wild}{}", name.to_ascii_lowercase()));
            }
        }
        Ok(list)
    }

    /// True when nothing is allowed beyond public addresses.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty() && self.hosts.is_empty()
    }

    fn permits_addr(&self, ip: IpAddr) -> bool {
        let canonical = ip.to_canonical();
        self.nets
            .iter()
            .any(|n| n.contains(&ip) || n.contains(&canonical))
    }

    fn permits_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.hosts.iter().any(|h| match h.strip_prefix("*.") {
            Some(suffix) => host
                .strip_suffix(suffix)
                .is_some_and(|rest| rest.ends_with('.') && rest.len() > 1),
            None => *h == host,
        })
    }
}

/// Why `ip` may not be fetched, or None when it is a public unicast address.
pub fn refusal(ip: IpAddr) -> Option<String> {
    match ip {
        IpAddr::V4(v4) => v4_refusal(v4).map(str::to_string),
        IpAddr::V6(v6) => v6_refusal(v6),
    }
}

/// Addresses no allow-list entry can open: connecting to them means something else than
/// reaching one host (0.0.0.0 reaches this machine on Linux).
fn never_allowed(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast(),
        IpAddr::V6(v6) => v6.is_unspecified() || v6.is_multicast(),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

/// The IANA special-purpose IPv4 blocks that are not globally reachable, and multicast.
fn v4_refusal(ip: Ipv4Addr) -> Option<&'static str> {
    const BLOCKS: &[([u8; 4], u32, &str)] = &[
        ([0, 0, 0, 0], 8, "an unspecified (\"this network\") address"),
        ([10, 0, 0, 0], 8, "a private address (RFC 1918)"),
        (
            [100, 64, 0, 0],
            10,
            "a shared carrier-grade NAT address (RFC 6598)",
        ),
        ([127, 0, 0, 0], 8, "a loopback address"),
        (
            [169, 254, 0, 0],
            16,
            "a link-local address (where cloud metadata services live)",
        ),
        ([172, 16, 0, 0], 12, "a private address (RFC 1918)"),
        ([192, 0, 0, 0], 24, "an IETF protocol assignment address"),
        ([192, 0, 2, 0], 24, "a documentation address"),
        ([192, 88, 99, 0], 24, "a 6to4 relay anycast address"),
        ([192, 168, 0, 0], 16, "a private address (RFC 1918)"),
        ([198, 18, 0, 0], 15, "a benchmarking address"),
        ([198, 51, 100, 0], 24, "a documentation address"),
        ([203, 0, 113, 0], 24, "a documentation address"),
        ([224, 0, 0, 0], 4, "a multicast address"),
        ([255, 255, 255, 255], 32, "the broadcast address"),
        ([240, 0, 0, 0], 4, "a reserved address"),
    ];
    BLOCKS
        .iter()
        .find(|(net, prefix, _)| in_v4(ip, *net, *prefix))
        .map(|(_, _, why)| *why)
}

fn in_v6(ip: Ipv6Addr, net: [u16; 8], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix)
    };
    u128::from(ip) & mask == u128::from(Ipv6Addr::from(net)) & mask
}

/// IPv6: only global unicast (2000::/3) outside its special blocks is public. Addresses that
/// carry an IPv4 address (mapped, NAT64, 6to4) are judged by that address.
fn v6_refusal(ip: Ipv6Addr) -> Option<String> {
    let o = ip.octets();
    let embedded = |at: usize| Ipv4Addr::new(o[at], o[at + 1], o[at + 2], o[at + 3]);
    let via = |what: &str, v4: Ipv4Addr| {
        v4_refusal(v4).map(|why| format!("{what} of {v4}, which is {why}"))
    };
    if ip.is_unspecified() {
        return Some("the unspecified address".into());
    }
    if ip.is_loopback() {
        return Some("a loopback address".into());
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return via("an IPv4-mapped form", v4);
    }
    if in_v6(ip, [0; 8], 96) {
        return Some(format!(
            "an IPv4-compatible form of {} (deprecated, never fetched)",
            embedded(12)
        ));
    }
    if in_v6(ip, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96) {
        return via("a NAT64 form", embedded(12));
    }
    if in_v6(ip, [0x2002, 0, 0, 0, 0, 0, 0, 0], 16) {
        return via("a 6to4 form", embedded(2));
    }
    const BLOCKS: &[([u16; 8], u32, &str)] = &[
        (
            [0x64, 0xff9b, 1, 0, 0, 0, 0, 0],
            48,
            "a local-use NAT64 address",
        ),
        ([0x100, 0, 0, 0, 0, 0, 0, 0], 64, "a discard-only address"),
        (
            [0x2001, 0, 0, 0, 0, 0, 0, 0],
            23,
            "an IETF protocol assignment address (Teredo, ORCHID, benchmarking)",
        ),
        (
            [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0],
            32,
            "a documentation address",
        ),
        ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, "a documentation address"),
        (
            [0xfc00, 0, 0, 0, 0, 0, 0, 0],
            7,
            "a unique local (private) address",
        ),
        ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, "a link-local address"),
        ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, "a site-local address"),
        ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, "a multicast address"),
    ];
    if let Some((_, _, why)) = BLOCKS
        .iter()
        .find(|(net, prefix, _)| in_v6(ip, *net, *prefix))
    {
        return Some((*why).to_string());
    }
    if !in_v6(ip, [0x2000, 0, 0, 0, 0, 0, 0, 0], 3) {
        return Some("not a global unicast address".into());
    }
    None
}

/// Checks one address against the rules and the allow-list; `subject` names it in the
/// refusal (`127.0.0.1`, or "`name` resolves to 127.0.0.1, which").
fn check_addr(
    ip: IpAddr,
    allow: &AllowList,
    host_allowed: bool,
    subject: &str,
) -> Result<(), Error> {
    if never_allowed(ip) {
        return Err(Error::ImportRefused(format!(
            "{subject} is {}; it is never fetched",
            refusal(ip).unwrap_or_else(|| "not a unicast address".into())
        )));
    }
    if host_allowed || allow.permits_addr(ip) {
        return Ok(());
    }
    match refusal(ip) {
        None => Ok(()),
        Some(why) => Err(Error::ImportRefused(format!(
            "{subject} is {why}; imports fetch only public addresses (an operator can allow \
             networks and hosts with --import-allow)"
        ))),
    }
}

/// Parses an import URL and checks what can be checked without the network.
pub fn parse_url(raw: &str) -> Result<Url, Error> {
    let url = Url::parse(raw.trim())
        .map_err(|e| Error::ImportRefused(format!("`url` is not a valid absolute URL: {e}")))?;
    check_url_shape(&url)?;
    Ok(url)
}

fn check_url_shape(url: &Url) -> Result<(), Error> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::ImportRefused(format!(
            "only http and https URLs can be imported, not `{}:`",
            url.scheme()
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::ImportRefused(
            "URLs with credentials (user:password@) are refused; the importer never sends \
             credentials"
                .into(),
        ));
    }
    if url.host().is_none() {
        return Err(Error::ImportRefused("the URL has no host".into()));
    }
    Ok(())
}

/// Where one hop connects: the checked addresses of its host.
#[derive(Debug, Clone)]
struct Pinned {
    /// The host name as the client will ask for it (None for an IP literal).
    name: Option<String>,
    addrs: Vec<SocketAddr>,
}

/// Resolves the URL's host once (with the deadline) and checks every address.
async fn resolve_checked(url: &Url, allow: &AllowList, deadline: Instant) -> Result<Pinned, Error> {
    check_url_shape(url)?;
    let port = url
        .port_or_known_default()
        .ok_or_else(|| Error::ImportRefused("the URL has no port".into()))?;
    match url.host() {
        Some(Host::Ipv4(v4)) => {
            check_addr(IpAddr::V4(v4), allow, false, &v4.to_string())?;
            Ok(Pinned {
                name: None,
                addrs: vec![SocketAddr::new(IpAddr::V4(v4), port)],
            })
        }
        Some(Host::Ipv6(v6)) => {
            check_addr(IpAddr::V6(v6), allow, false, &v6.to_string())?;
            Ok(Pinned {
                name: None,
                addrs: vec![SocketAddr::new(IpAddr::V6(v6), port)],
            })
        }
        Some(Host::Domain(name)) => {
            let lookup = tokio::net::lookup_host((name, port));
            let addrs: Vec<SocketAddr> = match tokio::time::timeout_at(deadline, lookup).await {
                Err(_) => return Err(timed_out("resolving the host name")),
                Ok(Err(e)) => {
                    return Err(Error::Upstream {
                        detail: format!("could not resolve `{name}`: {e}"),
                        timed_out: false,
                    });
                }
                Ok(Ok(a)) => a.collect(),
            };
            if addrs.is_empty() {
                return Err(Error::Upstream {
                    detail: format!("`{name}` has no address"),
                    timed_out: false,
                });
            }
            let host_allowed = allow.permits_host(name);
            for a in &addrs {
                let subject = format!("`{name}` resolves to {}, which", a.ip());
                check_addr(a.ip(), allow, host_allowed, &subject)?;
            }
            Ok(Pinned {
                name: Some(name.to_string()),
                addrs,
            })
        }
        None => Err(Error::ImportRefused("the URL has no host".into())),
    }
}

/// A resolver that answers only with the addresses checked for this hop: if the client ever
/// asked for another name, it would get nothing rather than an unchecked address.
struct PinnedResolver(Pinned);

impl reqwest::dns::Resolve for PinnedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let answer: Result<reqwest::dns::Addrs, Box<dyn std::error::Error + Send + Sync>> =
            match &self.0.name {
                Some(n) if n.eq_ignore_ascii_case(name.as_str()) => {
                    Ok(Box::new(self.0.addrs.clone().into_iter()))
                }
                _ => Err(format!("`{}` was not checked for this import", name.as_str()).into()),
            };
        Box::pin(std::future::ready(answer))
    }
}

fn timed_out(during: &str) -> Error {
    Error::Upstream {
        detail: format!("the import ran out of time while {during}"),
        timed_out: true,
    }
}

/// A reqwest error with its causes (the top level alone says little).
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn upstream_error(e: &reqwest::Error, during: &str) -> Error {
    if e.is_timeout() {
        timed_out(during)
    } else {
        Error::Upstream {
            detail: format!("{during} failed: {}", describe(e)),
            timed_out: false,
        }
    }
}

/// A failure of the upstream body, kept aside so it can be reported as such (502/504) rather
/// than as a bad request body.
#[derive(Clone, Default)]
pub struct FailureSlot(Arc<Mutex<Option<Error>>>);

impl FailureSlot {
    fn set(&self, e: Error) {
        if let Ok(mut slot) = self.0.lock() {
            slot.get_or_insert(e);
        }
    }

    /// The upstream failure, if the body stream ended with one.
    pub fn take(&self) -> Option<Error> {
        self.0.lock().ok().and_then(|mut s| s.take())
    }
}

/// The upstream body, streamed, ending by the deadline.
pub type UpstreamBody = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// A successful response, its body not yet read.
pub struct Fetched {
    /// The URL that answered (after redirects).
    pub final_url: Url,
    /// How many redirects were followed.
    pub redirects: usize,
    /// The upstream `Content-Type`.
    pub content_type: Option<String>,
    /// The upstream `Content-Length`.
    pub content_length: Option<u64>,
    /// The bytes.
    pub body: UpstreamBody,
    /// Where a failure while reading the body is recorded.
    pub failure: FailureSlot,
}

/// Fetches `url`, following and checking redirects, until a successful response or the
/// deadline. The body is left to stream (see [`Fetched::body`]).
pub async fn fetch(
    url: Url,
    settings: &ImportSettings,
    deadline: Instant,
) -> Result<Fetched, Error> {
    let mut url = url;
    let mut from: Option<Url> = None;
    for hop in 0..=settings.max_redirects {
        let pinned = resolve_checked(&url, &settings.allow, deadline)
            .await
            .map_err(|e| match (e, &from) {
                (Error::ImportRefused(why), Some(from)) => {
                    Error::ImportRefused(format!("{from} redirected to {url}: {why}"))
                }
                (e, _) => e,
            })?;
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(timed_out("connecting"));
        }
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .referer(false)
            .user_agent(USER_AGENT)
            .dns_resolver(Arc::new(PinnedResolver(pinned)))
            .connect_timeout(remaining)
            .timeout(remaining)
            .build()
            .map_err(|e| Error::Internal(format!("cannot build the import client: {e}")))?;
        let request = client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "*/*")
            .header(reqwest::header::ACCEPT_ENCODING, "identity");
        let response = match tokio::time::timeout_at(deadline, request.send()).await {
            Err(_) => return Err(timed_out("waiting for the response")),
            Ok(Err(e)) => return Err(upstream_error(&e, &format!("fetching {url}"))),
            Ok(Ok(r)) => r,
        };
        let status = response.status();
        if status.is_redirection() && status != reqwest::StatusCode::NOT_MODIFIED {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| Error::Upstream {
                    detail: format!("{url} answered {status} without a usable Location"),
                    timed_out: false,
                })?;
            let next = url.join(location).map_err(|e| {
                Error::ImportRefused(format!(
                    "{url} redirected to `{location}`, which is not a valid URL: {e}"
                ))
            })?;
            check_url_shape(&next).map_err(|e| match e {
                Error::ImportRefused(why) => {
                    Error::ImportRefused(format!("{url} redirected to a refused URL: {why}"))
                }
                other => other,
            })?;
            tracing::debug!(from = %url, to = %next, hop, "import redirect");
            from = Some(std::mem::replace(&mut url, next));
            continue;
        }
        if !status.is_success() {
            return Err(Error::Upstream {
                detail: format!("{url} answered {status}"),
                timed_out: false,
            });
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let content_length = response.content_length();
        let failure = FailureSlot::default();
        let slot = failure.clone();
        let inner = response.bytes_stream().boxed();
        let body = futures::stream::unfold(Some(inner), move |state| {
            let slot = slot.clone();
            async move {
                let mut inner = state?;
                match tokio::time::timeout_at(deadline, inner.next()).await {
                    Err(_) => {
                        slot.set(timed_out("reading the body"));
                        Some((Err(std::io::Error::other("import timed out")), None))
                    }
                    Ok(None) => None,
                    Ok(Some(Ok(chunk))) => Some((Ok(chunk), Some(inner))),
                    Ok(Some(Err(e))) => {
                        slot.set(upstream_error(&e, "reading the body"));
                        Some((Err(std::io::Error::other("the upstream body failed")), None))
                    }
                }
            }
        });
        return Ok(Fetched {
            final_url: url,
            redirects: hop,
            content_type,
            content_length,
            body: Box::pin(body),
            failure,
        });
    }
    Err(Error::Upstream {
        detail: format!(
            "the URL redirected more than {} times; the import gave up",
            settings.max_redirects
        ),
        timed_out: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(url: &str) -> String {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let result = rt.block_on(async {
            let url = parse_url(url)?;
            resolve_checked(&url, &AllowList::default(), deadline).await
        });
        match result {
            Err(Error::ImportRefused(why)) => why,
            other => panic!("{url} was not refused: {other:?}"),
        }
    }

    #[test]
    fn loopback_in_every_spelling_is_refused() {
        for url in [
            "http://127.0.0.1/",
            "http://127.0.0.1:8080/x",
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://0x7f.1/",
            "http://0x7f000001/",
            "http://127.1/",
            "http://127.0.1/",
            "http://017700000001/",
            "http://%31%32%37.0.0.1/",
            "http://[::1]/",
            "http://[0:0:0:0:0:0:0:1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://localhost/",
            "http://LocalHost:1/",
        ] {
            let why = refused(url);
            assert!(
                why.contains("loopback") || why.contains("localhost"),
                "{url}: {why}"
            );
        }
    }

    #[test]
    fn private_link_local_and_special_ranges_are_refused() {
        for (url, word) in [
            ("http://0.0.0.0/", "unspecified"),
            ("http://0/", "unspecified"),
            ("http://[::]/", "unspecified"),
            ("http://10.1.2.3/", "private"),
            ("http://172.16.0.1/", "private"),
            ("http://172.31.255.255/", "private"),
            ("http://192.168.1.1/", "private"),
            ("http://169.254.169.254/latest/meta-data/", "link-local"),
            ("http://[fe80::1]/", "link-local"),
            ("http://[fd00::1]/", "unique local"),
            ("http://[fc00::1]/", "unique local"),
            ("http://100.64.0.1/", "carrier-grade"),
            ("http://192.0.2.1/", "documentation"),
            ("http://198.51.100.7/", "documentation"),
            ("http://203.0.113.9/", "documentation"),
            ("http://[2001:db8::1]/", "documentation"),
            ("http://198.18.0.1/", "benchmarking"),
            ("http://224.0.0.1/", "multicast"),
            ("http://[ff02::1]/", "multicast"),
            ("http://255.255.255.255/", "broadcast"),
            ("http://240.0.0.1/", "reserved"),
            ("http://[::ffff:169.254.169.254]/", "link-local"),
            ("http://[::ffff:10.0.0.1]/", "private"),
            ("http://[::127.0.0.1]/", "IPv4-compatible"),
            ("http://[64:ff9b::a9fe:a9fe]/", "link-local"),
            ("http://[64:ff9b::7f00:1]/", "loopback"),
            ("http://[2002:7f00:1::]/", "loopback"),
            ("http://[2002:c0a8:101::1]/", "private"),
            ("http://[2001::1]/", "Teredo"),
            ("http://[100::1]/", "discard"),
            ("http://[fec0::1]/", "site-local"),
        ] {
            let why = refused(url);
            assert!(why.contains(word), "{url}: expected `{word}` in: {why}");
        }
    }

    #[test]
    fn schemes_and_credentials_are_refused() {
        for (url, word) in [
            ("file:///etc/passwd", "only http and https"),
            ("ftp://example.com/x", "only http and https"),
            ("gopher://example.com/", "only http and https"),
            ("data:text/plain,hi", "only http and https"),
            ("javascript:alert(1)", "only http and https"),
            ("http://user:pass@example.com/", "credentials"),
            ("http://user@example.com/", "credentials"),
            ("https://:secret@example.com/", "credentials"),
            ("not a url", "not a valid"),
            ("/relative/path", "not a valid"),
            ("http://1.2.3.4.5/", "not a valid"),
        ] {
            let why = refused(url);
            assert!(why.contains(word), "{url}: expected `{word}` in: {why}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "2a00:1450::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "172.32.0.1",
            "100.128.0.1",
            "192.169.0.1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(refusal(ip), None, "{ip}");
            check_addr(ip, &AllowList::default(), false, "x").unwrap();
        }
    }

    #[test]
    fn allow_list_opens_exactly_what_it_names() {
        let allow =
            AllowList::parse(&["127.0.0.1/32", "10.0.0.0/8", "[fd00::1]", "*.corp.example"])
                .unwrap();
        let ok = |ip: &str| check_addr(ip.parse().unwrap(), &allow, false, ip).is_ok();
        assert!(ok("127.0.0.1"));
        assert!(
            ok("::ffff:127.0.0.1"),
            "the mapped form is the same address"
        );
        assert!(!ok("127.0.0.2"));
        assert!(ok("10.9.8.7"));
        assert!(ok("fd00::1"));
        assert!(!ok("fd00::2"));
        assert!(!ok("169.254.169.254"));
        assert!(allow.permits_host("files.corp.example"));
        assert!(allow.permits_host("A.B.CORP.EXAMPLE."));
        assert!(!allow.permits_host("corp.example"));
        assert!(!allow.permits_host("evilcorp.example"));
        // Some addresses are never fetched, whatever the list says.
        let everything = AllowList::parse(&["0.0.0.0/0", "::/0"]).unwrap();
        for ip in ["0.0.0.0", "255.255.255.255", "224.0.0.1", "::", "ff02::1"] {
            assert!(
                check_addr(ip.parse().unwrap(), &everything, true, ip).is_err(),
                "{ip}"
            );
        }
        assert!(check_addr("192.168.0.1".parse().unwrap(), &everything, false, "x").is_ok());
    }

    #[test]
    fn allow_list_rejects_nonsense() {
        assert!(AllowList::parse(&["10.0.0.0/33"]).is_err());
        assert!(AllowList::parse(&["exa mple"]).is_err());
        assert!(AllowList::parse(&["http://x"]).is_err());
        assert!(AllowList::parse(&[""]).unwrap().is_empty());
    }

    #[test]
    fn pinned_resolver_answers_only_for_its_name() {
        use reqwest::dns::Resolve;
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let r = PinnedResolver(Pinned {
            name: Some("files.example".into()),
            addrs: vec![addr],
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let got: Vec<SocketAddr> = rt
            .block_on(r.resolve("FILES.example".parse().unwrap()))
            .unwrap()
            .collect();
        assert_eq!(got, vec![addr]);
        assert!(
            rt.block_on(r.resolve("other.example".parse().unwrap()))
                .is_err()
        );
    }
}
