//! Online validation: the offline checks (signature by a key of the workspace that is not
//! retired, validity on the customer's clock, machine binding), then revocation and, for a
//! license with a machine limit, the machine's activation.

use jiff::Timestamp;
use tollgate_core::ids::WorkspaceId;
use tollgate_verify::{LicenseFile, Options, Status};

use super::keys::keyring;
use super::machines::HEARTBEAT_TIMEOUT;
use crate::app::subscriptions::customer_now;
use crate::engine::Engine;
use crate::error::{AppResult, Error};

/// The answer: valid, or the reason it is not (`expired`, `bad_signature`, `unknown_key`,
/// `not_yet_valid`, `wrong_machine`, `malformed`, `unsupported_format`, `revoked`,
/// `not_activated`).
#[derive(Debug, Clone, PartialEq)]
pub struct Validation {
    pub valid: bool,
    pub code: Option<&'static str>,
    /// `active` or `grace` when valid.
    pub status: Option<&'static str>,
    /// When the grace period ends, when in grace.
    pub grace_ends: Option<Timestamp>,
    /// The license's payload, when its signature holds.
    pub license: Option<tollgate_verify::License>,
}

impl Validation {
    fn refused(code: &'static str, license: Option<tollgate_verify::License>) -> Self {
        Validation {
            valid: false,
            code: Some(code),
            status: None,
            grace_ends: None,
            license,
        }
    }
}

/// Validates a license file for `workspace`. `customer`: the caller when it is a customer key,
/// which may only validate its own licenses.
pub async fn validate(
    engine: &Engine,
    workspace: &str,
    customer: Option<&str>,
    text: &str,
    machine: Option<&str>,
) -> AppResult<Validation> {
    let ring = keyring(engine, workspace).await?;
    let file = match LicenseFile::parse(text) {
        Ok(file) => file,
        Err(reason) => return Ok(Validation::refused(reason.code(), None)),
    };
    let license = match file.check_signature(&ring) {
        Ok(license) => license,
        Err(reason) => return Ok(Validation::refused(reason.code(), None)),
    };
    if license.issuer != workspace || customer.is_some_and(|c| c != license.customer) {
        // Same answer as a license that does not exist: a key never learns about others'.
        return Err(Error::not_found("license", &license.id));
    }
    let ws = WorkspaceId::from(workspace);
    let record = engine
        .store()
        .get_license(&ws, &license.id)
        .await?
        .ok_or_else(|| Error::not_found("license", &license.id))?;
    if record.revoked_at.is_some() {
        return Ok(Validation::refused("revoked", Some(license)));
    }
    let now = customer_now(engine, workspace, &license.customer).await?;
    let verified = match tollgate_verify::verify(text, &ring, Options { now, machine }) {
        Ok(v) => v,
        Err(reason) => return Ok(Validation::refused(reason.code(), Some(license))),
    };
    if record.max_machines.is_some() {
        let Some(machine) = machine else {
            return Ok(Validation::refused("not_activated", Some(license)));
        };
        let fresh_since = now - HEARTBEAT_TIMEOUT;
        let active = engine
            .store()
            .activations(&ws, &license.id)
            .await?
            .into_iter()
            .any(|a| a.fingerprint == machine && a.last_heartbeat >= fresh_since);
        if !active {
            return Ok(Validation::refused("not_activated", Some(license)));
        }
    }
    let (status, grace_ends) = match verified.status {
        Status::Active => ("active", None),
        Status::Grace { ends } => ("grace", Some(ends)),
    };
    Ok(Validation {
        valid: true,
        code: None,
        status: Some(status),
        grace_ends,
        license: Some(verified.license),
    })
}
