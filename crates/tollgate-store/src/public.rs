//! The public pages' rows (docs/DASHBOARD.md, "Public pages"): a workspace's opt-in to show its
//! pricing table and hosted signup to anyone, its custom domains (hostname -> workspace), and
//! the lookup of a customer by email that portal sign-in and the signup's duplicate check need.
//!
//! A custom domain is found from the request's Host before any workspace is known, through the
//! same narrow lookup as API keys (on PostgreSQL a policy shows the one row naming that host).

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tollgate_core::ids::WorkspaceId;

use crate::backend::{Backend, args, run_all, run_execute, run_optional};
use crate::codec::{self, Columns, insert_error};
use crate::{CustomerRecord, StoreResult, sql};

/// Whether a workspace's public pages are on (no row: off).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublicPagesRecord {
    pub workspace: String,
    pub enabled: bool,
    pub updated_at: Timestamp,
}

/// A hostname that serves one workspace's public pages and portal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomDomainRecord {
    /// Lower-cased, without a port.
    pub hostname: String,
    pub workspace: String,
    pub created_at: Timestamp,
}

#[async_trait]
pub trait PublicStore: Send + Sync {
    async fn get_public_pages(
        &self,
        workspace: &WorkspaceId,
    ) -> StoreResult<Option<PublicPagesRecord>>;
    async fn put_public_pages(&self, record: &PublicPagesRecord) -> StoreResult<()>;
    /// A new domain; `AlreadyExists` when any workspace has this hostname.
    async fn add_custom_domain(&self, domain: &CustomDomainRecord) -> StoreResult<()>;
    /// The workspace's domains, by hostname.
    async fn list_custom_domains(
        &self,
        workspace: &WorkspaceId,
    ) -> StoreResult<Vec<CustomDomainRecord>>;
    /// Removes a domain of the workspace; `false` when it had none by this name.
    async fn delete_custom_domain(
        &self,
        workspace: &WorkspaceId,
        hostname: &str,
    ) -> StoreResult<bool>;
    /// The domain named `hostname`, in any workspace (Host routing).
    async fn find_custom_domain(&self, hostname: &str) -> StoreResult<Option<CustomDomainRecord>>;
    /// The workspace's oldest customer with this email (compared lower-cased).
    async fn customer_by_email(
        &self,
        workspace: &WorkspaceId,
        email: &str,
    ) -> StoreResult<Option<CustomerRecord>>;
}

fn pages(r: &impl Columns) -> StoreResult<PublicPagesRecord> {
    Ok(PublicPagesRecord {
        workspace: r.text("workspace")?,
        enabled: r.flag("enabled")?,
        updated_at: r.time("updated_at")?,
    })
}

fn domain(r: &impl Columns) -> StoreResult<CustomDomainRecord> {
    Ok(CustomDomainRecord {
        hostname: r.text("hostname")?,
        workspace: r.text("workspace")?,
        created_at: r.time("created_at")?,
    })
}

#[async_trait]
impl<B: Backend> PublicStore for B {
    async fn get_public_pages(
        &self,
        workspace: &WorkspaceId,
    ) -> StoreResult<Option<PublicPagesRecord>> {
        let values = args![workspace];
        run_optional(self.read(workspace), sql::GET_PUBLIC_PAGES, values, pages).await
    }

    async fn put_public_pages(&self, p: &PublicPagesRecord) -> StoreResult<()> {
        let values = args![&p.workspace, p.enabled, p.updated_at];
        run_execute(self.write(&p.workspace), sql::PUT_PUBLIC_PAGES, values).await?;
        Ok(())
    }

    async fn add_custom_domain(&self, d: &CustomDomainRecord) -> StoreResult<()> {
        let values = args![&d.hostname, &d.workspace, d.created_at];
        run_execute(self.write(&d.workspace), sql::ADD_CUSTOM_DOMAIN, values)
            .await
            .map_err(|e| insert_error(e, "domain", &d.hostname, "workspace", &d.workspace))?;
        Ok(())
    }

    async fn list_custom_domains(
        &self,
        workspace: &WorkspaceId,
    ) -> StoreResult<Vec<CustomDomainRecord>> {
        let values = args![workspace];
        run_all(
            self.read(workspace),
            sql::LIST_CUSTOM_DOMAINS,
            values,
            domain,
        )
        .await
    }

    async fn delete_custom_domain(
        &self,
        workspace: &WorkspaceId,
        hostname: &str,
    ) -> StoreResult<bool> {
        let values = args![workspace, hostname];
        let gone = run_execute(self.write(workspace), sql::DELETE_CUSTOM_DOMAIN, values).await?;
        Ok(gone == 1)
    }

    async fn find_custom_domain(&self, hostname: &str) -> StoreResult<Option<CustomDomainRecord>> {
        run_optional(
            self.key_lookup(hostname),
            sql::FIND_CUSTOM_DOMAIN,
            args![hostname],
            domain,
        )
        .await
    }

    async fn customer_by_email(
        &self,
        workspace: &WorkspaceId,
        email: &str,
    ) -> StoreResult<Option<CustomerRecord>> {
        let values = args![workspace, email];
        run_optional(
            self.read(workspace),
            sql::CUSTOMER_BY_EMAIL,
            values,
            codec::customer,
        )
        .await
    }
}
