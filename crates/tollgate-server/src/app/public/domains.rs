//! Custom domains: a hostname an operator (or its white-label partner) points at Tollgate, so
//! that its pricing page, signup and customer portal answer there without the workspace in the
//! path and with the workspace's brand only. A hostname belongs to one workspace of the whole
//! deployment; requests whose Host is no registered domain are served as before.

use tollgate_core::code::Code;
use tollgate_core::ids::WorkspaceId;
use tollgate_store::public::CustomDomainRecord;

use crate::engine::Engine;
use crate::error::{AppResult, Error};

/// The longest hostname DNS allows.
const MAX_HOSTNAME: usize = 253;

/// `hostname` lower-cased, or `invalid_hostname`: dot-separated labels of letters, digits and
/// `-` (not at a label's ends), at least two labels, no port, no trailing dot.
pub fn normalize(hostname: &str) -> AppResult<String> {
    let host = hostname.trim().to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let ok = !host.is_empty()
        && host.len() <= MAX_HOSTNAME
        && host.contains('.')
        && host.split('.').all(label_ok);
    if ok {
        Ok(host)
    } else {
        Err(Error::invalid(
            Code::InvalidHostname,
            format!(
                "{hostname:?} is not a hostname: use labels of letters, digits and `-` separated by dots (`billing.example.com`), without a port"
            ),
        ))
    }
}

/// Registers `hostname` for `workspace`; `409 already_exists` when any workspace has it.
pub async fn add(
    engine: &Engine,
    workspace: &str,
    hostname: &str,
) -> AppResult<CustomDomainRecord> {
    let record = CustomDomainRecord {
        hostname: normalize(hostname)?,
        workspace: workspace.to_owned(),
        created_at: engine.now(),
    };
    engine.store().add_custom_domain(&record).await?;
    Ok(record)
}

pub async fn list(engine: &Engine, workspace: &str) -> AppResult<Vec<CustomDomainRecord>> {
    Ok(engine
        .store()
        .list_custom_domains(&WorkspaceId::from(workspace))
        .await?)
}

/// Removes a domain of `workspace`; `404` when it has none by that name.
pub async fn remove(engine: &Engine, workspace: &str, hostname: &str) -> AppResult<()> {
    let host = normalize(hostname)?;
    if engine
        .store()
        .delete_custom_domain(&WorkspaceId::from(workspace), &host)
        .await?
    {
        Ok(())
    } else {
        Err(Error::not_found("domain", &host))
    }
}

/// The workspace a request's `Host` header names, if it is a registered domain (a port is
/// ignored; anything that is not a hostname names none).
pub async fn resolve(engine: &Engine, host_header: &str) -> AppResult<Option<CustomDomainRecord>> {
    let host = host_header
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host_header, |(h, _)| h);
    let Ok(host) = normalize(host) else {
        return Ok(None);
    };
    Ok(engine.store().find_custom_domain(&host).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames() {
        assert_eq!(
            normalize(" Billing.Example.COM ").ok().as_deref(),
            Some("billing.example.com")
        );
        for bad in [
            "localhost",
            "a..b",
            "-a.b",
            "a.b:8080",
            "a_b.c",
            "",
            "a.b.",
            "é.com",
        ] {
            assert!(normalize(bad).is_err(), "{bad}");
        }
    }
}
