//! The public pages (docs/DASHBOARD.md, "Public pages"): what anyone may see of a workspace that
//! opted in (its pricing table, its hosted signup) and the custom domains that serve them and
//! the customer portal under the workspace's own name.
//!
//! `settings` turns the pages on and off (off by default), `domains` maps hostnames to
//! workspaces (Host routing), `signup` is the hosted signup form's use case (the API's signup
//! behind the opt-in and a duplicate-email check), `limits` bounds the forms' posts per client
//! and per workspace.

pub mod domains;
pub mod limits;
pub mod settings;
pub mod signup;
