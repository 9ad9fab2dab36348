//! Where a webhook may be sent (CONTRACT-2 "Webhooks"), so that nobody can make the server call its own
//! network (server-side request forgery): `https://` to a host with public addresses only, unless the
//! operator listed the host in `WEBHOOK_ALLOW_HOSTS`.
//!
//! Checked twice: when a URL is given (422 with the reason), and at every delivery on the addresses
//! the connection really uses ([`Destinations::resolver`] answers reqwest's lookups), so that a name
//! that later resolves somewhere private (DNS rebinding) is refused too. Redirects are not followed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use ipnet::IpNet;
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::error::ApiError;

/// Longer URLs are refused.
const MAX_URL_CHARS: usize = 2048;
/// A name that takes longer to resolve when a webhook is made is refused.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Networks that are not the public internet: this host, private and shared networks, link-local (where
/// cloud metadata services live), multicast, documentation and reserved ranges.
static NOT_PUBLIC: LazyLock<Vec<IpNet>> = LazyLock::new(|| {
    [
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
        "2001:db8::/32",
    ]
    .iter()
    // Unwrap: the list above is constant and every entry is a valid network.
    .map(|net| net.parse().expect("a valid network"))
    .collect()
});

/// Whether `ip` is on the public internet. IPv6 forms that carry an IPv4 address (mapped, NAT64, 6to4)
/// are judged by that address.
pub fn is_public(ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => embedded_v4(v6).map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    !NOT_PUBLIC.iter().any(|net| net.contains(&ip))
}

fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from(((hi as u32) << 16) | lo as u32);
    match s {
        // NAT64 (64:ff9b::/96): the last 32 bits.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(v4(hi, lo)),
        // 6to4 (2002::/16): bits 16-48.
        [0x2002, hi, lo, ..] => Some(v4(hi, lo)),
        _ => None,
    }
}

/// The rules for one node, from `WEBHOOK_ALLOW_HOSTS`. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Destinations {
    allow_hosts: Arc<[String]>,
}

impl Destinations {
    pub fn new(allow_hosts: &[String]) -> Destinations {
        Destinations { allow_hosts: allow_hosts.iter().map(|h| h.to_ascii_lowercase()).collect() }
    }

    /// Whether the operator listed `host` (a name, or an address with or without IPv6 brackets).
    fn listed(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        self.allow_hosts.iter().any(|h| h.trim_start_matches('[').trim_end_matches(']') == host)
    }

    /// A URL someone gives for a webhook, checked: its form, its scheme, and where its host resolves now.
    pub async fn check(&self, raw: &str) -> Result<Url, ApiError> {
        let url = self.check_form(raw).map_err(|reason| ApiError::invalid("url", reason))?;
        let host = url.host_str().unwrap_or_default().to_owned();
        if self.listed(&host) {
            return Ok(url);
        }
        let port = url.port_or_known_default().unwrap_or(443);
        let lookup = tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((bare(&host), port))).await;
        let addrs: Vec<SocketAddr> = match lookup {
            Ok(Ok(addrs)) => addrs.collect(),
            _ => return Err(ApiError::invalid("url", format!("{host} cannot be resolved"))),
        };
        if addrs.is_empty() {
            return Err(ApiError::invalid("url", format!("{host} cannot be resolved")));
        }
        if addrs.iter().any(|a| !is_public(a.ip())) {
            return Err(ApiError::invalid("url", refused(&host)));
        }
        Ok(url)
    }

    /// The checks that need no lookup, made again at every delivery (the allow list may have changed
    /// since the webhook was made): the URL's form and scheme, and an address written in it. `Err` says why.
    pub fn check_form(&self, raw: &str) -> Result<Url, String> {
        if raw.chars().count() > MAX_URL_CHARS {
            return Err(format!("must be at most {MAX_URL_CHARS} characters"));
        }
        let url = Url::parse(raw.trim()).map_err(|e| format!("is not a URL: {e}"))?;
        let Some(host) = url.host_str().filter(|h| !h.is_empty()).map(str::to_owned) else {
            return Err("needs a host".into());
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not carry a user name or password".into());
        }
        let listed = self.listed(&host);
        match url.scheme() {
            "https" => {}
            "http" if listed => {}
            "http" => return Err("must be https:// (http:// only to hosts in WEBHOOK_ALLOW_HOSTS)".into()),
            _ => return Err("must be https://".into()),
        }
        if let Ok(ip) = bare(&host).parse::<IpAddr>()
            && !listed
            && !is_public(ip)
        {
            return Err(refused(&host));
        }
        Ok(url)
    }

    /// What every delivery's connections resolve names with: a name that resolves to an address that is
    /// not public is refused, unless listed.
    pub fn resolver(&self) -> Arc<GuardedResolver> {
        Arc::new(GuardedResolver { destinations: self.clone() })
    }
}

fn bare(host: &str) -> &str {
    host.trim_start_matches('[').trim_end_matches(']')
}

fn refused(host: &str) -> String {
    format!(
        "{host} is or resolves to a loopback, private or link-local address (allowed only when listed in WEBHOOK_ALLOW_HOSTS)"
    )
}

/// reqwest's name lookups for webhook deliveries, with the rule above.
pub struct GuardedResolver {
    destinations: Destinations,
}

/// A delivery refused because of where its host resolved.
#[derive(Debug, thiserror::Error)]
#[error("{0} resolves to an address that is not public")]
pub struct NotPublic(String);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let listed = self.destinations.listed(&host);
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !listed && addrs.iter().any(|a| !is_public(a.ip())) {
                return Err(Box::new(NotPublic(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(ip: &str) -> bool {
        is_public(ip.parse().unwrap())
    }

    #[test]
    fn private_loopback_and_link_local_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "224.0.0.1",
            "255.255.255.255",
        ] {
            assert!(!public(ip), "{ip} passed as public");
        }
        for ip in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"] {
            assert!(public(ip), "{ip} refused");
        }
    }

    /// The check at delivery: a name is refused by where it resolves, however it was written when the
    /// webhook was made (DNS rebinding), unless listed.
    #[tokio::test]
    async fn deliveries_resolve_names_through_the_rules() {
        let name = || "localhost".parse::<Name>().unwrap();
        let refused = Destinations::default().resolver().resolve(name()).await;
        let error = refused.err().expect("localhost is refused");
        assert!(error.to_string().contains("not public"), "{error}");
        let listed = Destinations::new(&["localhost".into()]).resolver().resolve(name()).await;
        assert!(listed.expect("a listed name resolves").any(|a| a.ip().is_loopback()));
    }

    #[test]
    fn the_form_is_checked_without_a_lookup() {
        let rules = Destinations::new(&["127.0.0.1".into(), "Internal.example".into()]);
        assert!(rules.check_form("https://example.org/hook").is_ok());
        assert!(rules.check_form("http://example.org/hook").is_err());
        assert!(rules.check_form("ftp://example.org/").is_err());
        assert!(rules.check_form("https://user:pw@example.org/").is_err());
        assert!(rules.check_form("https://10.0.0.1/").is_err());
        assert!(rules.check_form("https://[::1]/").is_err());
        assert!(rules.check_form("http://127.0.0.1:9000/in").is_ok());
        assert!(rules.check_form("http://internal.example/in").is_ok());
        assert!(Destinations::default().check_form("http://127.0.0.1/").is_err());
        assert!(rules.check_form(&format!("https://example.org/{}", "a".repeat(2048))).is_err());
    }
}
