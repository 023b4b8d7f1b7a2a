//! The email log: every message of the workspace with its status, attempts and last error.

use tollgate_core::code::Code;
use tollgate_core::ids::WorkspaceId;
use tollgate_store::email::{EmailMessageFilter, EmailMessageRecord, EmailStatus};

use crate::engine::Engine;
use crate::error::{AppResult, Error};

/// The largest page of [`list`].
pub const MAX_LIMIT: i64 = 100;

#[derive(Debug, Clone, Default)]
pub struct ListEmailMessages {
    pub workspace: String,
    pub customer: Option<String>,
    /// `pending`, `sent` or `failed`.
    pub status: Option<String>,
    pub starting_after: Option<String>,
    /// 1..=100; `None`: 20.
    pub limit: Option<i64>,
}

/// A page of messages, oldest first, and whether more follow.
pub async fn list(
    engine: &Engine,
    input: ListEmailMessages,
) -> AppResult<(Vec<EmailMessageRecord>, bool)> {
    let limit = input.limit.unwrap_or(20);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Error::invalid(
            Code::InvalidLimit,
            format!("`limit` must be between 1 and {MAX_LIMIT}, not {limit}"),
        ));
    }
    let status = input
        .status
        .map(|s| {
            EmailStatus::parse(&s).ok_or_else(|| {
                Error::invalid(
                    Code::UnknownStatus,
                    format!("`status` {s:?} is not one of pending, sent, failed"),
                )
            })
        })
        .transpose()?;
    let filter = EmailMessageFilter {
        customer: input.customer,
        status,
        starting_after: input.starting_after,
        limit: limit + 1,
    };
    let mut messages = engine
        .store()
        .list_email_messages(&WorkspaceId::from(&input.workspace), &filter)
        .await?;
    let page = usize::try_from(limit).unwrap_or(usize::MAX);
    let has_more = messages.len() > page;
    messages.truncate(page);
    Ok((messages, has_more))
}
