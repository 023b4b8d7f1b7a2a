//! Billing profiles: the buyer's (a customer's legal name, address, tax ids and tax treatment) and
//! the seller's (the workspace's legal name, address, tax id, payment instructions, invoice
//! numbering prefix and footer). The store keeps each as one JSON document; the server owns its
//! shape and validates it before it is written.

use async_trait::async_trait;
use jiff::Timestamp;
use tollgate_core::ids::{CustomerId, WorkspaceId};

use crate::backend::{Backend, args, run_execute, run_optional};
use crate::codec::{Columns as _, insert_error};
use crate::{StoreResult, sql};

/// Profiles of a workspace's customers and of the workspace itself.
#[async_trait]
pub trait ProfileStore: Send + Sync {
    /// Writes (or replaces) a customer's billing profile; the customer must exist.
    async fn set_customer_profile(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
        profile: &serde_json::Value,
        at: Timestamp,
    ) -> StoreResult<()>;
    async fn customer_profile(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
    ) -> StoreResult<Option<serde_json::Value>>;
    /// Writes (or replaces) the workspace's own billing profile, the seller on its invoices.
    async fn set_seller_profile(
        &self,
        workspace: &WorkspaceId,
        profile: &serde_json::Value,
        at: Timestamp,
    ) -> StoreResult<()>;
    async fn seller_profile(
        &self,
        workspace: &WorkspaceId,
    ) -> StoreResult<Option<serde_json::Value>>;
}

#[async_trait]
impl<B: Backend> ProfileStore for B {
    async fn set_customer_profile(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
        profile: &serde_json::Value,
        at: Timestamp,
    ) -> StoreResult<()> {
        let values = args![workspace, customer, profile, at];
        run_execute(self.write(workspace), sql::SET_CUSTOMER_PROFILE, values)
            .await
            .map_err(|e| {
                insert_error(
                    e,
                    "customer profile",
                    customer.as_str(),
                    "customer",
                    customer.as_str(),
                )
            })?;
        Ok(())
    }

    async fn customer_profile(
        &self,
        workspace: &WorkspaceId,
        customer: &CustomerId,
    ) -> StoreResult<Option<serde_json::Value>> {
        let values = args![workspace, customer];
        run_optional(self.read(workspace), sql::CUSTOMER_PROFILE, values, |r| {
            r.json("profile")
        })
        .await
    }

    async fn set_seller_profile(
        &self,
        workspace: &WorkspaceId,
        profile: &serde_json::Value,
        at: Timestamp,
    ) -> StoreResult<()> {
        let values = args![workspace, profile, at];
        run_execute(self.write(workspace), sql::SET_SELLER_PROFILE, values)
            .await
            .map_err(|e| {
                insert_error(
                    e,
                    "seller profile",
                    workspace.as_str(),
                    "workspace",
                    workspace.as_str(),
                )
            })?;
        Ok(())
    }

    async fn seller_profile(
        &self,
        workspace: &WorkspaceId,
    ) -> StoreResult<Option<serde_json::Value>> {
        let values = args![workspace];
        run_optional(self.read(workspace), sql::SELLER_PROFILE, values, |r| {
            r.json("profile")
        })
        .await
    }
}
