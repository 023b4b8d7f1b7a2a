//! Cursor pagination of every list, as Stripe's: `limit` (1 to 100, default 20) and
//! `starting_after` (the id of the last item of the previous page); the answer is
//! `{ "data": [...], "has_more": bool }`. A cursor naming nothing is a 400 (`invalid_cursor`),
//! never an empty page that would look like the end.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tollgate_core::code::Code;

use crate::api::error::{ApiError, ApiResult};

/// Items per page when `limit` is absent.
pub const DEFAULT_LIMIT: usize = 20;
/// The largest `limit` accepted.
pub const MAX_LIMIT: usize = 100;

/// The query string read into `T`; a malformed one is a 400 problem (`invalid_request`), like
/// every other bad input, instead of axum's plain-text rejection.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Params(value)),
            Err(rejection) => Err(ApiError::bad_request(
                Code::InvalidRequest,
                format!("bad query string: {}", rejection.body_text()),
            )),
        }
    }
}

/// The paging parameters of a list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// How many items to return, 1 to 100 (default 20).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// The id of the last item of the previous page: this page starts after it.
    pub starting_after: Option<String>,
}

impl PageQuery {
    /// The page size asked for, checked.
    pub fn limit(&self) -> ApiResult<usize> {
        let Some(text) = &self.limit else {
            return Ok(DEFAULT_LIMIT);
        };
        match text.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(ApiError::bad_request(
                Code::InvalidLimit,
                format!("`limit` {text:?}: give a whole number from 1 to {MAX_LIMIT}"),
            )),
        }
    }
}

/// One page of a list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    /// The items, in the list's order.
    pub data: Vec<T>,
    /// Whether items follow the last one: ask again with `starting_after` = its id.
    pub has_more: bool,
}

impl<T> Page<T> {
    /// A page from rows fetched with `limit + 1`: the extra row only says more follow.
    pub fn from_rows(mut rows: Vec<T>, limit: usize) -> Page<T> {
        let has_more = rows.len() > limit;
        rows.truncate(limit);
        Page {
            data: rows,
            has_more,
        }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            data: self.data.into_iter().map(f).collect(),
            has_more: self.has_more,
        }
    }
}

/// The 400 of a `starting_after` that names no item of the list.
pub fn unknown_cursor(id: &str) -> ApiError {
    ApiError::bad_request(
        Code::InvalidCursor,
        format!("`starting_after` {id:?} is not an item of this list"),
    )
}

/// A page of a list held whole (the small lists under one customer: keys, subscriptions,
/// invoices), in its order, after the item whose id is `starting_after`.
pub fn page_of<T>(items: Vec<T>, id: impl Fn(&T) -> &str, query: &PageQuery) -> ApiResult<Page<T>> {
    let limit = query.limit()?;
    let start = match &query.starting_after {
        None => 0,
        Some(after) => items
            .iter()
            .position(|item| id(item) == after)
            .map(|at| at + 1)
            .ok_or_else(|| unknown_cursor(after))?,
    };
    let rows: Vec<T> = items.into_iter().skip(start).take(limit + 1).collect();
    Ok(Page::from_rows(rows, limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(limit: Option<&str>, after: Option<&str>) -> PageQuery {
        PageQuery {
            limit: limit.map(str::to_owned),
            starting_after: after.map(str::to_owned),
        }
    }

    #[test]
    fn pages_follow_the_cursor() {
        let items: Vec<String> = (1..=5).map(|i| format!("i{i}")).collect();
        let id = |s: &String| s.as_str().to_owned();
        let ids = |p: Page<String>| (p.data, p.has_more);
        let first = page_of(items.clone(), |s| s.as_str(), &query(Some("2"), None)).unwrap();
        assert_eq!(ids(first), (vec!["i1".into(), "i2".into()], true));
        let next = page_of(items.clone(), |s| s.as_str(), &query(Some("2"), Some("i2"))).unwrap();
        assert_eq!(ids(next), (vec!["i3".into(), "i4".into()], true));
        let last = page_of(items.clone(), |s| s.as_str(), &query(Some("2"), Some("i4"))).unwrap();
        assert_eq!(ids(last), (vec!["i5".into()], false));
        let all = page_of(items.clone(), |s| s.as_str(), &query(None, None)).unwrap();
        assert_eq!(all.data.iter().map(id).collect::<Vec<_>>().len(), 5);
        assert!(!all.has_more);
        let err = page_of(items, |s| s.as_str(), &query(None, Some("nope"))).unwrap_err();
        assert_eq!(err.code, Code::InvalidCursor);
    }

    #[test]
    fn limits_are_checked() {
        assert_eq!(query(None, None).limit().unwrap(), DEFAULT_LIMIT);
        assert_eq!(query(Some("100"), None).limit().unwrap(), 100);
        for bad in ["0", "101", "-1", "ten", "1.5", ""] {
            let err = query(Some(bad), None).limit().unwrap_err();
            assert_eq!(err.code, Code::InvalidLimit, "{bad}");
        }
    }
}
