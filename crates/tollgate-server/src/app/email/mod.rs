//! Email as the operator manages it (docs/EMAIL.md): the workspace's sender and branding, its
//! templates (read, replace, reset to the default), a preview of one rendered for a customer,
//! and the log of messages. Sending is `notify::email`'s.

pub mod messages;
pub mod preview;
pub mod settings;
pub mod templates;

use tollgate_core::code::Code;

use crate::error::{Error, Kind};
use crate::notify::email::templates::TemplateName;

/// A template's name, or `404 unknown_email_template` listing the names there are.
pub fn template_name(name: &str) -> Result<TemplateName, Error> {
    TemplateName::parse(name).ok_or_else(|| {
        let names: Vec<&str> = TemplateName::ALL.iter().map(|t| t.as_str()).collect();
        Error::new(
            Kind::NotFound,
            Code::UnknownEmailTemplate,
            format!(
                "no email template {name:?}; the templates are {}",
                names.join(", ")
            ),
        )
    })
}
