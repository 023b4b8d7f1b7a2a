//! Errors at the HTTP edge: `application/problem+json` (RFC 9457) with a stable `code`.
//!
//! This module is where the API's status codes are chosen: each domain [`Error`]'s kind maps
//! to one status here (the gateway, an HTTP edge of its own, answers its refusals in
//! `gateway::refusal`). Internal failures are logged in full and reach the caller as a bare 500
//! that reveals nothing.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tollgate_store::StoreError;

pub use crate::error::FieldError;
use crate::error::{Code, Error, Kind};

/// A problem the API reports to its caller.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Code,
    pub detail: String,
    /// Field-level problems (validation), each with a path.
    pub errors: Vec<FieldError>,
}

/// The body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the problem type: `urn:tollgate:problem:<code>`.
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable machine-readable code; match on this, not on `detail`.
    pub code: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: Code, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    pub fn bad_request(code: Code, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn validation(detail: impl Into<String>, errors: Vec<FieldError>) -> Self {
        ApiError {
            errors,
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                Code::ValidationFailed,
                detail,
            )
        }
    }

    pub fn not_found(kind: &str, id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            Code::NotFound,
            format!("{kind} {id:?} not found"),
        )
    }

    pub fn conflict(code: Code, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, Code::Unauthorized, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, Code::Forbidden, detail)
    }

    /// Logs the cause and answers a 500 that says nothing about it.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Error::internal(cause).into()
    }

    /// The same error with another stable code.
    pub fn with_code(mut self, code: Code) -> Self {
        self.code = code;
        self
    }

    pub fn problem(&self) -> Problem {
        Problem {
            type_uri: format!("urn:tollgate:problem:{}", self.code),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.as_str().to_owned(),
            errors: self.errors.clone(),
        }
    }
}

impl ApiError {
    /// The problem as a JSON object, for answers that add extension members.
    pub fn problem_json(&self) -> serde_json::Value {
        serde_json::to_value(self.problem()).unwrap_or_default()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.problem())).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response
            .extensions_mut()
            .insert(super::request_log::ProblemCode(self.code));
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        Error::from(err).into()
    }
}

/// The one mapping from a domain error's kind to an HTTP status.
pub fn status_of(kind: Kind) -> StatusCode {
    match kind {
        Kind::Invalid => StatusCode::BAD_REQUEST,
        Kind::Validation => StatusCode::UNPROCESSABLE_ENTITY,
        Kind::NotFound => StatusCode::NOT_FOUND,
        Kind::Conflict => StatusCode::CONFLICT,
        Kind::Unauthenticated => StatusCode::UNAUTHORIZED,
        Kind::Forbidden => StatusCode::FORBIDDEN,
        Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Kind::Gone => StatusCode::GONE,
        Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        ApiError {
            status: status_of(err.kind),
            code: err.code,
            detail: err.detail,
            errors: err.errors,
        }
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::JsonRejection) -> Self {
        ApiError::new(rejection.status(), Code::InvalidJson, rejection.body_text())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
