//! `list` and `get` against the fake, the formats read back, filters on the wire, flag checks,
//! and one test per class of error with its exit code and message.

mod common;

use common::{from_csv, from_ndjson, lago_audit, Answer, Fake, Recorder};
use lago_audit_client::types::{ActivityLogObject, ApiLogObject, SecurityLogObject};
use lago_audit_fake::FakeLago;
use predicates::prelude::*;
use predicates::str::contains;

fn stdout(cmd: &mut assert_cmd::Command) -> String {
    let out = cmd.assert().success().get_output().stdout.clone();
    String::from_utf8(out).unwrap()
}

fn pairs(target: &str) -> Vec<(String, String)> {
    let query = target.split_once('?').map_or("", |(_, q)| q);
    url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

fn has(pairs: &[(String, String)], key: &str, value: &str) -> bool {
    pairs.iter().any(|(k, v)| k == key && v == value)
}

#[test]
fn list_and_get_read_back_to_the_records_the_library_returns() {
    let fake = Fake::start(FakeLago::builder().seed(3).records(400));
    let client = fake.client();
    let rt = &fake.runtime;

    let activity = rt
        .block_on(client.find_all_activity_logs().per_page(25).page(2).send())
        .unwrap()
        .into_inner()
        .activity_logs;
    let api = rt
        .block_on(client.find_all_api_logs().per_page(25).page(2).send())
        .unwrap()
        .into_inner()
        .api_logs;
    let security = rt
        .block_on(
            client
                .find_all_security_logs()
                .to_date("2030-01-01")
                .per_page(25)
                .page(2)
                .send(),
        )
        .unwrap()
        .into_inner()
        .security_logs;
    assert_eq!((activity.len(), api.len(), security.len()), (25, 25, 25));

    let list = |kind: &str, format: &str| {
        stdout(fake.cmd().args([
            kind,
            "list",
            "--page",
            "2",
            "--per-page",
            "25",
            "-f",
            format,
        ]))
    };
    // NDJSON and CSV give back exactly the records, field for field.
    assert_eq!(
        from_ndjson::<ActivityLogObject>(&list("activity-logs", "ndjson")),
        activity
    );
    assert_eq!(
        from_csv::<ActivityLogObject>(&list("activity-logs", "csv")),
        activity
    );
    assert_eq!(
        from_ndjson::<ApiLogObject>(&list("api-logs", "ndjson")),
        api
    );
    assert_eq!(from_csv::<ApiLogObject>(&list("api-logs", "csv")), api);
    assert_eq!(
        from_ndjson::<SecurityLogObject>(&list("security-logs", "ndjson")),
        security
    );
    assert_eq!(
        from_csv::<SecurityLogObject>(&list("security-logs", "csv")),
        security
    );
    // JSON is one array of the same records.
    let json: Vec<ApiLogObject> = serde_json::from_str(&list("api-logs", "json")).unwrap();
    assert_eq!(json, api);
    // The CSV header is stable.
    assert!(list("activity-logs", "csv").starts_with(
        "activity_id,logged_at,created_at,activity_type,activity_source,user_email,resource_type,\
         resource_id,external_customer_id,external_subscription_id,organization_id,\
         activity_object,activity_object_changes\n"
    ));

    // get, in every format, is the same record.
    let id = activity[3].activity_id.to_string();
    let get = |kind: &str, id: &str, format: &str| {
        stdout(fake.cmd().args([kind, "get", id, "-f", format]))
    };
    let one: ActivityLogObject = serde_json::from_str(&get("activity-logs", &id, "json")).unwrap();
    assert_eq!(one, activity[3]);
    assert_eq!(
        from_ndjson::<ActivityLogObject>(&get("activity-logs", &id, "ndjson")),
        [activity[3].clone()]
    );
    assert_eq!(
        from_csv::<ActivityLogObject>(&get("activity-logs", &id, "csv")),
        [activity[3].clone()]
    );
    let table = get("activity-logs", &id, "table");
    assert!(
        table.contains(&id) && table.contains(&activity[3].activity_type),
        "{table}"
    );
    let rid = api[0].request_id.clone();
    assert_eq!(
        from_ndjson::<ApiLogObject>(&get("api-logs", &rid, "ndjson")),
        [api[0].clone()]
    );
    let lid = security[0].log_id.to_string();
    assert_eq!(
        from_ndjson::<SecurityLogObject>(&get("security-logs", &lid, "ndjson")),
        [security[0].clone()]
    );
}

#[test]
fn output_files_are_written_whole_and_tables_fit_80_columns() {
    let fake = Fake::start(FakeLago::builder().seed(4).records(400));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("page.csv");
    fake.cmd()
        .args(["api-logs", "list", "--per-page", "30", "-f", "csv", "-o"])
        .arg(&path)
        .assert()
        .success()
        .stdout("");
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(from_csv::<ApiLogObject>(&text).len(), 30);
    // Nothing else is left in the folder: the temporary file was renamed.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    for kind in ["activity-logs", "api-logs", "security-logs"] {
        let table = stdout(
            fake.cmd()
                .args([kind, "list", "--per-page", "50", "-f", "table"]),
        );
        assert_eq!(table.lines().count(), 51, "{table}");
        assert!(table.starts_with("LOGGED AT (UTC)"), "{table}");
        for line in table.lines() {
            assert!(
                line.chars().count() <= 80,
                "{kind}: {} columns: {line}",
                line.chars().count()
            );
        }
    }
}

#[test]
fn filters_reach_the_wire() {
    let server = Recorder::start(Answer::empty_page);
    server
        .cmd()
        .args([
            "activity-logs",
            "list",
            "--activity-type",
            "invoice.voided",
            "--activity-type",
            "plan.created",
            "--activity-source",
            "front",
            "--activity-source",
            "API",
            "--user-email",
            "monica+finance@piedpiper.test",
            "--external-customer-id",
            "cust 7",
            "--external-subscription-id",
            "sub_1",
            "--resource-id",
            "1a901a90-1a90-1a90-1a90-1a901a901a90",
            "--resource-type",
            "Invoice",
            "--from",
            "2025-03-01",
            "--to",
            "2025-03-31T14:00:00+02:00",
            "--page",
            "3",
            "--per-page",
            "7",
        ])
        .assert()
        .success();
    server
        .cmd()
        .args([
            "api-logs",
            "list",
            "--http-method",
            "POST",
            "--http-method",
            "delete",
            "--http-status",
            "failed",
            "--status",
            "422",
            "--api-version",
            "v1",
            "--request-path",
            "/api/v1/plans*",
            "--client",
            "Lago Ruby v1.26.0",
            "--from",
            "2025-03-01T00:00:00Z",
        ])
        .assert()
        .success();
    server
        .cmd()
        .args([
            "security-logs",
            "list",
            "--user-id",
            "5ec00000-0000-0001-0000-000000000002",
            "--api-key-id",
            "a91e0000-0000-0000-0000-000000000003",
            "--log-type",
            "user",
            "--log-event",
            "user.signed_up",
            "--from",
            "2025-01-01",
        ])
        .assert()
        .success();
    let seen = server.seen();
    assert_eq!(seen.len(), 3, "{seen:?}");

    let (activity, api, security) = (&seen[0], &seen[1], &seen[2]);
    assert!(activity.starts_with("/api/v1/activity_logs?"), "{activity}");
    // `+` in an e-mail goes out percent-encoded, or Lago reads a space.
    assert!(
        activity.contains("monica%2Bfinance%40piedpiper.test"),
        "{activity}"
    );
    let p = pairs(activity);
    for (k, v) in [
        ("activity_types[]", "invoice.voided"),
        ("activity_types[]", "plan.created"),
        ("activity_sources[]", "front"),
        ("activity_sources[]", "api"),
        ("user_emails[]", "monica+finance@piedpiper.test"),
        ("external_customer_id", "cust 7"),
        ("external_subscription_id", "sub_1"),
        ("resource_ids[]", "1a901a90-1a90-1a90-1a90-1a901a901a90"),
        ("resource_types[]", "Invoice"),
        ("from_date", "2025-03-01"),
        ("to_date", "2025-03-31T12:00:00Z"),
        ("page", "3"),
        ("per_page", "7"),
    ] {
        assert!(has(&p, k, v), "{k}={v} missing from {p:?}");
    }

    assert!(api.starts_with("/api/v1/api_logs?"), "{api}");
    let p = pairs(api);
    for (k, v) in [
        ("http_methods[]", "post"),
        ("http_methods[]", "delete"),
        ("http_statuses[]", "failed"),
        ("http_statuses[]", "422"),
        ("api_version", "v1"),
        ("request_paths[]", "/api/v1/plans*"),
        ("clients[]", "Lago Ruby v1.26.0"),
        ("from_date", "2025-03-01T00:00:00Z"),
    ] {
        assert!(has(&p, k, v), "{k}={v} missing from {p:?}");
    }
    assert!(
        !p.iter().any(|(k, _)| k == "request_paths"),
        "never the scalar form Lago fails on"
    );

    assert!(security.starts_with("/api/v1/security_logs?"), "{security}");
    let p = pairs(security);
    for (k, v) in [
        ("user_ids[]", "5ec00000-0000-0001-0000-000000000002"),
        ("api_key_ids[]", "a91e0000-0000-0000-0000-000000000003"),
        ("log_types[]", "user"),
        ("log_events[]", "user.signed_up"),
        ("from_date", "2025-01-01"),
    ] {
        assert!(has(&p, k, v), "{k}={v} missing from {p:?}");
    }
    assert!(
        p.iter().any(|(k, _)| k == "to_date"),
        "Lago requires to_date on security logs: {p:?}"
    );
}

#[test]
fn filters_select_records_on_the_fake() {
    let fake = Fake::start(FakeLago::builder().seed(5).records(600));
    let text = stdout(fake.cmd().args([
        "api-logs",
        "list",
        "--per-page",
        "100",
        "--http-status",
        "422",
        "--http-method",
        "PUT",
        "-f",
        "ndjson",
    ]));
    let logs = from_ndjson::<ApiLogObject>(&text);
    assert!(!logs.is_empty());
    assert!(logs
        .iter()
        .all(|l| l.http_status == 422 && l.http_method.as_str() == "put"));
    let text = stdout(fake.cmd().args([
        "activity-logs",
        "list",
        "--per-page",
        "100",
        "--activity-type",
        "invoice.voided",
        "-f",
        "ndjson",
    ]));
    let logs = from_ndjson::<ActivityLogObject>(&text);
    assert!(!logs.is_empty());
    assert!(logs.iter().all(|l| l.activity_type == "invoice.voided"));
}

#[test]
fn bad_flag_values_fail_before_any_request() {
    let server = Recorder::start(Answer::empty_page);
    let cases: &[(&[&str], &str)] = &[
        (&["activity-logs", "list", "--from", "yesterday"], "--from"),
        (&["activity-logs", "export", "--to", "2025-13-01"], "--to"),
        (
            &[
                "activity-logs",
                "list",
                "--from",
                "2025-05-01",
                "--to",
                "2025-04-01",
            ],
            "--from",
        ),
        (
            &["api-logs", "list", "--http-status", "99"],
            "--http-status",
        ),
        (&["api-logs", "tail", "--status", "2xx"], "--http-status"),
        (
            &["api-logs", "list", "--http-method", "patch"],
            "--http-method",
        ),
        (
            &["activity-logs", "list", "--resource-id", "not-a-uuid"],
            "--resource-id",
        ),
        (
            &["activity-logs", "list", "--user-email", "nobody"],
            "--user-email",
        ),
        (
            &["activity-logs", "list", "--activity-source", "fornt"],
            "--activity-source",
        ),
        (
            &["activity-logs", "list", "--activity-type", " "],
            "--activity-type",
        ),
        (
            &["security-logs", "list", "--log-type", "admin"],
            "--log-type",
        ),
        (&["security-logs", "list", "--user-id", "42"], "--user-id"),
        (&["activity-logs", "list", "--per-page", "0"], "--per-page"),
        (&["activity-logs", "list", "--page", "0"], "--page"),
        (&["activity-logs", "list", "--timeout", "soon"], "--timeout"),
        (&["activity-logs", "export", "--resume"], "--output"),
        (&["activity-logs", "get", ""], "ACTIVITY_ID"),
    ];
    for (args, flag) in cases {
        server
            .cmd()
            .args(*args)
            .assert()
            .code(2)
            .stderr(contains(*flag))
            .stdout("");
    }
    assert_eq!(
        server.seen(),
        Vec::<String>::new(),
        "no request may be sent"
    );
}

#[test]
fn refused_keys_say_where_the_key_came_from() {
    let fake = Fake::start(FakeLago::builder().records(10));
    let url = fake.fake.base_url();
    lago_audit()
        .args([
            "--api-url",
            &url,
            "--api-key",
            "wrong",
            "activity-logs",
            "list",
        ])
        .assert()
        .code(4)
        .stderr(contains("refused the API key read from the --api-key flag"))
        .stderr(contains("hint:"));
    lago_audit()
        .env("LAGO_API_KEY", "wrong")
        .env("LAGO_API_URL", &url)
        .args(["api-logs", "list"])
        .assert()
        .code(4)
        .stderr(contains("LAGO_API_KEY environment variable"));
    // Flags win over the environment.
    lago_audit()
        .env("LAGO_API_KEY", "wrong")
        .env("LAGO_API_URL", "http://127.0.0.1:9")
        .args([
            "--api-url",
            &url,
            "--api-key",
            fake.fake.api_key(),
            "api-logs",
            "list",
        ])
        .assert()
        .success();
    // No key at all.
    lago_audit()
        .args(["activity-logs", "list"])
        .assert()
        .code(3)
        .stderr(contains("no Lago API key"))
        .stderr(contains("--demo"));
}

#[test]
fn each_error_class_has_its_exit_code_and_message() {
    // 403 feature_unavailable: no premium licence.
    let free = Fake::start(FakeLago::builder().records(10).premium(false));
    free.cmd()
        .args(["activity-logs", "list"])
        .assert()
        .code(5)
        .stderr(contains("feature_unavailable"))
        .stderr(contains("premium"));
    // 404: an id that does not exist.
    let fake = Fake::start(FakeLago::builder().records(10));
    fake.cmd()
        .args(["api-logs", "get", "no-such-request"])
        .assert()
        .code(6)
        .stderr(contains("no such API log"));

    // 422 lists the fields, with the flags that set them.
    let server = Recorder::start(|_| {
        Answer::json(
            422,
            r#"{"status":422,"error":"Unprocessable Entity","code":"validation_errors","error_details":{"to_date":["invalid_date"],"per_page":["too_big"]}}"#,
        )
    });
    server
        .cmd()
        .args(["activity-logs", "list"])
        .assert()
        .code(7)
        .stderr(contains("to_date (--to): invalid_date"))
        .stderr(contains("per_page (--per-page): too_big"));

    // 429 after every retry.
    let server = Recorder::start(|_| {
        let mut a = Answer::json(429, r#"{"status":429,"error":"Too Many Requests"}"#);
        a.headers.push(("x-ratelimit-reset".into(), "0".into()));
        a
    });
    server
        .cmd()
        .args(["--retries", "1", "activity-logs", "list"])
        .assert()
        .code(8)
        .stderr(contains("429").and(contains("rate limited")));
    // 429s are waited out without using the retry budget of other faults.
    assert!(server.seen().len() > 2);

    // 5xx after every retry, with the number of attempts.
    let server = Recorder::start(|_| {
        let mut a = Answer::json(503, r#"{"status":503,"error":"Service Unavailable"}"#);
        a.headers.push(("retry-after".into(), "0".into()));
        a
    });
    server
        .cmd()
        .args(["--retries", "2", "security-logs", "list"])
        .assert()
        .code(9)
        .stderr(contains("503").and(contains("after 3 attempts")));
    assert_eq!(server.seen().len(), 3);

    // Network: a port nobody listens on. The message names the host and the attempts.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    lago_audit()
        .args([
            "--api-url",
            &format!("http://127.0.0.1:{port}"),
            "--api-key",
            "k",
            "--retries",
            "1",
        ])
        .args(["activity-logs", "list"])
        .assert()
        .code(10)
        .stderr(contains(format!(
            "cannot reach Lago at 127.0.0.1:{port} after 2 attempts"
        )));

    // A 200 that is not Lago's shape.
    let server = Recorder::start(|_| Answer::json(200, r#"{"activity_logs":"nope"}"#));
    server
        .cmd()
        .args(["activity-logs", "list"])
        .assert()
        .code(11)
        .stderr(contains("cannot read"));

    // Configuration: a bad URL, and clear text to a remote host, fail before sending anything.
    lago_audit()
        .args([
            "--api-url",
            "ftp://lago.example",
            "--api-key",
            "k",
            "activity-logs",
            "list",
        ])
        .assert()
        .code(3)
        .stderr(contains("invalid Lago base URL"));
    lago_audit()
        .args([
            "--api-url",
            "http://lago.internal",
            "--api-key",
            "k",
            "activity-logs",
            "list",
        ])
        .assert()
        .code(3)
        .stderr(contains("--allow-insecure-http"));
}

#[test]
fn help_lists_the_exit_codes() {
    lago_audit()
        .arg("--help")
        .assert()
        .success()
        .stdout(contains("Exit codes:"))
        .stdout(contains("4    401: Lago refused the API key"))
        .stdout(contains("10   network"))
        .stdout(contains("LAGO_API_KEY"));
}

#[test]
fn a_closed_stdout_ends_quietly() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let fake = Fake::start(FakeLago::builder().records(2_000));
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("lago-audit"))
        .args([
            "--api-url",
            &fake.fake.base_url(),
            "--api-key",
            fake.fake.api_key(),
        ])
        .args([
            "activity-logs",
            "list",
            "--per-page",
            "2000",
            "-f",
            "ndjson",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader is gone, as after `| head -1`.
    let out = child.wait_with_output().unwrap();
    assert!(first.starts_with('{'));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr, "");

    // The same for an export and a tail, which write as records arrive.
    for args in [
        &["activity-logs", "export"][..],
        &["api-logs", "tail", "--from", "2025-03-01"][..],
    ] {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("lago-audit"))
            .args([
                "--api-url",
                &fake.fake.base_url(),
                "--api-key",
                fake.fake.api_key(),
            ])
            .args(args)
            .args(["-f", "csv"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut header = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut header)
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(header.contains("logged_at"), "{header}");
        assert_eq!(
            (out.status.code(), stderr.as_ref()),
            (Some(0), ""),
            "{args:?}"
        );
    }
}

#[test]
fn a_failed_export_before_any_record_leaves_no_files() {
    let fake = Fake::start(FakeLago::builder().records(10));
    let dir = tempfile::tempdir().unwrap();
    lago_audit()
        .args(["--api-url", &fake.fake.base_url(), "--api-key", "wrong"])
        .args(["activity-logs", "export", "-o"])
        .arg(dir.path().join("x.ndjson"))
        .assert()
        .code(4);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn the_demo_needs_no_account() {
    let text = stdout(lago_audit().args([
        "--demo",
        "-q",
        "activity-logs",
        "list",
        "--per-page",
        "5",
        "-f",
        "ndjson",
    ]));
    assert_eq!(from_ndjson::<ActivityLogObject>(&text).len(), 5);
    lago_audit()
        .args(["--demo", "--api-key", "x", "activity-logs", "list"])
        .assert()
        .code(2)
        .stderr(contains("--api-key"));
}

#[test]
fn verbose_shows_the_clients_tracing_but_never_the_key() {
    let secret = "sk_secret_do_not_print";
    let fake = Fake::start(
        FakeLago::builder()
            .records(50)
            .api_key(secret)
            .error_rate(0.5),
    );
    let out = fake
        .cmd()
        .args([
            "-v",
            "--retries",
            "10",
            "activity-logs",
            "list",
            "--user-email",
            "jared@piedpiper.test",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("lago.request"), "{stderr}");
    assert!(
        stderr.contains("operation=\"find_all_activity_logs\""),
        "{stderr}"
    );
    assert!(stderr.contains("status=200"), "{stderr}");
    assert!(stderr.contains("retrying"), "a retry is an event: {stderr}");
    assert!(!stderr.contains(secret), "{stderr}");
    assert!(!stderr.contains("jared"), "no filter values: {stderr}");
    // Without -v, nothing of it.
    let out = fake.cmd().args(["activity-logs", "list"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("lago.request"));
}
