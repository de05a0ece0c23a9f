//! What the CLI tests share: the binary, a fake Lago, and a loopback server that records what it
//! was asked.

#![allow(dead_code)]

use assert_cmd::Command;
use lago_audit_fake::{FakeLago, FakeLagoBuilder};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// The `lago-audit` binary, with no LAGO_* variables from the environment.
pub fn lago_audit() -> Command {
    let mut cmd = Command::cargo_bin("lago-audit").expect("the binary is built");
    cmd.env_remove("LAGO_API_KEY")
        .env_remove("LAGO_API_URL")
        .env_remove("LAGO_REGION")
        .env_remove("RUST_LOG")
        .timeout(std::time::Duration::from_secs(60));
    cmd
}

/// A fake Lago running on its own runtime for the length of a test.
pub struct Fake {
    pub fake: FakeLago,
    pub runtime: tokio::runtime::Runtime,
}

impl Fake {
    pub fn start(builder: FakeLagoBuilder) -> Fake {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let fake = runtime.block_on(builder.start()).unwrap();
        Fake { fake, runtime }
    }

    /// `lago-audit --api-url … --api-key …`.
    pub fn cmd(&self) -> Command {
        let mut cmd = lago_audit();
        cmd.args([
            "--api-url",
            &self.fake.base_url(),
            "--api-key",
            self.fake.api_key(),
        ]);
        cmd
    }

    /// A client of this fake.
    pub fn client(&self) -> lago_audit_client::Client {
        lago_audit_client::ClientBuilder::new(self.fake.api_key())
            .base_url(self.fake.base_url())
            .build()
            .unwrap()
    }
}

/// A canned answer of the recording server.
#[derive(Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
}

impl Answer {
    pub fn json(status: u16, body: &str) -> Answer {
        Answer {
            status,
            body: body.to_owned(),
            headers: vec![("content-type".into(), "application/json".into())],
        }
    }
    /// An empty page of the list at `path`.
    pub fn empty_page(path: &str) -> Answer {
        let key = ["activity_logs", "api_logs", "security_logs"]
            .into_iter()
            .find(|k| path.contains(k))
            .unwrap_or("activity_logs");
        Answer::json(
            200,
            &format!(
                r#"{{"{key}":[],"meta":{{"current_page":0,"next_page":null,"prev_page":null,"total_pages":0,"total_count":0}}}}"#
            ),
        )
    }
}

/// A loopback HTTP server that records each request's target (path and query) and answers with
/// `answer(target)`.
pub struct Recorder {
    pub url: String,
    pub seen: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    pub fn start(answer: impl Fn(&str) -> Answer + Send + 'static) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match stream.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => break,
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let target = head.split(' ').nth(1).unwrap_or("").to_owned();
                log.lock().unwrap().push(target.clone());
                let a = answer(&target);
                let mut response = format!(
                    "HTTP/1.1 {} X\r\ncontent-length: {}\r\nconnection: close\r\n",
                    a.status,
                    a.body.len()
                );
                for (k, v) in &a.headers {
                    response.push_str(&format!("{k}: {v}\r\n"));
                }
                response.push_str("\r\n");
                response.push_str(&a.body);
                let _ = stream.write_all(response.as_bytes());
            }
        });
        Recorder { url, seen }
    }

    /// `lago-audit --api-url <this> --api-key k`.
    pub fn cmd(&self) -> Command {
        let mut cmd = lago_audit();
        cmd.args(["--api-url", &self.url, "--api-key", "k"]);
        cmd
    }

    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// The columns whose CSV text is JSON (maps), and those that are numbers.
const JSON_COLUMNS: &[&str] = &[
    "activity_object",
    "activity_object_changes",
    "request_body",
    "request_response",
    "resources",
    "device_info",
    "http_status",
];

/// Reads CSV back into records: empty fields are absent, map columns are JSON text.
pub fn from_csv<T: serde::de::DeserializeOwned>(text: &str) -> Vec<T> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|row| {
            let row = row.unwrap();
            let mut object = serde_json::Map::new();
            for (name, value) in header.iter().zip(row.iter()) {
                if value.is_empty() {
                    continue;
                }
                let v = if JSON_COLUMNS.contains(&name) {
                    serde_json::from_str(value).unwrap()
                } else {
                    serde_json::Value::String(value.to_owned())
                };
                object.insert(name.to_owned(), v);
            }
            serde_json::from_value(serde_json::Value::Object(object)).unwrap()
        })
        .collect()
}

/// Reads NDJSON back into records.
pub fn from_ndjson<T: serde::de::DeserializeOwned>(text: &str) -> Vec<T> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
