//! The hosted signup (`/signup`): a person picks a plan on the pricing page and gives a name and
//! an email; the API's one-step signup (`app::customers::signup`) makes the customer, its
//! subscription (the plan's trial when it has one) and its first key. Only for workspaces whose
//! public pages are on, and one customer per email (the form is public: a second signup with an
//! email the workspace knows is refused, `email_taken`, instead of making a twin).

use tollgate_core::code::Code;
use tollgate_core::ids::WorkspaceId;

use crate::app::customers::profile::{check_email, check_name};
use crate::app::customers::{Signup, SignupOutcome, signup};
use crate::engine::Engine;
use crate::error::{AppResult, Error};

pub struct HostedSignup {
    pub workspace: String,
    pub name: String,
    pub email: String,
    pub plan: String,
}

pub async fn hosted_signup(engine: &Engine, input: HostedSignup) -> AppResult<SignupOutcome> {
    if !super::settings::enabled(engine, &input.workspace).await? {
        return Err(Error::not_found("page", "signup"));
    }
    let name = input.name.trim().to_owned();
    let email = input.email.trim().to_owned();
    if name.is_empty() {
        return Err(Error::invalid(Code::InvalidName, "give your name"));
    }
    check_name(&name)?;
    check_email(&email)?;
    let taken = engine
        .store()
        .customer_by_email(&WorkspaceId::from(input.workspace.as_str()), &email)
        .await?;
    if taken.is_some() {
        return Err(Error::conflict(
            Code::EmailTaken,
            "an account with this email exists already: sign in to the portal instead",
        ));
    }
    signup(
        engine,
        Signup {
            workspace: input.workspace,
            customer: crate::ids::new_id("cus"),
            name: Some(name),
            email: Some(email),
            plan: input.plan,
            key_name: Some("First key".to_owned()),
            ..Signup::default()
        },
    )
    .await
}
