//! Where a webhook may point. A target is an `http` or `https` URL without credentials. Unless
//! the operator allows private targets (`[webhooks] allow_private`, for tests and on-premises
//! receivers), its address must be a global one: loopback, private, shared, link-local
//! (including the cloud metadata address 169.254.169.254), multicast, reserved and the like
//! are refused. Names are resolved by [`GlobalOnly`], which drops such addresses, so the
//! address connected to is the one checked (no window for DNS rebinding); addresses written
//! in the URL are checked by [`check_target`], since they skip the resolver.

use continuum_core::{Error, Result};
use reqwest::Url;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Whether an IPv4 address is reachable on the public internet (RFC 6890 special-purpose
/// ranges refused).
fn global_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0                                  // "this network"
        || a == 10                            // private
        || a == 127                           // loopback
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 169 && b == 254)             // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b)) // private
        || (a == 192 && b == 0 && c == 0)     // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)     // TEST-NET-1
        || (a == 192 && b == 88 && c == 99)   // 6to4 relay anycast
        || (a == 192 && b == 168)             // private
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || (a == 198 && b == 51 && c == 100)  // TEST-NET-2
        || (a == 203 && b == 0 && c == 113)   // TEST-NET-3
        || a >= 224) // multicast, reserved, broadcast
}

/// Whether an address is reachable on the public internet.
pub fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => global_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return global_v4(v4);
            }
            let s = v6.segments();
            !(v6.is_unspecified()
                || v6 == Ipv6Addr::LOCALHOST
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] & 0xff00) == 0xff00 // multicast
                || (s[0] == 0x64 && s[1] == 0xff9b) // NAT64, may reach private IPv4
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0 && s[4] == 0 && s[5] == 0)) // IPv4-compatible
        }
    }
}

/// Checks a target URL: http(s), a host, no user name or password (secrets never in URLs),
/// and, unless `allow_private`, no address in the URL that is not global. A URL that does not
/// parse is invalid input; one that parses but points where webhooks may not go is forbidden.
pub fn check_target(url: &str, allow_private: bool) -> Result<Url> {
    let authority = url
        .split_once("://")
        .map(|(_, rest)| rest.split('/').next().unwrap_or(""))
        .unwrap_or("");
    if authority.contains('@') {
        return Err(Error::Forbidden(
            "url: credentials do not go in a webhook URL (verify the signature instead)".into(),
        ));
    }
    if !shaped(url) {
        return Err(Error::InvalidInput(
            "url: expected http(s)://HOST[:PORT][/PATH], the host of letters, digits, dots and hyphens, the path of printable ASCII without spaces".into(),
        ));
    }
    let parsed =
        Url::parse(url).map_err(|e| Error::InvalidInput(format!("url: not a URL ({e})")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Error::InvalidInput(
            "url: a webhook target must be http:// or https://".into(),
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Error::Forbidden(
            "url: credentials do not go in a webhook URL (verify the signature instead)".into(),
        ));
    }
    let host = match parsed.host() {
        Some(h) => h,
        None => return Err(Error::InvalidInput("url: no host".into())),
    };
    if !allow_private {
        let literal = match host {
            url::Host::Ipv4(a) => Some(IpAddr::V4(a)),
            url::Host::Ipv6(a) => Some(IpAddr::V6(a)),
            url::Host::Domain(d) => {
                let d = d.trim_end_matches('.').to_ascii_lowercase();
                if d == "localhost" || d.ends_with(".localhost") {
                    return Err(private(&d));
                }
                None
            }
        };
        if let Some(ip) = literal
            && !is_global(ip)
        {
            return Err(private(&ip.to_string()));
        }
    }
    Ok(parsed)
}

/// The shape the API documents for a target (its OpenAPI pattern), checked on the raw text:
/// `http://` or `https://` in any case, a host of `A-Z a-z 0-9 . -`, an optional port of 1 to 5
/// digits, an optional path from `/` of printable ASCII without spaces. IPv6 literals and user
/// information are outside it.
fn shaped(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &url[8..]
    } else if lower.starts_with("http://") {
        &url[7..]
    } else {
        return false;
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    // A name or an IPv4 address (an IPv6 literal is not taken: its brackets are outside the
    // shape, and a name with AAAA records serves instead).
    let (host, port) = match authority.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    host_ok
        && port.is_none_or(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
        && path.bytes().all(|b| (b'!'..=b'~').contains(&b))
}

fn private(what: &str) -> Error {
    Error::Forbidden(format!(
        "url: {what} is not a public address; webhook targets must be (an operator may allow private targets: [webhooks] allow_private)"
    ))
}

/// A resolver that keeps only global addresses (all of them when private targets are
/// allowed) and fails when none is left.
#[derive(Debug, Clone, Copy)]
pub struct GlobalOnly {
    pub allow_private: bool,
}

impl reqwest::dns::Resolve for GlobalOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow_private;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| allow || is_global(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_link_local_and_metadata_targets_are_refused() {
        for url in [
            "http://127.0.0.1/hook",
            "http://127.0.0.1:8080/",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.5/",
            "http://172.16.3.4/",
            "http://192.168.1.1/",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://localhost:9000/",
            "http://api.localhost/",
        ] {
            let e = check_target(url, false).unwrap_err().to_string();
            assert!(e.contains("not a public address"), "{url}: {e}");
            assert!(
                check_target(url, true).is_ok(),
                "{url} with private targets allowed"
            );
        }
    }

    #[tokio::test]
    async fn names_that_resolve_only_to_private_addresses_are_refused_at_connection_time() {
        use reqwest::dns::Resolve;
        // `localhost` stands for any name whose addresses are private (check_target refuses
        // this one by name too; the resolver is what catches the others, and rebinding).
        let name = || "localhost".parse::<reqwest::dns::Name>().unwrap();
        let refused = GlobalOnly {
            allow_private: false,
        }
        .resolve(name())
        .await;
        let e = refused
            .err()
            .expect("a private-only name resolved")
            .to_string();
        assert!(e.contains("no public address"), "{e}");
        let allowed = GlobalOnly {
            allow_private: true,
        }
        .resolve(name())
        .await
        .unwrap();
        assert!(allowed.into_iter().all(|a| a.ip().is_loopback()));
    }

    #[test]
    fn public_targets_pass_and_bad_urls_are_explained() {
        for url in [
            "https://hooks.example.com/continuum",
            "http://93.184.216.34/x",
            "HTTPS://Hooks.Example.com:443",
        ] {
            assert!(check_target(url, false).is_ok(), "{url}");
        }
        for (url, says) in [
            ("ftp://example.com/", "http"),
            ("https://user:pw@example.com/", "credentials"),
            ("not a url", "expected http(s)://HOST"),
            // Outside the documented shape though a URL parser takes them.
            ("HTTP://0*", "expected http(s)://HOST"),
            ("http://example.com?x=1", "expected http(s)://HOST"),
            ("http://example.com/a b", "expected http(s)://HOST"),
            ("http://example.com:123456/", "expected http(s)://HOST"),
            // IPv6 literals, private or public, whatever is allowed: a name serves instead.
            ("http://[::1]/", "expected http(s)://HOST"),
            ("http://[fd00::1]/", "expected http(s)://HOST"),
            (
                "http://[::ffff:169.254.169.254]/",
                "expected http(s)://HOST",
            ),
            ("https://[2606:4700::1111]/", "expected http(s)://HOST"),
        ] {
            let e = check_target(url, false).unwrap_err().to_string();
            assert!(e.contains(says), "{url}: {e}");
        }
    }
}
