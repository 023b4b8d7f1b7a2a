//! The README, run as a new user runs it: every command of its `sh` blocks, in order, as written,
//! so none of them can rot.
//!
//! How each line runs (no shell is needed; a line the rules below do not know fails the test):
//! - `$NAME` is the shell variable: set by `export`, or taken from an answer where a comment says
//!   so (`its "secret" is $CUSTOMER_KEY` reads the answer's field; `the first "id" is $X` and
//!   `the last "id" is $X` the first or last item of its `data`).
//! - `tollgate ARGS` runs the built binary; `cargo run ... -- ARGS` runs it too (the same code,
//!   unoptimized). `serve`, `gateway` and `demo` keep running (the previous one is stopped first)
//!   until `/healthz` answers; other commands must exit 0.
//! - `curl` lines are sent with reqwest (`-X`, `-H`, `-d`, `--data-binary @FILE`, `-o`), and
//!   must answer 2xx.
//! - A comment `# -> "key": value` promises that the answer (JSON, at any depth) has that
//!   member; `# -> text` that the command printed the text.
//! - `cargo test` lines are this test's own runner, and are not run again.
//! - The server listens on a free port instead of 8080 (the only change made to a line), and runs
//!   in a temporary directory holding `examples/` and stand-ins for the files the README says are
//!   the reader's own (`catalog.yaml`, `old.yaml`, `new.yaml`, `tollgate.toml`).
//! - The line naming `$DATABASE_URL` runs in its own test, on the test PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::{ChildGuard, stderr, stdout, tollgate, wait_healthy};
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One command of the README: its text (continuations joined, comment removed) and comment.
#[derive(Debug, Clone)]
struct Line {
    command: String,
    comment: String,
}

/// The commands of every `sh` block of `markdown`, in order.
fn commands(markdown: &str) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut in_block = false;
    let mut pending = String::new();
    for raw in markdown.lines() {
        let trimmed = raw.trim();
        if trimmed.starts_with("```") {
            in_block = !in_block && trimmed == "```sh";
            continue;
        }
        if !in_block || trimmed.is_empty() || (pending.is_empty() && trimmed.starts_with('#')) {
            continue;
        }
        let (code, comment) = split_comment(raw);
        let code = code.trim_end();
        if let Some(head) = code.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            if !comment.is_empty() {
                panic!("a comment inside a continued line: {raw}");
            }
            continue;
        }
        pending.push_str(code);
        lines.push(Line {
            command: pending.trim().to_owned(),
            comment: comment.trim().to_owned(),
        });
        pending.clear();
    }
    assert!(pending.is_empty(), "a continued line ends the block");
    lines
}

/// `code # comment`, where the `#` starts a word outside quotes.
fn split_comment(line: &str) -> (&str, &str) {
    let (mut single, mut double) = (false, false);
    let mut previous = ' ';
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && previous.is_whitespace() => {
                return (&line[..i], line[i + 1..].trim_start());
            }
            _ => {}
        }
        previous = c;
    }
    (line, "")
}

/// What a comment promises: `-> X` up to `;` or ` (`.
fn promise(comment: &str) -> Option<String> {
    let rest = comment.split_once("-> ")?.1;
    let end = [rest.find("; "), rest.find(" (")]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(rest.len());
    Some(rest[..end].trim().to_owned())
}

/// Where a captured variable is read from: the answer, or the first or last item of its `data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Answer,
    First,
    Last,
}

/// The variables a comment says come from the answer: `(from, field, name)` for `its "F" is $V`,
/// `the first "F" is $V` and `the last "F" is $V`.
fn captures(comment: &str) -> Vec<(Source, String, String)> {
    let mut found = Vec::new();
    for (prefix, from) in [
        ("its \"", Source::Answer),
        ("the first \"", Source::First),
        ("the last \"", Source::Last),
    ] {
        let mut rest = comment;
        while let Some(at) = rest.find(prefix) {
            let tail = &rest[at + prefix.len()..];
            let (field, after) = tail.split_once('"').expect("a closing quote");
            let after = after
                .strip_prefix(" is $")
                .expect("`is $NAME` after the field");
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            found.push((from, field.to_owned(), name));
            rest = after;
        }
    }
    found
}

/// Whether some object in `value` has member `key` equal to `expected`.
fn has_member(value: &Value, key: &str, expected: &Value) -> bool {
    match value {
        Value::Object(map) => {
            map.get(key).is_some_and(|v| v == expected)
                || map.values().any(|v| has_member(v, key, expected))
        }
        Value::Array(items) => items.iter().any(|v| has_member(v, key, expected)),
        _ => false,
    }
}

struct Session {
    dir: tempfile::TempDir,
    port: u16,
    vars: HashMap<String, String>,
    exported: Vec<String>,
    running: Option<ChildGuard>,
    http: reqwest::Client,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Session {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(repo().join("examples"), dir.path().join("examples")).unwrap();
        // Stand-ins for the reader's own files.
        let apex = std::fs::read_to_string(repo().join("examples/catalogs/apex.yaml")).unwrap();
        std::fs::write(dir.path().join("catalog.yaml"), &apex).unwrap();
        std::fs::write(dir.path().join("old.yaml"), &apex).unwrap();
        let raised = apex.replace("percent: 2, cap: \"99.00\"", "percent: 2, cap: \"109.00\"");
        assert_ne!(raised, apex, "the stand-in change applies");
        std::fs::write(dir.path().join("new.yaml"), raised).unwrap();
        let gateway = free_port();
        std::fs::write(
            dir.path().join("tollgate.toml"),
            format!(
                "[gateway]\nlisten = \"127.0.0.1:{gateway}\"\nupstream = \"http://127.0.0.1:9\"\n\
                 workspace = \"ws_default\"\n\n[[gateway.routes]]\npath = \"/v1/runs\"\n\
                 meter = \"agent_runs\"\n"
            ),
        )
        .unwrap();
        Session {
            dir,
            port: free_port(),
            vars: HashMap::new(),
            exported: Vec::new(),
            running: None,
            http: reqwest::Client::new(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `$NAME` and `${NAME}` replaced by their values, and the port 8080 by the test's.
    fn expand(&self, text: &str) -> String {
        let text = text.replace("127.0.0.1:8080", &format!("127.0.0.1:{}", self.port));
        let mut out = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '$' {
                out.push(c);
                continue;
            }
            let braced = chars.peek() == Some(&'{');
            if braced {
                chars.next();
            }
            let mut name = String::new();
            while let Some(&n) = chars.peek() {
                if n.is_ascii_alphanumeric() || n == '_' {
                    name.push(n);
                    chars.next();
                } else {
                    break;
                }
            }
            if braced {
                assert_eq!(chars.next(), Some('}'), "unclosed ${{ in {text}");
            }
            assert!(!name.is_empty(), "a lone $ in {text}");
            let value = self.vars.get(&name).unwrap_or_else(|| {
                panic!("${name} is used before the README says where it comes from: {text}")
            });
            out.push_str(value);
        }
        out
    }

    fn env(&self) -> Vec<(String, String)> {
        self.exported
            .iter()
            .map(|name| (name.clone(), self.vars[name].clone()))
            .collect()
    }

    async fn run(&mut self, line: &Line) {
        eprintln!("$ {}", line.command);
        let expanded = self.expand(&line.command);
        let mut words = shlex::split(&expanded)
            .unwrap_or_else(|| panic!("unbalanced quotes: {}", line.command));
        // Leading assignments: `export A=b` sets variables, `A=b cmd` the command's environment.
        let mut assignments = Vec::new();
        if words.first().map(String::as_str) == Some("export") {
            for word in &words[1..] {
                let (name, value) = word.split_once('=').expect("export NAME=VALUE");
                self.vars.insert(name.to_owned(), value.to_owned());
                self.exported.push(name.to_owned());
            }
            return;
        }
        while let Some((name, value)) = words.first().and_then(|w| w.split_once('=')) {
            if !name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())
            {
                break;
            }
            assignments.push((name.to_owned(), value.to_owned()));
            words.remove(0);
        }
        match words[0].as_str() {
            "cargo" if words.get(1).map(String::as_str) == Some("test") => {
                eprintln!("(the test runner itself, not run again) {}", line.command);
            }
            "cargo" => {
                let dashes = words
                    .iter()
                    .position(|w| w == "--")
                    .expect("cargo run ... -- ARGS");
                assert_eq!(words[1], "run", "{}", line.command);
                let args = words[dashes + 1..].to_vec();
                self.tollgate(&args, &assignments, line).await;
            }
            "tollgate" => {
                let args = words[1..].to_vec();
                self.tollgate(&args, &assignments, line).await;
            }
            "curl" => {
                assert!(assignments.is_empty(), "{}", line.command);
                self.curl(&words[1..], line).await;
            }
            other => panic!(
                "the README runs `{other}`, which this test does not know: {}",
                line.command
            ),
        }
    }

    /// Globs (`dir/*.yaml`) expanded as a shell would, sorted.
    fn glob(&self, word: &str) -> Vec<String> {
        let Some((dir, pattern)) = word.rsplit_once('/').filter(|_| word.contains('*')) else {
            return vec![word.to_owned()];
        };
        let (prefix, suffix) = pattern.split_once('*').unwrap();
        let mut found: Vec<String> = std::fs::read_dir(self.path().join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(prefix) && n.ends_with(suffix))
            .map(|n| format!("{dir}/{n}"))
            .collect();
        found.sort();
        assert!(!found.is_empty(), "{word} matches nothing");
        found
    }

    async fn tollgate(&mut self, args: &[String], assignments: &[(String, String)], line: &Line) {
        let args: Vec<String> = args.iter().flat_map(|a| self.glob(a)).collect();
        let mut cmd = tollgate();
        cmd.args(&args)
            .current_dir(self.path())
            .env("TOLLGATE_LISTEN", format!("127.0.0.1:{}", self.port))
            .envs(self.env())
            .envs(assignments.iter().cloned());
        if matches!(args[0].as_str(), "serve" | "gateway" | "demo") {
            // One server at a time on the port: the previous one stops first.
            if let Some(mut previous) = self.running.take() {
                previous.terminate();
            }
            let log = self.path().join(format!("{}.log", args[0]));
            let mut child = ChildGuard(
                cmd.stdout(Stdio::piped())
                    .stderr(std::fs::File::create(&log).unwrap())
                    .spawn()
                    .unwrap(),
            );
            // The demo answers /healthz before it has loaded its workspaces: wait for its
            // summary, as a reader does.
            let printed = child.0.stdout.take().unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(printed)
                    .lines()
                    .map_while(Result::ok)
                {
                    if line.contains("Tollgate demo is running") {
                        let _ = tx.send(());
                    }
                }
            });
            if args[0] == "demo" {
                rx.recv_timeout(std::time::Duration::from_secs(120))
                    .unwrap_or_else(|_| panic!("the demo never said it runs: {}", line.command));
            }
            wait_healthy(&format!("http://127.0.0.1:{}", self.port), &mut child, &log).await;
            self.running = Some(child);
            return;
        }
        let output = cmd.output().unwrap();
        assert!(
            output.status.success(),
            "{}\nexit {}\nstdout:\n{}\nstderr:\n{}",
            line.command,
            output.status,
            stdout(&output),
            stderr(&output)
        );
        if let Some(text) = promise(&line.comment) {
            let printed = stdout(&output);
            assert!(
                printed.contains(&text),
                "{}\npromised {text:?}, printed:\n{printed}",
                line.command
            );
        }
    }

    async fn curl(&mut self, args: &[String], line: &Line) {
        let (mut method, mut url, mut body, mut out) = (None, None, None::<Vec<u8>>, None);
        let mut headers = Vec::new();
        let mut words = args.iter();
        while let Some(word) = words.next() {
            let mut value = || words.next().expect("a flag's value").clone();
            match word.as_str() {
                "-X" => method = Some(value()),
                "-H" => {
                    let header = value();
                    let (name, v) = header.split_once(':').expect("-H 'Name: value'");
                    headers.push((name.trim().to_owned(), v.trim().to_owned()));
                }
                "-d" => body = Some(value().into_bytes()),
                "--data-binary" => {
                    let data = value();
                    body = Some(match data.strip_prefix('@') {
                        Some(file) => std::fs::read(self.path().join(file)).unwrap(),
                        None => data.into_bytes(),
                    });
                }
                "-o" => out = Some(value()),
                flag if flag.starts_with('-') => panic!("curl flag {flag} unknown to this test"),
                _ => url = Some(word.clone()),
            }
        }
        let url = url.expect("a URL");
        let method = method.unwrap_or_else(|| if body.is_some() { "POST" } else { "GET" }.into());
        let mut request = self.http.request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            &url,
        );
        for (name, value) in headers {
            request = request.header(name, value);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let bytes = response.bytes().await.unwrap();
        assert!(
            status.is_success(),
            "{}\n{status}: {}",
            line.command,
            String::from_utf8_lossy(&bytes)
        );
        if let Some(file) = out {
            std::fs::write(self.path().join(&file), &bytes).unwrap();
            if file.ends_with(".pdf") {
                assert!(bytes.starts_with(b"%PDF-"), "{file} is a PDF");
            }
            return;
        }
        let answer: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{}: not JSON ({e})", line.command));
        if let Some(text) = promise(&line.comment) {
            let member: serde_json::Map<String, Value> =
                serde_json::from_str(&format!("{{{text}}}"))
                    .unwrap_or_else(|e| panic!("the promise {text:?} is not a JSON member: {e}"));
            for (key, expected) in member {
                assert!(
                    has_member(&answer, &key, &expected),
                    "{}\npromised \"{key}\": {expected}, answered:\n{answer}",
                    line.command
                );
            }
        }
        for (from, field, name) in captures(&line.comment) {
            let holder = match from {
                Source::Answer => &answer,
                Source::First => &answer["data"][0],
                Source::Last => answer["data"]
                    .as_array()
                    .and_then(|items| items.last())
                    .unwrap_or(&Value::Null),
            };
            let value = holder[field.as_str()]
                .as_str()
                .unwrap_or_else(|| panic!("{}: no \"{field}\" in {answer}", line.command));
            self.vars.insert(name, value.to_owned());
        }
    }
}

fn readme() -> Vec<Line> {
    let text = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let lines = commands(&text);
    assert!(
        lines.len() > 20,
        "the README's commands are found: {lines:#?}"
    );
    lines
}

#[tokio::test]
async fn every_command_of_the_readme_runs_as_written() {
    let mut session = Session::new();
    let mut ran = 0;
    for line in readme() {
        if line.command.contains("$DATABASE_URL") {
            continue; // readme_postgres_line
        }
        session.run(&line).await;
        ran += 1;
    }
    assert!(ran > 20);
    // What the last lines left behind: the invoice, as a PDF file.
    assert!(session.path().join("invoice.pdf").metadata().unwrap().len() > 1000);
    if let Some(mut server) = session.running.take() {
        server.terminate();
    }
}

#[tokio::test]
#[cfg_attr(
    not(tollgate_pg),
    ignore = "set TOLLGATE_TEST_DATABASE_URL to run the README's PostgreSQL line"
)]
async fn readme_postgres_line() {
    let mut session = Session::new();
    session.vars.insert(
        "DATABASE_URL".into(),
        std::env::var("TOLLGATE_TEST_DATABASE_URL").expect("TOLLGATE_TEST_DATABASE_URL"),
    );
    let lines: Vec<Line> = readme()
        .into_iter()
        .filter(|l| l.command.contains("$DATABASE_URL"))
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    session.run(&lines[0]).await;
    session.running.take().unwrap().terminate();
}

#[test]
fn the_line_rules_read_what_the_readme_writes() {
    let lines = commands(
        "```sh\nexport A=b   # note\ncurl -X POST $URL/x \\\n  -d '{\"a\": \"#1\"}'   # -> \"total\": \"60.00\"; the first \"id\" is $INVOICE_ID\n```\n```json\nnot: run\n```\n",
    );
    assert_eq!(lines.len(), 2);
    assert_eq!(
        lines[1].command,
        "curl -X POST $URL/x    -d '{\"a\": \"#1\"}'"
    );
    assert_eq!(
        promise(&lines[1].comment).as_deref(),
        Some("\"total\": \"60.00\"")
    );
    assert_eq!(
        captures(&lines[1].comment),
        vec![(Source::First, "id".to_owned(), "INVOICE_ID".to_owned())]
    );
    assert_eq!(
        promise("-> 465.00 USD (offline)").as_deref(),
        Some("465.00 USD")
    );
    assert!(has_member(
        &serde_json::json!({"data": [{"total": "60.00"}]}),
        "total",
        &serde_json::json!("60.00")
    ));
}
