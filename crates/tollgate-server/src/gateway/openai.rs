//! Token metering for OpenAI-compatible upstreams.
//!
//! The usage of an answer is in its body: `usage.prompt_tokens` / `usage.completion_tokens` in a
//! JSON answer, and in the last `data:` chunk of a streamed (SSE) one when the request set
//! `stream_options.include_usage`. The gateway never holds a body back to read it: frames are
//! passed on as they arrive while a [`UsageScanner`] looks at a copy (capped for JSON, line by
//! line for SSE), and the usage is reported once the body ends.
//!
//! Two ways around the meter are closed here: a streamed request without `include_usage` gets it
//! added ([`add_include_usage`]), and a client that hangs up before the last chunk does not stop
//! the gateway from reading it ([`MeteredBody`] keeps draining the upstream in the background,
//! up to a deadline).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use serde_json::{Map, Value};

/// What one answer consumed, as the upstream reported it. Numbers keep their JSON text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokenUsage {
    pub model: Option<String>,
    pub prompt_tokens: Option<serde_json::Number>,
    pub completion_tokens: Option<serde_json::Number>,
    pub total_tokens: Option<serde_json::Number>,
}

impl TokenUsage {
    /// Reads `model` and `usage` from one JSON document (an answer, or one stream chunk). The
    /// Responses API nests them under `response` and names the counts `input/output_tokens`.
    fn read(doc: &Value, into: &mut Option<TokenUsage>, model: &mut Option<String>) {
        let doc = doc.get("response").filter(|r| r.is_object()).unwrap_or(doc);
        if let Some(m) = doc.get("model").and_then(Value::as_str) {
            *model = Some(m.to_owned());
        }
        let Some(usage) = doc.get("usage").and_then(Value::as_object) else {
            return;
        };
        let count = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| usage.get(*n)?.as_number().cloned())
        };
        *into = Some(TokenUsage {
            model: None,
            prompt_tokens: count(&["prompt_tokens", "input_tokens"]),
            completion_tokens: count(&["completion_tokens", "output_tokens"]),
            total_tokens: count(&["total_tokens"]),
        });
    }

    /// The usage event's properties, named as configured.
    pub fn properties(&self, config: &super::config::OpenAiMetering) -> Map<String, Value> {
        let mut props = Map::new();
        if let Some(m) = &self.model {
            props.insert(config.model_property.clone(), Value::String(m.clone()));
        }
        let mut put = |name: &str, n: &Option<serde_json::Number>| {
            if let Some(n) = n {
                props.insert(name.to_owned(), Value::Number(n.clone()));
            }
        };
        put(&config.prompt_property, &self.prompt_tokens);
        put(&config.completion_property, &self.completion_tokens);
        put(&config.total_property, &self.total_tokens);
        props
    }
}

/// Reads usage from a copy of a body as it streams past.
pub enum UsageScanner {
    /// A JSON answer: copied up to `cap` bytes and parsed at the end.
    Json {
        copy: Vec<u8>,
        cap: usize,
        overflow: bool,
    },
    /// An SSE stream: scanned line by line; only `data:` lines that mention `usage` or come
    /// before the model is known are parsed.
    Sse {
        line: Vec<u8>,
        cap: usize,
        overflow: bool,
        usage: Option<TokenUsage>,
        model: Option<String>,
    },
}

impl UsageScanner {
    /// A scanner for a response of this content type, `None` if it carries no usage.
    pub fn for_content_type(content_type: &str, cap: usize) -> Option<Self> {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if essence == "text/event-stream" {
            return Some(UsageScanner::Sse {
                line: Vec::new(),
                cap,
                overflow: false,
                usage: None,
                model: None,
            });
        }
        (essence == "application/json" || essence.ends_with("+json")).then(|| UsageScanner::Json {
            copy: Vec::new(),
            cap,
            overflow: false,
        })
    }

    pub fn feed(&mut self, mut chunk: &[u8]) {
        match self {
            UsageScanner::Json {
                copy,
                cap,
                overflow,
            } => {
                if copy.len() + chunk.len() > *cap {
                    *overflow = true;
                } else if !*overflow {
                    copy.extend_from_slice(chunk);
                }
            }
            UsageScanner::Sse {
                line,
                cap,
                overflow,
                usage,
                model,
            } => {
                while let Some(end) = chunk.iter().position(|b| *b == b'\n') {
                    if !*overflow && line.len() + end <= *cap {
                        line.extend_from_slice(&chunk[..end]);
                        scan_sse_line(line, usage, model);
                    }
                    line.clear();
                    *overflow = false;
                    chunk = &chunk[end + 1..];
                }
                if line.len() + chunk.len() > *cap {
                    *overflow = true;
                    line.clear();
                } else if !*overflow {
                    line.extend_from_slice(chunk);
                }
            }
        }
    }

    /// Whether the usage was seen already (an SSE stream can stop being read).
    pub fn has_usage(&self) -> bool {
        matches!(self, UsageScanner::Sse { usage: Some(_), .. })
    }

    /// The usage, once the body ended.
    pub fn finish(self) -> Option<TokenUsage> {
        match self {
            UsageScanner::Json { copy, overflow, .. } => {
                if overflow {
                    tracing::warn!(
                        "JSON answer larger than gateway.openai.max_body_bytes: tokens not metered"
                    );
                    return None;
                }
                let doc: Value = serde_json::from_slice(&copy).ok()?;
                let (mut usage, mut model) = (None, None);
                TokenUsage::read(&doc, &mut usage, &mut model);
                usage.map(|u| TokenUsage { model, ..u })
            }
            UsageScanner::Sse {
                mut line,
                usage,
                mut model,
                overflow,
                ..
            } => {
                let mut usage = usage;
                if !overflow {
                    scan_sse_line(&mut line, &mut usage, &mut model);
                }
                usage.map(|u| TokenUsage { model, ..u })
            }
        }
    }
}

fn scan_sse_line(line: &mut Vec<u8>, usage: &mut Option<TokenUsage>, model: &mut Option<String>) {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    let Some(data) = line.strip_prefix(b"data:") else {
        return;
    };
    let wanted = model.is_none() || data.windows(7).any(|w| w == b"\"usage\"");
    if !wanted || data.trim_ascii() == b"[DONE]" {
        return;
    }
    if let Ok(doc) = serde_json::from_slice::<Value>(data) {
        TokenUsage::read(&doc, usage, model);
    }
}

/// Adds `stream_options.include_usage: true` to a JSON request that asks for a stream and did
/// not ask for usage; `None` when the body needs no change (or is not such a request).
pub fn add_include_usage(body: &[u8]) -> Option<Bytes> {
    let mut doc: Value = serde_json::from_slice(body).ok()?;
    let obj = doc.as_object_mut()?;
    if obj.get("stream") != Some(&Value::Bool(true)) {
        return None;
    }
    let options = obj
        .entry("stream_options")
        .or_insert_with(|| Value::Object(Map::new()));
    let options = options.as_object_mut()?;
    if options.get("include_usage") == Some(&Value::Bool(true)) {
        return None;
    }
    options.insert("include_usage".into(), Value::Bool(true));
    serde_json::to_vec(&doc).ok().map(Bytes::from)
}

/// Called once with the usage when the body ended (or was drained after the client left).
pub type OnUsage = Box<dyn FnOnce(Option<TokenUsage>) + Send>;

/// A response body passed through frame by frame while its usage is scanned.
pub struct MeteredBody {
    inner: Option<Incoming>,
    scanner: Option<UsageScanner>,
    on_usage: Option<OnUsage>,
    drain_timeout: Duration,
}

impl MeteredBody {
    pub fn new(
        inner: Incoming,
        scanner: UsageScanner,
        drain_timeout: Duration,
        on_usage: OnUsage,
    ) -> Self {
        MeteredBody {
            inner: Some(inner),
            scanner: Some(scanner),
            on_usage: Some(on_usage),
            drain_timeout,
        }
    }

    fn report(&mut self) {
        if let (Some(scanner), Some(on_usage)) = (self.scanner.take(), self.on_usage.take()) {
            on_usage(scanner.finish());
        }
    }
}

impl Body for MeteredBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(scanner)) = (frame.data_ref(), this.scanner.as_mut()) {
                    scanner.feed(data);
                }
            }
            Poll::Ready(None) => {
                this.inner = None;
                this.report();
            }
            Poll::Ready(Some(Err(_))) => {
                this.inner = None;
                this.report();
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map(|b| b.size_hint())
            .unwrap_or_default()
    }
}

impl Drop for MeteredBody {
    /// The client left before the end: read the rest of the upstream's answer in the background
    /// (for at most `drain_timeout`) so that the usage in its last chunk is still metered.
    fn drop(&mut self) {
        let (Some(inner), Some(scanner), Some(on_usage)) =
            (self.inner.take(), self.scanner.take(), self.on_usage.take())
        else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            on_usage(scanner.finish());
            return;
        };
        let deadline = self.drain_timeout;
        runtime.spawn(drain(inner, scanner, deadline, on_usage));
    }
}

async fn drain(
    mut body: Incoming,
    mut scanner: UsageScanner,
    deadline: Duration,
    on_usage: OnUsage,
) {
    let read = async {
        while !scanner.has_usage() {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        scanner.feed(data);
                    }
                }
                _ => break,
            }
        }
    };
    if tokio::time::timeout(deadline, read).await.is_err() {
        tracing::warn!("gave up draining an abandoned stream for its usage");
    }
    on_usage(scanner.finish());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_usage_is_read() {
        let mut s =
            UsageScanner::for_content_type("application/json; charset=utf-8", 1 << 20).unwrap();
        let body = br#"{"model":"gpt-x","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":30,"total_tokens":42}}"#;
        s.feed(&body[..20]);
        s.feed(&body[20..]);
        let u = s.finish().unwrap();
        assert_eq!(u.model.as_deref(), Some("gpt-x"));
        assert_eq!(u.prompt_tokens.unwrap().as_u64(), Some(12));
        assert_eq!(u.completion_tokens.unwrap().as_u64(), Some(30));
    }

    #[test]
    fn sse_usage_comes_from_the_last_chunk_across_split_lines() {
        let mut s = UsageScanner::for_content_type("text/event-stream", 1 << 20).unwrap();
        let stream = "data: {\"model\":\"m1\",\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\r\n\r\n\
                      data: {\"model\":\"m1\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":7}}\n\n\
                      data: [DONE]\n\n";
        for piece in stream.as_bytes().chunks(9) {
            s.feed(piece);
        }
        assert!(s.has_usage());
        let u = s.finish().unwrap();
        assert_eq!(u.model.as_deref(), Some("m1"));
        assert_eq!(u.prompt_tokens.unwrap().as_u64(), Some(5));
        assert_eq!(u.completion_tokens.unwrap().as_u64(), Some(7));
    }

    #[test]
    fn oversized_json_is_not_parsed_and_other_types_are_not_scanned() {
        let mut s = UsageScanner::for_content_type("application/json", 8).unwrap();
        s.feed(br#"{"usage":{"prompt_tokens":1}}"#);
        assert_eq!(s.finish(), None);
        assert!(UsageScanner::for_content_type("text/plain", 8).is_none());
    }

    #[test]
    fn include_usage_is_added_only_to_streamed_requests_without_it() {
        let added = add_include_usage(br#"{"model":"m","stream":true}"#).unwrap();
        let doc: Value = serde_json::from_slice(&added).unwrap();
        assert_eq!(doc["stream_options"]["include_usage"], true);
        assert!(add_include_usage(br#"{"model":"m"}"#).is_none());
        assert!(
            add_include_usage(br#"{"stream":true,"stream_options":{"include_usage":true}}"#)
                .is_none()
        );
        assert!(add_include_usage(b"not json").is_none());
    }
}
