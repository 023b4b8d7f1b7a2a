//! The SMTP side: the deployment's relay (`tollgate serve --smtp-url`), and one message built
//! and handed to it with lettre over rustls (no OpenSSL): STARTTLS by default, implicit TLS
//! (`smtps://`, port 465), or plain SMTP for a relay on the same host.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use reqwest::Url;

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain connection upgraded with STARTTLS, which the relay must offer (port 587).
    StartTls,
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
    /// No encryption: only for a relay on this host (or a test's), never with credentials
    /// elsewhere.
    None,
}

impl TlsMode {
    pub fn parse(s: &str) -> Option<TlsMode> {
        match s {
            "starttls" => Some(TlsMode::StartTls),
            "tls" => Some(TlsMode::Tls),
            "none" => Some(TlsMode::None),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::StartTls => "starttls",
            TlsMode::Tls => "tls",
            TlsMode::None => "none",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            TlsMode::StartTls => 587,
            TlsMode::Tls => 465,
            TlsMode::None => 25,
        }
    }
}

/// The SMTP relay of a deployment. Its `Debug` never shows the password.
#[derive(Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub username: Option<String>,
    password: Option<String>,
    /// Connect, greet, send: each step's timeout.
    pub timeout: Duration,
    /// PEM certificates trusted beside the platform's roots (`--smtp-ca-file`: a relay with a
    /// private CA).
    root_certificates: Option<Vec<u8>>,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("timeout", &self.timeout)
            .field("root_certificates", &self.root_certificates.is_some())
            .finish()
    }
}

/// `%XX` escapes of a URL's user or password, decoded.
fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad escape at {:?}", text.get(i..).unwrap_or("")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "an escape that is not UTF-8".to_owned())
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl SmtpConfig {
    /// `smtp://[user:pass@]host[:port]` (STARTTLS unless `tls` says otherwise) or
    /// `smtps://...` (implicit TLS). Refused: other schemes, no host, a path or query (which
    /// would be ignored), a `tls` contradicting `smtps`, and credentials sent unencrypted to
    /// anything but this host.
    pub fn parse(url: &str, tls: Option<TlsMode>, timeout: Duration) -> Result<SmtpConfig, String> {
        let parsed = Url::parse(url).map_err(|e| format!("the SMTP URL is not a URL: {e}"))?;
        let tls = match (parsed.scheme(), tls) {
            ("smtp", tls) => tls.unwrap_or(TlsMode::StartTls),
            ("smtps", None | Some(TlsMode::Tls)) => TlsMode::Tls,
            ("smtps", Some(other)) => {
                return Err(format!(
                    "an smtps:// URL is implicit TLS; --smtp-tls {} contradicts it",
                    other.as_str()
                ));
            }
            (scheme, _) => {
                return Err(format!(
                    "the SMTP URL must start with smtp:// or smtps://, not {scheme}://"
                ));
            }
        };
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("the SMTP URL has no host")?
            .to_owned();
        if !matches!(parsed.path(), "" | "/")
            || parsed.query().is_some()
            || parsed.fragment().is_some()
        {
            return Err("the SMTP URL takes no path, query or fragment (use --smtp-tls)".into());
        }
        let username = Some(parsed.username())
            .filter(|u| !u.is_empty())
            .map(percent_decode)
            .transpose()?;
        let password = parsed.password().map(percent_decode).transpose()?;
        if password.is_some() && username.is_none() {
            return Err("the SMTP URL has a password but no user".into());
        }
        if username.is_some() && tls == TlsMode::None && !is_loopback(&host) {
            return Err(format!(
                "refusing to send SMTP credentials unencrypted to {host}: use STARTTLS or TLS \
                 (--smtp-tls none is for a relay on this host)"
            ));
        }
        Ok(SmtpConfig {
            port: parsed.port().unwrap_or(tls.default_port()),
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            tls,
            username,
            password,
            timeout,
            root_certificates: None,
        })
    }

    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    /// The password given apart from the URL (`TOLLGATE_SMTP_PASSWORD`): the URL must name the
    /// user and carry no password of its own.
    pub fn with_password(mut self, password: String) -> Result<SmtpConfig, String> {
        if self.username.is_none() {
            return Err("a password without a user in the SMTP URL".into());
        }
        if self.password.is_some() {
            return Err("the SMTP URL has a password already".into());
        }
        if self.tls == TlsMode::None && !is_loopback(&self.host) {
            return Err(format!(
                "refusing to send SMTP credentials unencrypted to {}",
                self.host
            ));
        }
        self.password = Some(password);
        Ok(self)
    }

    /// Trusts the PEM certificates `pem` (a private CA's) beside the platform's roots.
    pub fn with_root_certificates(mut self, pem: Vec<u8>) -> Result<SmtpConfig, String> {
        if self.tls == TlsMode::None {
            return Err("a CA file does nothing without TLS (--smtp-tls none)".into());
        }
        Certificate::from_pem(&pem).map_err(|e| format!("not a PEM certificate: {e}"))?;
        self.root_certificates = Some(pem);
        Ok(self)
    }

    /// Connects, greets and (with TLS) negotiates it, sending nothing: `tollgate doctor`.
    pub async fn check(&self) -> Result<(), String> {
        match self.transport()?.test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => Err(format!("{}:{} did not answer NOOP", self.host, self.port)),
            Err(e) => Err(format!("{}:{}: {e}", self.host, self.port)),
        }
    }

    fn transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
        let tls = match self.tls {
            TlsMode::None => Tls::None,
            mode => {
                let mut params = TlsParameters::builder(self.host.clone());
                if let Some(pem) = &self.root_certificates {
                    let cert =
                        Certificate::from_pem(pem).map_err(|e| format!("the SMTP CA file: {e}"))?;
                    params = params.add_root_certificate(cert);
                }
                let params = params
                    .build()
                    .map_err(|e| format!("TLS setup for {}: {e}", self.host))?;
                if mode == TlsMode::Tls {
                    Tls::Wrapper(params)
                } else {
                    Tls::Required(params)
                }
            }
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.host)
            .port(self.port)
            .tls(tls)
            .timeout(Some(self.timeout));
        if let Some(user) = &self.username {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                self.password.clone().unwrap_or_default(),
            ));
        }
        Ok(builder.build())
    }
}

/// What one message says and to whom.
pub struct Outgoing {
    pub from_address: String,
    pub from_name: Option<String>,
    pub reply_to: Option<String>,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// `(file name, content type, bytes)`.
    pub attachments: Vec<(String, String, Vec<u8>)>,
    /// `Message-ID` without the brackets: the same on every attempt, so a receiver can tell a
    /// retry from a second message.
    pub message_id: String,
}

fn mailbox(address: &str, name: Option<&str>) -> Result<Mailbox, String> {
    let email = address
        .parse()
        .map_err(|e| format!("{address:?} is not an email address: {e}"))?;
    Ok(Mailbox::new(name.map(str::to_owned), email))
}

/// The message in MIME: `multipart/alternative` (text, then HTML), inside `multipart/mixed`
/// with the attachments when there are any.
pub fn build(m: &Outgoing) -> Result<Message, String> {
    let mut builder = Message::builder()
        .from(mailbox(&m.from_address, m.from_name.as_deref())?)
        .to(mailbox(&m.to, None)?)
        .subject(m.subject.clone())
        .message_id(Some(format!("<{}>", m.message_id)));
    if let Some(reply_to) = &m.reply_to {
        builder = builder.reply_to(mailbox(reply_to, None)?);
    }
    let alternative = MultiPart::alternative()
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(m.text.clone()),
        )
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_HTML)
                .body(m.html.clone()),
        );
    let body = if m.attachments.is_empty() {
        alternative
    } else {
        let mut mixed = MultiPart::mixed().multipart(alternative);
        for (name, content_type, bytes) in &m.attachments {
            let content_type = ContentType::parse(content_type)
                .map_err(|e| format!("content type {content_type:?}: {e}"))?;
            mixed =
                mixed.singlepart(Attachment::new(name.clone()).body(bytes.clone(), content_type));
        }
        mixed
    };
    builder
        .multipart(body)
        .map_err(|e| format!("building the message: {e}"))
}

/// Hands `message` to the relay; the error says why it did not take it.
pub async fn send(config: &SmtpConfig, message: Message) -> Result<(), String> {
    let transport = config.transport()?;
    match tokio::time::timeout(config.timeout.saturating_mul(4), transport.send(message)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("SMTP {}:{}: {e}", config.host, config.port)),
        Err(_) => Err(format!(
            "SMTP {}:{}: timed out after {:?}",
            config.host,
            config.port,
            config.timeout.saturating_mul(4)
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const T: Duration = Duration::from_secs(10);

    #[test]
    fn urls_are_read_and_unsafe_or_idle_ones_refused() {
        let c = SmtpConfig::parse(
            "smtp://ops%40acme.example:p%3Ass@mail.acme.example",
            None,
            T,
        )
        .unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.tls),
            ("mail.acme.example", 587, TlsMode::StartTls)
        );
        assert_eq!(c.username.as_deref(), Some("ops@acme.example"));
        assert_eq!(c.password.as_deref(), Some("p:ss"));
        assert!(!format!("{c:?}").contains("p:ss"));
        let c = SmtpConfig::parse("smtps://u:p@mail.acme.example", None, T).unwrap();
        assert_eq!((c.port, c.tls), (465, TlsMode::Tls));
        let c = SmtpConfig::parse("smtp://127.0.0.1:2525", Some(TlsMode::None), T).unwrap();
        assert_eq!((c.port, c.tls), (2525, TlsMode::None));
        assert!(SmtpConfig::parse("smtp://u:p@localhost:25", Some(TlsMode::None), T).is_ok());
        for (url, tls) in [
            ("http://mail.acme.example", None),
            ("smtp://u:p@mail.acme.example", Some(TlsMode::None)),
            ("smtps://mail.acme.example", Some(TlsMode::StartTls)),
            ("smtp://mail.acme.example/inbox", None),
            ("smtp://mail.acme.example?tls=none", None),
            ("smtp://:p@mail.acme.example", None),
            ("mail.acme.example:587", None),
        ] {
            assert!(SmtpConfig::parse(url, tls, T).is_err(), "{url} {tls:?}");
        }
    }

    #[test]
    fn a_message_has_both_parts_and_its_attachment() {
        let m = Outgoing {
            from_address: "billing@acme.example".into(),
            from_name: Some("Acme Billing".into()),
            reply_to: Some("help@acme.example".into()),
            to: "ada@example.com".into(),
            subject: "Invoice INV-1".into(),
            text: "plain".into(),
            html: "<p>rich</p>".into(),
            attachments: vec![(
                "INV-1.pdf".into(),
                "application/pdf".into(),
                b"%PDF-1.7".to_vec(),
            )],
            message_id: "em_1@tollgate".into(),
        };
        let raw = String::from_utf8(build(&m).unwrap().formatted()).unwrap();
        for needle in [
            "multipart/mixed",
            "multipart/alternative",
            "text/plain",
            "text/html",
            "application/pdf",
            "INV-1.pdf",
            "Reply-To: help@acme.example",
            "Message-ID: <em_1@tollgate>",
        ] {
            assert!(raw.contains(needle), "{needle} in {raw}");
        }
    }
}
