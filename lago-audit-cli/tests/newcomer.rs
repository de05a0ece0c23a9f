//! The command line as a newcomer meets it: the first run against a cloud store, mistyped
//! destinations, `--resume` on a file it did not write, flags where people put them, the notes a
//! cron job logs, and every row of the exit-code table that `--help` prints.

mod common;

use common::{lago_audit, Answer, Fake, Recorder};
use lago_audit_fake::FakeLago;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A finished run's exit code, stdout and stderr.
fn run(cmd: &mut assert_cmd::Command) -> (Option<i32>, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `lago-audit --demo -q …`, in `dir`.
fn demo(dir: &Path) -> assert_cmd::Command {
    let mut cmd = lago_audit();
    cmd.current_dir(dir).args(["--demo", "-q"]);
    cmd
}

/// The error line of stderr (the one that starts with `error:`).
fn error_line(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no error line in {stderr:?}"))
}

#[test]
fn resume_calls_a_file_finished_only_when_this_command_finished_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A file no export wrote.
    std::fs::write(d.join("other.ndjson"), "hello\n").unwrap();
    let (code, _, err) =
        run(demo(d).args(["activity-logs", "export", "-o", "other.ndjson", "--resume"]));
    assert_eq!(code, Some(12), "{err}");
    assert!(
        error_line(&err).contains("not written by an export"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(d.join("other.ndjson")).unwrap(),
        "hello\n"
    );

    // A finished export: --resume says so, for the same command only.
    let export = |kind: &str, extra: &[&str]| {
        let mut c = demo(d);
        c.args(["--demo-records", "300", kind, "export", "-o", "logs.ndjson"])
            .args(extra);
        run(&mut c)
    };
    assert_eq!(export("activity-logs", &[]).0, Some(0));
    let whole = std::fs::read_to_string(d.join("logs.ndjson")).unwrap();
    assert_eq!(whole.lines().count(), 300);
    let (code, _, err) = export("activity-logs", &["--resume"]);
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = export("api-logs", &["--resume"]);
    assert_eq!(code, Some(12), "{err}");
    assert!(
        error_line(&err).contains("of activity-logs, not api-logs"),
        "{err}"
    );
    let (code, _, err) = export("activity-logs", &["--resume", "--from", "2025-03-01"]);
    assert_eq!(code, Some(12), "{err}");
    assert!(
        error_line(&err).contains("--from was not given, is 2025-03-01"),
        "{err}"
    );
    // A file changed since it was finished is not finished any more.
    std::fs::write(d.join("logs.ndjson"), "edited\n").unwrap();
    let (code, _, err) = export("activity-logs", &["--resume"]);
    assert_eq!(code, Some(12), "{err}");
    assert!(error_line(&err).contains("changed since"), "{err}");

    // An interrupted export (the receipt turned back into a checkpoint, as a kill leaves it):
    // a resume with another filter names the flag, not the filters' JSON.
    std::fs::write(d.join("logs.ndjson"), &whole).unwrap();
    let checkpoint = d.join("logs.ndjson.checkpoint.json");
    let mut saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&checkpoint).unwrap()).unwrap();
    saved["finished"] = false.into();
    saved["bytes"] = 0.into();
    saved["records"] = 0.into();
    saved["checkpoint"] = serde_json::Value::Null;
    std::fs::write(&checkpoint, saved.to_string()).unwrap();
    std::fs::write(d.join("logs.ndjson.part"), "").unwrap();
    let (code, _, err) = export(
        "activity-logs",
        &["--resume", "--activity-type", "plan.created"],
    );
    assert_eq!(code, Some(12), "{err}");
    let line = error_line(&err);
    assert!(
        line.contains("--activity-type was not given, is [\"plan.created\"]"),
        "{err}"
    );
    assert!(!line.contains("{\""), "no JSON of the filters: {err}");
}

#[test]
fn output_is_checked_before_anything_is_read() {
    let server = Recorder::start(Answer::empty_page);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("adir")).unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["-o", "adir"], "is a directory"),
        (&["-o", "adir/"], "is a directory"),
        (&["-o", "s3:/bucket"], "did you mean s3://bucket?"),
        (&["-o", "S3://bucket"], "did you mean s3://bucket?"),
        (
            &["-o", "https://example.com/x"],
            "http(s) URL is not a destination",
        ),
    ];
    for (args, says) in cases {
        for command in ["export", "tail", "list"] {
            let (code, out, err) = run(server
                .cmd()
                .current_dir(d)
                .args(["activity-logs", command])
                .args(*args));
            assert_eq!(code, Some(2), "{command} {args:?}: {err}");
            assert!(error_line(&err).contains(says), "{args:?}: {err}");
            if args[1].contains(':') {
                assert!(
                    err.contains("s3://bucket/prefix"),
                    "the supported forms: {err}"
                );
            }
            assert_eq!(out, "");
        }
    }
    assert_eq!(server.seen(), Vec::<String>::new(), "nothing was read");
    let mut left: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["adir"], "no file was written");
    assert_eq!(std::fs::read_dir(d.join("adir")).unwrap().count(), 0);

    // A local directory that cannot be made is the destination's failure, not a flag's.
    let (code, _, err) =
        run(server
            .cmd()
            .args(["activity-logs", "export", "-o", "file:///proc/lago-audit-x"]));
    assert_eq!(code, Some(13), "{err}");
    assert!(err.contains("cannot create /proc/lago-audit-x"), "{err}");
    assert!(!err.contains("-o takes"), "the URL was well formed: {err}");
    assert_eq!(server.seen(), Vec::<String>::new());
}

#[test]
fn the_help_says_what_each_command_does_with_a_file() {
    let help = lago_audit()
        .args(["activity-logs", "tail", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    let text = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        text.contains("tail appends to FILE as records arrive"),
        "{text}"
    );
    assert!(text.contains("export writes FILE.part"), "{text}");
    assert!(!text.contains("(atomically:"), "{text}");
    // Every method the flag takes is listed.
    let help = lago_audit()
        .args(["api-logs", "list", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for method in lago_audit_client::HttpMethod::KNOWN {
        let line = help
            .lines()
            .skip_while(|l| !l.contains("--http-method"))
            .nth(1)
            .unwrap_or_default();
        assert!(line.contains(method), "{method}: {line}");
    }
}

#[test]
fn flags_and_messages_speak_the_command_lines_words() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Global flags after the subcommand.
    let (code, out, err) = run(lago_audit().args([
        "--demo",
        "activity-logs",
        "list",
        "--demo-records",
        "40",
        "--demo-faults",
        "--per-page",
        "3",
        "-f",
        "ndjson",
    ]));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.lines().count(), 3);
    assert!(err.contains("(40 activity logs, with faults)"), "{err}");
    let (code, _, err) = run(lago_audit().args(["activity-logs", "list", "--demo-records", "5"]));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--demo-records works with --demo only"),
        "{err}"
    );
    // The banner names the kind read.
    for (kind, says) in [
        ("api-logs", "(20000 API logs)"),
        ("security-logs", "(5000 security logs)"),
    ] {
        let (code, _, err) = run(lago_audit().args(["--demo", kind, "list", "--per-page", "1"]));
        assert_eq!(code, Some(0), "{err}");
        assert!(err.contains(says), "{kind}: {err}");
    }
    // --batch-bytes takes the units it prints.
    for size in ["32M", "10MiB", "10MB", "32 MiB"] {
        let url = format!("file://{}/store", d.display());
        let (code, _, err) = run(demo(d).args([
            "--demo-records",
            "50",
            "activity-logs",
            "export",
            "-o",
            &url,
            "--batch-bytes",
            size,
        ]));
        assert_eq!(code, Some(0), "{size}: {err}");
    }
    // No library names in messages: methods, operations.
    let (code, _, err) = run(lago_audit().args([
        "--api-url",
        "http://10.0.0.1",
        "--api-key",
        "k",
        "activity-logs",
        "list",
    ]));
    assert_eq!(code, Some(3), "{err}");
    assert!(!err.contains("allow_insecure_http("), "{err}");
    assert!(err.contains("--allow-insecure-http"), "{err}");
    let (code, _, err) = run(lago_audit().args(["--demo", "activity-logs", "get", ".."]));
    assert_eq!(code, Some(2), "{err}");
    assert!(!err.contains("find_activity_log"), "{err}");
    let (code, _, err) = run(lago_audit().args([
        "--region",
        "mars",
        "--api-key",
        "k",
        "activity-logs",
        "list",
    ]));
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("take us, eu or Lago's base URL"), "{err}");
}

#[test]
fn a_run_without_a_terminal_logs_its_summary_and_quiet_silences_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut cmd = lago_audit();
    cmd.current_dir(d).args([
        "--demo",
        "--demo-records",
        "300",
        "activity-logs",
        "export",
        "-o",
        "out.ndjson",
    ]);
    let (code, _, err) = run(&mut cmd);
    assert_eq!(code, Some(0), "{err}");
    let summary: Vec<&str> = err.lines().filter(|l| !l.starts_with("demo:")).collect();
    assert_eq!(summary.len(), 1, "one line: {err}");
    assert!(
        summary[0].starts_with("exported 300 activity logs into out.ndjson in "),
        "{err}"
    );
    assert!(
        !err.contains('\r') && !err.contains("records ["),
        "no bar: {err:?}"
    );
    let (code, _, err) = run(demo(d).args([
        "--demo-records",
        "300",
        "activity-logs",
        "export",
        "-o",
        "out2.ndjson",
    ]));
    assert_eq!((code, err.as_str()), (Some(0), ""));

    // An export whose window holds nothing says so, with what Lago holds.
    let mut cmd = lago_audit();
    cmd.current_dir(d).args([
        "--demo",
        "activity-logs",
        "export",
        "--from",
        "2025-03-01",
        "--to",
        "2025-04-01",
        "-o",
        "march.ndjson",
    ]);
    let (code, _, err) = run(&mut cmd);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("0 activity logs in the window from 2025-03-01 to 2025-04-01; Lago holds 20000 of them, logged from"),
        "{err}"
    );
}

/// A store's URL from `.ci/run`'s variable, or `None` (with a note) when it is not set.
fn store_server(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{var} is not set under CI=true: .ci/run should have started the server")
        }
        _ => {
            eprintln!("SKIPPED the server part: {var} is not set (`.ci/run` starts it)");
            None
        }
    }
}

/// The command with no store variables at all (nor a home with cloud tools' files), reading
/// from a Lago that records what it is asked.
fn bare(lago: &Recorder, home: &Path) -> assert_cmd::Command {
    let mut cmd = lago.cmd();
    cmd.env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    cmd
}

/// One line saying `says`, exit `code`, and Lago never asked.
fn first_run_fails(cmd: &mut assert_cmd::Command, lago: &Recorder, code: i32, says: &[&str]) {
    let (got, _, err) = run(cmd.args(["activity-logs", "export"]));
    assert_eq!(got, Some(code), "{err}");
    let line = error_line(&err);
    for s in says {
        assert!(line.contains(s), "{s:?} in {err}");
    }
    assert_eq!(lago.seen(), Vec::<String>::new(), "Lago was read: {err}");
}

#[test]
fn a_first_run_against_a_cloud_store_names_what_is_missing() {
    let lago = Recorder::start(Answer::empty_page);
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    // GCS, against the parser: no credentials, no metadata server asked.
    first_run_fails(
        bare(&lago, h).args(["-o", "gs://lago-audit/trail"]),
        &lago,
        3,
        &["no Google credentials", "GOOGLE_APPLICATION_CREDENTIALS"],
    );
    // Azure with nothing set: the account.
    first_run_fails(
        bare(&lago, h).args(["-o", "az://trail/lago"]),
        &lago,
        3,
        &["no storage account", "AZURE_STORAGE_ACCOUNT_NAME"],
    );
    // S3 with nothing set: the key, and that no metadata server was asked.
    first_run_fails(
        bare(&lago, h).args(["-o", "s3://lago-audit/trail"]),
        &lago,
        3,
        &[
            "no AWS credentials",
            "AWS_ACCESS_KEY_ID",
            "metadata server was not tried",
        ],
    );
    first_run_fails(
        bare(&lago, h)
            .env("AWS_ACCESS_KEY_ID", "AKIA")
            .args(["-o", "s3://lago-audit/trail"]),
        &lago,
        3,
        &["AWS_SECRET_ACCESS_KEY"],
    );

    // What only the store can tell, from its first answer: a store on loopback that answers as
    // S3 does to a key it does not know, and to a bucket in another region.
    for (status, code, says) in [
        (403, "InvalidAccessKeyId", "S3 refused the credentials"),
        (301, "PermanentRedirect", "another region"),
        (400, "AuthorizationHeaderMalformed", "it is in eu-west-3"),
    ] {
        let s3 = Recorder::start(move |_| Answer {
            status,
            body: format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
                 <Message>no</Message><Region>eu-west-3</Region></Error>"
            ),
            headers: vec![("content-type".into(), "application/xml".into())],
        });
        first_run_fails(
            bare(&lago, h)
                .env("AWS_ACCESS_KEY_ID", "AKIA")
                .env("AWS_SECRET_ACCESS_KEY", "wrong")
                .env("AWS_ENDPOINT_URL", &s3.url)
                .env("AWS_ALLOW_HTTP", "true")
                .args(["-o", "s3://lago-audit/trail"]),
            &lago,
            13,
            &[says],
        );
    }

    if let Some(moto) = store_server("LAGO_SINK_TEST_S3") {
        // Credentials, but no such bucket.
        first_run_fails(
            bare(&lago, h)
                .env("AWS_ACCESS_KEY_ID", "test")
                .env("AWS_SECRET_ACCESS_KEY", "test")
                .env("AWS_REGION", "us-east-1")
                .env("AWS_ENDPOINT_URL", &moto)
                .env("AWS_ALLOW_HTTP", "true")
                .args(["-o", "s3://no-such-bucket-lago/trail"]),
            &lago,
            13,
            &["bucket does not exist", "NoSuchBucket"],
        );
        // No credentials, with the endpoint set: still refused before any request.
        first_run_fails(
            bare(&lago, h)
                .env("AWS_ENDPOINT_URL", &moto)
                .env("AWS_ALLOW_HTTP", "true")
                .args(["-o", "s3://no-such-bucket-lago/trail"]),
            &lago,
            3,
            &["AWS_ACCESS_KEY_ID"],
        );
    }
    if let Some(azurite) = store_server("LAGO_SINK_TEST_AZURITE") {
        let azure = |key: &str| {
            let mut c = bare(&lago, h);
            c.env("AZURE_STORAGE_ACCOUNT_NAME", "devstoreaccount1")
                .env(
                    "AZURE_STORAGE_ENDPOINT",
                    format!("{azurite}/devstoreaccount1"),
                )
                .env("AZURE_ALLOW_HTTP", "true");
            if !key.is_empty() {
                c.env("AZURE_STORAGE_ACCOUNT_KEY", key);
            }
            c.args(["-o", "az://no-such-container/trail"]);
            c
        };
        // The account, but no key.
        first_run_fails(
            &mut azure(""),
            &lago,
            3,
            &["no credentials", "AZURE_STORAGE_ACCOUNT_KEY"],
        );
        // A key Azurite refuses.
        first_run_fails(
            &mut azure("d3Jvbmcga2V5"),
            &lago,
            13,
            &["Azure refused the credentials"],
        );
        // The right key, no such container.
        let key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/\
                   KBHBeksoGMGw==";
        first_run_fails(
            &mut azure(key),
            &lago,
            13,
            &["container does not exist", "ContainerNotFound"],
        );
    }
}

#[test]
fn another_exports_checkpoint_at_a_url_exits_12_with_a_usable_hint() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}/store", dir.path().display());
    let export = |extra: &[&str]| {
        let mut c = demo(dir.path());
        c.args([
            "--demo-records",
            "200",
            "activity-logs",
            "export",
            "-o",
            &url,
        ])
        .args(extra);
        run(&mut c)
    };
    assert_eq!(export(&[]).0, Some(0));
    let (code, _, err) = export(&["--activity-type", "plan.created"]);
    assert_eq!(code, Some(12), "{err}");
    assert!(err.contains("another export"), "{err}");
    assert!(!err.contains("hint: ;"), "{err}");
    assert!(!err.contains("the same command continues"), "{err}");
}

/// The rows of the exit-code table in `--help`: (code, meaning).
fn exit_table() -> Vec<(i32, String)> {
    let help = lago_audit().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    help.lines()
        .skip_while(|l| !l.starts_with("Exit codes:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| {
            let (code, meaning) = l.trim().split_once(' ').unwrap();
            (code.parse().unwrap(), meaning.trim().to_owned())
        })
        .collect()
}

#[test]
fn every_row_of_the_exit_code_table_happens_as_it_says() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rows = exit_table();
    assert!(rows.len() >= 15, "{rows:?}");
    let lago_answers = |status: u16, body: &'static str| {
        Recorder::start(move |_| {
            let mut a = Answer::json(status, body);
            a.headers.push(("retry-after".into(), "0".into()));
            a.headers.push(("x-ratelimit-reset".into(), "0".into()));
            a
        })
    };
    for (code, meaning) in rows {
        let (got, err) = match code {
            0 => {
                let (c, out, err) = run(demo(d).args(["activity-logs", "list", "--per-page", "2"]));
                assert!(!out.is_empty());
                (c, err)
            }
            1 => {
                let (c, _, err) =
                    run(demo(d).args(["activity-logs", "list", "-o", "no/such/dir/x.csv"]));
                assert!(err.contains("cannot create a file in no/such/dir"), "{err}");
                (c, err)
            }
            2 => {
                let (c, _, err) = run(demo(d).args(["activity-logs", "list", "--page", "0"]));
                (c, err)
            }
            3 => {
                let (c, _, err) = run(lago_audit().args(["activity-logs", "list"]));
                assert!(err.contains("no Lago API key"), "{err}");
                (c, err)
            }
            4 => {
                let fake = Fake::start(FakeLago::builder().records(5));
                let (c, _, err) = run(lago_audit().args([
                    "--api-url",
                    &fake.fake.base_url(),
                    "--api-key",
                    "wrong",
                    "activity-logs",
                    "list",
                ]));
                (c, err)
            }
            5 => {
                let fake = Fake::start(FakeLago::builder().records(5).premium(false));
                run(fake.cmd().args(["activity-logs", "list"])).pipe(|(c, _, err)| (c, err))
            }
            6 => {
                let (c, _, err) = run(demo(d).args([
                    "activity-logs",
                    "get",
                    "00000000-0000-0000-0000-000000000000",
                ]));
                (c, err)
            }
            7 => {
                let lago = lago_answers(
                    422,
                    r#"{"status":422,"error":"Unprocessable Entity","code":"validation_errors","error_details":{"to_date":["invalid_date"]}}"#,
                );
                run(lago.cmd().args(["activity-logs", "list"])).pipe(|(c, _, e)| (c, e))
            }
            8 => {
                let lago = lago_answers(429, r#"{"status":429,"error":"Too Many Requests"}"#);
                run(lago.cmd().args(["--retries", "0", "activity-logs", "list"]))
                    .pipe(|(c, _, e)| (c, e))
            }
            9 => {
                let lago = lago_answers(503, r#"{"status":503,"error":"Service Unavailable"}"#);
                run(lago.cmd().args(["--retries", "0", "activity-logs", "list"]))
                    .pipe(|(c, _, e)| (c, e))
            }
            10 => {
                let port = std::net::TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port();
                run(lago_audit().args([
                    "--api-url",
                    &format!("http://127.0.0.1:{port}"),
                    "--api-key",
                    "k",
                    "--retries",
                    "0",
                    "activity-logs",
                    "list",
                ]))
                .pipe(|(c, _, e)| (c, e))
            }
            11 => {
                let lago = lago_answers(200, r#"{"activity_logs":"nope"}"#);
                run(lago.cmd().args(["activity-logs", "list"])).pipe(|(c, _, e)| (c, e))
            }
            12 => {
                std::fs::write(d.join("notes.txt"), "mine\n").unwrap();
                run(demo(d).args(["activity-logs", "export", "-o", "notes.txt", "--resume"]))
                    .pipe(|(c, _, e)| (c, e))
            }
            13 => run(demo(d).args([
                "activity-logs",
                "export",
                "-o",
                "file:///proc/lago-audit-row-13",
            ]))
            .pipe(|(c, _, e)| (c, e)),
            14 => {
                run(lago_audit()
                    .args(["verify", &format!("file://{}/no-archive-here", d.display())]))
                .pipe(|(c, _, e)| (c, e))
            }
            130 => interrupted(d),
            other => panic!("no scenario for exit code {other} ({meaning}): add one"),
        };
        assert_eq!(got, Some(code), "row {code} ({meaning}): {err}");
        if code != 0 {
            assert!(error_line(&err).len() > 8, "row {code} says why: {err}");
        }
    }
}

/// Ctrl-C in the middle of an export to a file: exit 130, the checkpoint kept.
fn interrupted(d: &Path) -> (Option<i32>, String) {
    let dest = d.join("slow.ndjson");
    let child = Command::new(assert_cmd::cargo::cargo_bin("lago-audit"))
        .env_remove("LAGO_API_KEY")
        .args([
            "--demo",
            "-q",
            "activity-logs",
            "export",
            "--rate-limit",
            "2",
        ])
        .args(["--max-per-page", "10", "-o"])
        .arg(&dest)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let checkpoint = d.join("slow.ndjson.checkpoint.json");
    let t = Instant::now();
    while !checkpoint.exists() && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `x.pipe(f)`: `f(x)`, to keep each row's scenario one expression.
trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl<T> Pipe for T {}
