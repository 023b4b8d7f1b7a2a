//! A new operator of a workspace: email, password (hashed with Argon2id, never kept) and role.

use argon2::password_hash::{PasswordHasher, SaltString};
use tollgate_core::code::Code;
use tollgate_store::users::OperatorUserRecord;

use super::Role;
use crate::engine::Engine;
use crate::error::{AppResult, Error};
use crate::ids::new_id;

/// Passwords shorter than this are refused.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// And longer than this (hashing cost is bounded by the input too).
pub const MAX_PASSWORD_CHARS: usize = 256;

pub struct NewUser {
    pub email: String,
    pub password: String,
    pub role: String,
}

/// A valid email, lower-cased: one `@`, something on each side, no spaces, at most 254 chars.
pub fn normalize_email(email: &str) -> Result<String, Error> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
    if valid {
        Ok(email)
    } else {
        Err(Error::invalid(
            Code::InvalidEmail,
            format!("{email:?} is not an email address"),
        ))
    }
}

/// The Argon2id PHC string of `password` (default parameters: 19 MiB, 2 passes), salted with
/// 16 random bytes. Slow on purpose: call it off the async threads.
pub fn hash_password(password: &str) -> AppResult<String> {
    let salt: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt).map_err(Error::internal)?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(Error::internal)
}

pub async fn create_user(
    engine: &Engine,
    workspace: &str,
    input: NewUser,
) -> AppResult<OperatorUserRecord> {
    let email = normalize_email(&input.email)?;
    let role = Role::parse(&input.role)?;
    let chars = input.password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(Error::invalid(
            Code::InvalidPassword,
            format!("a password has at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(Error::invalid(
            Code::InvalidPassword,
            format!("a password has at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    let password = input.password;
    let password_hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(Error::internal)??;
    let record = OperatorUserRecord {
        workspace: workspace.to_owned(),
        id: new_id("usr"),
        email,
        password_hash,
        role: role.as_str().to_owned(),
        created_at: engine.now(),
    };
    engine.store().create_operator_user(&record).await?;
    Ok(record)
}
