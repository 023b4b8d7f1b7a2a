//! The SSRF rule: webhooks go only to `http`/`https` URLs, and not to private, loopback,
//! link-local, unique-local, shared (CGNAT), broadcast or unspecified addresses unless the
//! server allows them. Checked when an endpoint is registered and again on the addresses the
//! host resolves to at every delivery (the connection is then pinned to a checked address, so a
//! second DNS answer cannot swap it).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::Url;
use tollgate_core::code::Code;

use crate::error::Error;

/// Parses an endpoint URL: absolute, `http` or `https`, with a host, no credentials.
pub fn parse_url(text: &str) -> Result<Url, Error> {
    let url = Url::parse(text).map_err(|e| {
        Error::invalid(
            Code::WebhookUrlInvalid,
            format!("{text:?} is not a URL: {e}"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::invalid(
            Code::WebhookUrlInvalid,
            format!("{text:?}: only http and https URLs receive webhooks"),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::invalid(
            Code::WebhookUrlInvalid,
            format!("{text:?} has no host"),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::invalid(
            Code::WebhookUrlInvalid,
            format!("{text:?}: credentials in the URL are not kept; put a token in the path"),
        ));
    }
    Ok(url)
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || a == 0
        // Shared address space (RFC 6598).
        || (a == 100 && (64..128).contains(&b))
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        // Unique local fc00::/7, link-local fe80::/10.
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
}

/// Whether the SSRF rule refuses `ip`.
pub fn forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

/// A literal IP host of `url`, refused when forbidden (registration: names are resolved at
/// delivery, where their answers are checked).
pub fn check_literal(url: &Url, allow_private: bool) -> Result<(), Error> {
    if allow_private {
        return Ok(());
    }
    let host = url.host_str().unwrap_or_default();
    if host.eq_ignore_ascii_case("localhost") || host.ends_with(".localhost") {
        return Err(refused(url, "localhost"));
    }
    let Ok(ip) = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    else {
        return Ok(());
    };
    if forbidden(ip) {
        return Err(refused(url, &ip.to_string()));
    }
    Ok(())
}

fn refused(url: &Url, what: &str) -> Error {
    Error::invalid(
        Code::WebhookUrlForbidden,
        format!(
            "{url} names {what}, a private, loopback, link-local or unspecified address; \
             webhooks go only to public addresses unless the workspace is allowed private ones"
        ),
    )
}

/// Resolves `url`'s host and returns one address to connect to, every answer checked.
pub async fn resolve(
    url: &Url,
    allow_private: bool,
    timeout: std::time::Duration,
) -> Result<SocketAddr, String> {
    let host = url.host_str().ok_or("no host")?;
    let port = url.port_or_known_default().ok_or("no port")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> =
        tokio::time::timeout(timeout, tokio::net::lookup_host((host, port)))
            .await
            .map_err(|_| format!("resolving {host} timed out"))?
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .collect();
    let first = *addrs
        .first()
        .ok_or_else(|| format!("{host} has no address"))?;
    if !allow_private && let Some(bad) = addrs.iter().find(|a| forbidden(a.ip())) {
        return Err(format!(
            "{host} resolves to {}, a private, loopback, link-local or unspecified address \
             (refused by the SSRF rule)",
            bad.ip()
        ));
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn private_and_special_addresses_are_refused() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(forbidden(ip.parse().unwrap()), "{ip} is refused");
        }
        for ip in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "100.128.0.1",
        ] {
            assert!(!forbidden(ip.parse().unwrap()), "{ip} is allowed");
        }
    }

    #[test]
    fn urls_are_http_with_a_host() {
        assert!(parse_url("https://example.com/hook").is_ok());
        for bad in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "example.com",
            "https://user:pw@example.com/",
        ] {
            assert_eq!(parse_url(bad).unwrap_err().code, Code::WebhookUrlInvalid);
        }
        for bad in [
            "http://127.0.0.1:9/",
            "http://[::1]/",
            "http://169.254.169.254/latest",
            "http://localhost:8080/",
        ] {
            let url = parse_url(bad).unwrap();
            assert_eq!(
                check_literal(&url, false).unwrap_err().code,
                Code::WebhookUrlForbidden,
                "{bad}"
            );
            assert!(check_literal(&url, true).is_ok());
        }
    }

    #[tokio::test]
    async fn resolved_addresses_are_checked_at_delivery() {
        let url = parse_url("http://localhost:9/").unwrap();
        let err = resolve(&url, false, std::time::Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(err.contains("SSRF"), "{err}");
        assert!(
            resolve(&url, true, std::time::Duration::from_secs(5))
                .await
                .unwrap()
                .ip()
                .is_loopback()
        );
    }
}
