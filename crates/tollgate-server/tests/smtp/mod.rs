//! A real SMTP listener on 127.0.0.1 for the email tests, in Rust so `cargo test` needs nothing
//! installed: enough of RFC 5321 for a client (EHLO/HELO, STARTTLS (RFC 3207) with the test
//! certificate of this folder, AUTH PLAIN and LOGIN, MAIL, RCPT, DATA with dot-unstuffing, RSET,
//! NOOP, QUIT), keeping every message it accepted, and failing on purpose when told: a 451 to the
//! message, or the connection closed at once.
//!
//! `ca.pem` is a test CA (valid until 2126) and `server.pem`/`server.key` its certificate for
//! 127.0.0.1 and localhost: test material only, made with `openssl` for these tests.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The test CA that signed the listener's certificate (PEM).
pub const CA_PEM: &[u8] = include_bytes!("ca.pem");

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

fn acceptor() -> TlsAcceptor {
    let cert = CertificateDer::from_pem_slice(include_bytes!("server.pem")).unwrap();
    let key = PrivateKeyDer::from_pem_slice(include_bytes!("server.key")).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Accept,
    /// `451` after the message's data: a temporary failure.
    TempFail,
    /// Closes every connection before the greeting.
    Hangup,
}

/// One message the listener accepted.
#[derive(Clone, Debug)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent (headers and MIME body), dot-unstuffed.
    pub data: String,
    /// The user of a successful AUTH.
    pub user: Option<String>,
    /// Whether the session was upgraded with STARTTLS before the message.
    pub tls: bool,
}

impl Received {
    /// The data with quoted-printable soft line breaks joined and `=3D` decoded, for searching.
    pub fn plain(&self) -> String {
        self.data.replace("=\r\n", "").replace("=3D", "=")
    }

    /// The `Subject:` header.
    pub fn subject(&self) -> String {
        self.data
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap_or_default()
            .to_owned()
    }
}

#[derive(Clone)]
pub struct SmtpReceiver {
    pub port: u16,
    mode: Arc<Mutex<Mode>>,
    received: Arc<Mutex<Vec<Received>>>,
    /// Connections opened (accepted or not).
    connections: Arc<Mutex<usize>>,
    credentials: Option<(String, String)>,
    tls: Option<TlsAcceptor>,
}

impl SmtpReceiver {
    /// A listener accepting mail without authentication.
    pub async fn start() -> SmtpReceiver {
        Self::start_with(None, None).await
    }

    /// A listener that requires AUTH with `user` and `password`.
    pub async fn with_auth(user: &str, password: &str) -> SmtpReceiver {
        Self::start_with(Some((user.to_owned(), password.to_owned())), None).await
    }

    /// A listener that offers STARTTLS and requires it, then AUTH, before it takes mail.
    pub async fn with_starttls(user: &str, password: &str) -> SmtpReceiver {
        let credentials = Some((user.to_owned(), password.to_owned()));
        Self::start_with(credentials, Some(acceptor())).await
    }

    async fn start_with(
        credentials: Option<(String, String)>,
        tls: Option<TlsAcceptor>,
    ) -> SmtpReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = SmtpReceiver {
            port: listener.local_addr().unwrap().port(),
            mode: Arc::new(Mutex::new(Mode::Accept)),
            received: Arc::default(),
            connections: Arc::default(),
            credentials,
            tls,
        };
        let r = receiver.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let r = r.clone();
                tokio::spawn(async move {
                    let _ = r.session(stream).await;
                });
            }
        });
        receiver
    }

    /// `smtp://...` for `--smtp-url` (plain SMTP: the tests' relay is on loopback).
    pub fn url(&self) -> String {
        match &self.credentials {
            Some((u, p)) => format!("smtp://{u}:{p}@127.0.0.1:{}", self.port),
            None => format!("smtp://127.0.0.1:{}", self.port),
        }
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub fn connections(&self) -> usize {
        *self.connections.lock().unwrap()
    }

    async fn session(&self, stream: TcpStream) -> std::io::Result<()> {
        *self.connections.lock().unwrap() += 1;
        let mode = *self.mode.lock().unwrap();
        if mode == Mode::Hangup {
            return Ok(());
        }
        let mut io: BufReader<Box<dyn Io>> = BufReader::new(Box::new(stream));
        say(&mut io, b"220 test.smtp ESMTP ready\r\n").await?;
        let (mut from, mut to, mut user, mut secure) = (String::new(), Vec::new(), None, false);
        let mut line = String::new();
        loop {
            line.clear();
            if io.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let command = line.trim_end().to_owned();
            let upper = command.to_ascii_uppercase();
            // With TLS offered, nothing but EHLO, STARTTLS and QUIT before it.
            let needs_tls = self.tls.is_some() && !secure;
            let reply: String = if upper.starts_with("EHLO") {
                let starttls = if needs_tls { "250-STARTTLS\r\n" } else { "" };
                let auth = if self.credentials.is_some() && !needs_tls {
                    "250-AUTH PLAIN LOGIN\r\n"
                } else {
                    ""
                };
                format!("250-test.smtp\r\n{starttls}{auth}250 HELP\r\n")
            } else if upper == "STARTTLS" && needs_tls {
                say(&mut io, b"220 2.0.0 ready to start TLS\r\n").await?;
                let Some(acceptor) = self.tls.clone() else {
                    return Ok(());
                };
                let plain = io.into_inner();
                let tls = acceptor.accept(plain).await?;
                io = BufReader::new(Box::new(tls));
                secure = true;
                // RFC 3207: the client starts over with EHLO; nothing said before counts.
                (from, to, user) = (String::new(), Vec::new(), None);
                continue;
            } else if upper == "QUIT" {
                say(&mut io, b"221 bye\r\n").await?;
                return Ok(());
            } else if needs_tls {
                "530 5.7.0 must issue a STARTTLS command first\r\n".into()
            } else if upper.starts_with("HELO") {
                "250 test.smtp\r\n".into()
            } else if upper.starts_with("AUTH PLAIN") {
                let encoded = command.get(11..).unwrap_or("").trim().to_owned();
                let encoded = if encoded.is_empty() {
                    say(&mut io, b"334 \r\n").await?;
                    line.clear();
                    io.read_line(&mut line).await?;
                    line.trim().to_owned()
                } else {
                    encoded
                };
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .unwrap_or_default();
                let parts: Vec<String> = decoded
                    .split(|b| *b == 0)
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .collect();
                self.check_auth(parts.get(1), parts.get(2), &mut user)
            } else if upper.starts_with("AUTH LOGIN") {
                let b64 = base64::engine::general_purpose::STANDARD;
                say(&mut io, b"334 VXNlcm5hbWU6\r\n").await?;
                line.clear();
                io.read_line(&mut line).await?;
                let u = String::from_utf8_lossy(&b64.decode(line.trim()).unwrap_or_default())
                    .into_owned();
                say(&mut io, b"334 UGFzc3dvcmQ6\r\n").await?;
                line.clear();
                io.read_line(&mut line).await?;
                let p = String::from_utf8_lossy(&b64.decode(line.trim()).unwrap_or_default())
                    .into_owned();
                self.check_auth(Some(&u), Some(&p), &mut user)
            } else if upper.starts_with("MAIL FROM:") {
                if self.credentials.is_some() && user.is_none() {
                    "530 5.7.0 authentication required\r\n".into()
                } else {
                    from = address(&command);
                    to.clear();
                    "250 OK\r\n".into()
                }
            } else if upper.starts_with("RCPT TO:") {
                to.push(address(&command));
                "250 OK\r\n".into()
            } else if upper == "DATA" {
                say(&mut io, b"354 end with <CRLF>.<CRLF>\r\n").await?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if io.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                if *self.mode.lock().unwrap() == Mode::TempFail {
                    "451 4.3.0 try again later\r\n".into()
                } else {
                    self.received.lock().unwrap().push(Received {
                        from: from.clone(),
                        to: to.clone(),
                        data,
                        user: user.clone(),
                        tls: secure,
                    });
                    "250 OK queued\r\n".into()
                }
            } else if upper == "RSET" || upper == "NOOP" {
                "250 OK\r\n".into()
            } else {
                "502 command not implemented\r\n".into()
            };
            say(&mut io, reply.as_bytes()).await?;
        }
    }

    fn check_auth(
        &self,
        u: Option<&String>,
        p: Option<&String>,
        user: &mut Option<String>,
    ) -> String {
        match (&self.credentials, u, p) {
            (Some((cu, cp)), Some(u), Some(p)) if cu == u && cp == p => {
                *user = Some(u.clone());
                "235 2.7.0 authenticated\r\n".into()
            }
            _ => "535 5.7.8 bad credentials\r\n".into(),
        }
    }
}

/// Writes a reply and flushes it (a TLS stream may hold it otherwise).
async fn say(io: &mut BufReader<Box<dyn Io>>, reply: &[u8]) -> std::io::Result<()> {
    io.get_mut().write_all(reply).await?;
    io.get_mut().flush().await
}

/// `a@b` out of `MAIL FROM:<a@b> SIZE=...`.
fn address(command: &str) -> String {
    let start = command.find('<').map_or(0, |i| i + 1);
    let end = command.find('>').unwrap_or(command.len());
    command.get(start..end).unwrap_or_default().to_owned()
}
