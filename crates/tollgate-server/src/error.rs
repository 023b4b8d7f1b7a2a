//! The domain's errors: what went wrong, as a kind and a stable code, and nothing about HTTP.
//!
//! Everything below the HTTP edge (the engine, billing, the use cases, jobs, the CLI) reports
//! these; the edge (`api::error`, and the gateway's refusals) alone maps a [`Kind`] to a status
//! code. Internal causes are logged in full here and reach callers as a bare "internal error".

pub use tollgate_core::code::Code;

/// What kind of failure: the edge maps each to one status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The input breaks a rule (a bad id, a quantity out of range).
    Invalid,
    /// Well-formed input that fails validation, with one [`FieldError`] per mistake.
    Validation,
    NotFound,
    /// The change conflicts with the stored state.
    Conflict,
    /// No credentials, or unknown ones.
    Unauthenticated,
    /// Credentials that may not do this.
    Forbidden,
    /// A dependency (shared counters) is unreachable and the configuration says refuse.
    Unavailable,
    /// Something that existed and is no longer valid (an expired download link).
    Gone,
    /// A bug or an infrastructure failure; details are in the log only.
    Internal,
}

/// A field-level problem (validation), with its path.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

/// A failure with a stable, machine-readable `code` and a human `detail`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.describe())]
pub struct Error {
    pub kind: Kind,
    pub code: Code,
    pub detail: String,
    pub errors: Vec<FieldError>,
    /// For internal errors: the cause, for operators (the CLI, jobs, logs); never sent to API
    /// callers.
    pub cause: Option<String>,
}

pub type AppResult<T> = Result<T, Error>;

impl Error {
    pub fn new(kind: Kind, code: Code, detail: impl Into<String>) -> Self {
        Error {
            kind,
            code,
            detail: detail.into(),
            errors: Vec::new(),
            cause: None,
        }
    }

    /// The error as an operator reads it: the cause of an internal error included.
    pub fn describe(&self) -> String {
        match &self.cause {
            Some(cause) => format!("{} ({}): {cause}", self.detail, self.code),
            None => format!("{} ({})", self.detail, self.code),
        }
    }

    pub fn invalid(code: Code, detail: impl Into<String>) -> Self {
        Self::new(Kind::Invalid, code, detail)
    }

    pub fn validation(detail: impl Into<String>, errors: Vec<FieldError>) -> Self {
        Error {
            errors,
            ..Self::new(Kind::Validation, Code::ValidationFailed, detail)
        }
    }

    pub fn not_found(kind: &str, id: &str) -> Self {
        Self::new(
            Kind::NotFound,
            Code::NotFound,
            format!("{kind} {id:?} not found"),
        )
    }

    pub fn conflict(code: Code, detail: impl Into<String>) -> Self {
        Self::new(Kind::Conflict, code, detail)
    }

    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Self::new(Kind::Unauthenticated, Code::Unauthorized, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(Kind::Forbidden, Code::Forbidden, detail)
    }

    pub fn unavailable(code: Code, detail: impl Into<String>) -> Self {
        Self::new(Kind::Unavailable, code, detail)
    }

    pub fn gone(code: Code, detail: impl Into<String>) -> Self {
        Self::new(Kind::Gone, code, detail)
    }

    /// Logs the cause and returns an error that says nothing about it.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Error {
            cause: Some(cause.to_string()),
            ..Self::new(
                Kind::Internal,
                Code::Internal,
                "internal error; see the server log",
            )
        }
    }

    /// The same error with another stable code.
    pub fn with_code(mut self, code: Code) -> Self {
        self.code = code;
        self
    }
}

impl From<tollgate_store::StoreError> for Error {
    fn from(err: tollgate_store::StoreError) -> Self {
        use tollgate_store::StoreError;
        match err {
            StoreError::AlreadyExists { kind, id } => {
                Error::conflict(Code::AlreadyExists, format!("{kind} {id:?} already exists"))
            }
            StoreError::NotFound { kind, id } => Error::not_found(kind, &id),
            StoreError::Conflict(detail) => Error::conflict(Code::Conflict, detail),
            StoreError::Invalid { code, detail } => Error::invalid(code, detail),
            other => Error::internal(other),
        }
    }
}
