//! An operator signs in: email and password checked against the stored Argon2id hash, a session
//! opened. An unknown email and a wrong password get the same answer after the same work (a
//! dummy hash is verified for unknown emails), and failed attempts per workspace and email are
//! bounded: after [`MAX_FAILURES`] in [`WINDOW`], the next ones are refused until it passes.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use jiff::{SignedDuration, Timestamp};
use tollgate_core::code::Code;
use tollgate_core::ids::WorkspaceId;
use tollgate_store::users::{OperatorUserRecord, WebSessionRecord};

use super::create::{hash_password, normalize_email};
use super::kinds;
use crate::auth::{generate_secret, hash_secret};
use crate::engine::Engine;
use crate::error::{AppResult, Error};

/// Failed attempts allowed per workspace and email in [`WINDOW`].
pub const MAX_FAILURES: u32 = 5;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// How long an operator session lasts.
pub const SESSION_HOURS: i64 = 12;
/// Prefix of session tokens (cookies) and CSRF tokens.
pub const SESSION_PREFIX: &str = "tgs_";
pub const CSRF_PREFIX: &str = "tgc_";
/// The throttle forgets its oldest entries beyond this many (memory stays bounded).
const MAX_TRACKED: usize = 100_000;

/// Failed sign-ins per (workspace, email), on this node.
#[derive(Default)]
pub struct Throttle {
    failures: dashmap::DashMap<String, (u32, Instant)>,
}

impl Throttle {
    fn key(workspace: &str, email: &str) -> String {
        format!("{workspace}\u{1f}{email}")
    }

    fn refused(&self, key: &str) -> bool {
        self.failures
            .get(key)
            .is_some_and(|e| e.0 >= MAX_FAILURES && e.1.elapsed() < WINDOW)
    }

    fn failed(&self, key: String) {
        if self.failures.len() >= MAX_TRACKED {
            self.failures.retain(|_, e| e.1.elapsed() < WINDOW);
        }
        let mut entry = self.failures.entry(key).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 = entry.0.saturating_add(1);
    }

    fn succeeded(&self, key: &str) {
        self.failures.remove(key);
    }
}

pub struct SignIn {
    pub workspace: String,
    pub email: String,
    pub password: String,
}

/// An open session: the token goes in the cookie, the CSRF token in every form.
pub struct OpenSession {
    pub token: String,
    pub record: WebSessionRecord,
    pub user: OperatorUserRecord,
}

fn refused() -> Error {
    Error::unauthenticated("the workspace, email or password is wrong")
        .with_code(Code::InvalidCredentials)
}

/// A hash verified when the email is unknown, so both answers take the same time.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password("tollgate-dummy-password").unwrap_or_default())
}

/// Workspace ids are letters, digits and `_ - . :`, at most 128: anything else names none.
fn plausible_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}

fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|hash| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

pub async fn sign_in(
    engine: &Engine,
    throttle: &Throttle,
    input: SignIn,
) -> AppResult<OpenSession> {
    let email = normalize_email(&input.email).map_err(|_| refused())?;
    let workspace = input.workspace.trim().to_owned();
    let key = Throttle::key(&workspace, &email);
    if throttle.refused(&key) {
        return Err(Error::new(
            crate::error::Kind::Forbidden,
            Code::TooManyAttempts,
            format!(
                "too many failed sign-ins for this email: wait {} minutes",
                WINDOW.as_secs() / 60
            ),
        ));
    }
    let user = if plausible_id(&workspace) {
        engine
            .store()
            .operator_user_by_email(&WorkspaceId::from(workspace.as_str()), &email)
            .await?
    } else {
        None
    };
    let phc = user
        .as_ref()
        .map_or_else(|| dummy_hash().to_owned(), |u| u.password_hash.clone());
    let password = input.password;
    let matches = tokio::task::spawn_blocking(move || verify(&password, &phc))
        .await
        .map_err(Error::internal)?;
    let Some(user) = user.filter(|_| matches) else {
        throttle.failed(key);
        return Err(refused());
    };
    throttle.succeeded(&key);
    open_session(
        engine,
        &user.workspace,
        kinds::OPERATOR,
        &user.id,
        SESSION_HOURS * 60,
    )
    .await
    .map(|(token, record)| OpenSession {
        token,
        record,
        user,
    })
}

/// Stores a new session of `kind` for `subject`, valid `minutes`; its token (shown once).
pub async fn open_session(
    engine: &Engine,
    workspace: &str,
    kind: &str,
    subject: &str,
    minutes: i64,
) -> AppResult<(String, WebSessionRecord)> {
    let token = generate_secret(SESSION_PREFIX);
    let now: Timestamp = engine.now();
    let record = WebSessionRecord {
        workspace: workspace.to_owned(),
        token_hash: hash_secret(&token),
        kind: kind.to_owned(),
        subject: subject.to_owned(),
        csrf: generate_secret(CSRF_PREFIX),
        created_at: now,
        expires_at: now + SignedDuration::from_mins(minutes),
        used_at: None,
    };
    engine.store().create_web_session(&record).await?;
    // Expired sessions of the workspace go as new ones come: the table holds live ones only
    // (an expired one is refused anyway, by its `expires_at`).
    engine
        .store()
        .prune_web_sessions(&WorkspaceId::from(workspace), now)
        .await?;
    Ok((token, record))
}
