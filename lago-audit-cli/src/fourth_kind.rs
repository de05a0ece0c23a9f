//! A fourth kind of log, defined here in test code only with one impl of [`LogKind`]: invoice
//! events, the activity logs of invoices with an `--invoice-id` filter and columns of their own.
//! `list` and `export` run on it, generically, against a fake Lago.

use crate::cli::{Global, KindCommand};
use crate::kinds::LogKind;
use crate::parse::{parse_uuid, Window};
use crate::rows::{col, short_time, time, Column};
use futures::TryStreamExt;
use lago_audit_client::builder::FindAllActivityLogs;
use lago_audit_client::types::ActivityLogObject;
use lago_audit_client::{Client, Error, Export, ExportEvent, ExportOptions};

/// Invoice events.
#[derive(Debug)]
struct Invoices;

/// Filters of invoice events.
#[derive(clap::Args, Debug, Clone, Default, serde::Serialize)]
struct InvoiceFilters {
    /// Only this invoice (repeat for several).
    #[arg(id = "resource_ids", long = "invoice-id", value_name = "UUID", value_parser = parse_uuid)]
    invoice_ids: Vec<uuid::Uuid>,
    /// Date bounds.
    #[command(flatten)]
    window: Window,
}

impl LogKind for Invoices {
    const NAME: &'static str = "invoice-events";
    const NOUN: &'static str = "invoice event";
    const ID: &'static str = "ACTIVITY_ID";
    const CSV_HEADER: &'static [&'static str] =
        &["activity_id", "logged_at", "activity_type", "invoice_id"];
    const COLUMNS: &'static [Column] = &[
        col("LOGGED AT (UTC)", 19, 19, 0),
        col("EVENT", 16, 34, 0),
        col("INVOICE", 36, 36, 1),
    ];
    type Record = ActivityLogObject;
    type Filters = InvoiceFilters;
    type List<'a> = FindAllActivityLogs<'a>;

    fn list<'a>(client: &'a Client, f: &InvoiceFilters) -> FindAllActivityLogs<'a> {
        let mut b = client
            .find_all_activity_logs()
            .resource_types(vec!["Invoice".to_owned()]);
        if !f.invoice_ids.is_empty() {
            b = b.resource_ids(f.invoice_ids.clone());
        }
        if let Some(d) = f.window.from {
            b = b.from_date(d);
        }
        if let Some(d) = f.window.to {
            b = b.to_date(d);
        }
        b
    }
    fn per_page<'a>(list: Self::List<'a>, per_page: u32) -> Self::List<'a> {
        list.per_page(per_page)
    }
    async fn get(client: &Client, id: String) -> Result<ActivityLogObject, Error> {
        let r = client.find_activity_log().activity_id(id).send().await?;
        Ok(r.into_inner().activity_log)
    }
    fn window(f: &InvoiceFilters) -> &Window {
        &f.window
    }
    fn window_mut(f: &mut InvoiceFilters) -> &mut Window {
        &mut f.window
    }
    fn csv_row(r: &ActivityLogObject) -> Vec<String> {
        vec![
            r.activity_id.to_string(),
            time(&r.logged_at),
            r.activity_type.clone(),
            r.resource_id.to_string(),
        ]
    }
    fn table_row(r: &ActivityLogObject) -> Vec<String> {
        vec![
            short_time(&r.logged_at),
            r.activity_type.clone(),
            r.resource_id.to_string(),
        ]
    }
}

/// The command line of the fourth kind, as `cli::Resource` would hold it.
#[derive(clap::Parser, Debug)]
struct FourthCli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: KindCommand<Invoices>,
}

async fn run(args: &[&str]) -> Result<(), crate::error::CliError> {
    let cli = <FourthCli as clap::Parser>::try_parse_from(
        std::iter::once("invoice-events").chain(args.iter().copied()),
    )
    .expect("the fourth kind's flags parse");
    crate::run::run_kind::<Invoices>(cli.global, cli.command).await
}

fn csv(path: &std::path::Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fourth_kind_is_one_impl_and_every_command_works_on_it() {
    let fake = lago_audit_fake::FakeLago::builder()
        .records(600)
        .start()
        .await
        .unwrap();
    let (url, key) = (fake.base_url(), fake.api_key().to_owned());
    let dir = tempfile::tempdir().unwrap();
    let client = lago_audit_client::ClientBuilder::new(&key)
        .base_url(&url)
        .build()
        .unwrap();
    // What the library itself reads for the same filter.
    let expected: Vec<ActivityLogObject> = Invoices::list(&client, &InvoiceFilters::default())
        .export(ExportOptions::default().settle(std::time::Duration::ZERO))
        .try_filter_map(|e| async move {
            Ok(match e {
                ExportEvent::Record(r) => Some(r),
                ExportEvent::Checkpoint(_) => None,
            })
        })
        .try_collect()
        .await
        .unwrap();
    assert!(expected.len() > 10, "the fake holds invoice events");
    let connect = ["--api-url", url.as_str(), "--api-key", key.as_str(), "-q"];

    // `list`: one page, in the kind's own CSV columns.
    let page = dir.path().join("page.csv");
    let page_arg = page.to_str().unwrap();
    let mut args = connect.to_vec();
    args.extend(["-f", "csv", "-o", page_arg, "list", "--per-page", "5"]);
    run(&args).await.unwrap();
    let rows = csv(&page);
    assert_eq!(rows[0], Invoices::CSV_HEADER);
    assert_eq!(rows.len(), 6, "a header and five rows");

    // `export -o FILE`: every invoice event exactly once, the file completed.
    let all = dir.path().join("all.csv");
    let all_arg = all.to_str().unwrap();
    let mut args = connect.to_vec();
    args.extend(["-f", "csv", "-o", all_arg, "export", "--settle", "0s"]);
    run(&args).await.unwrap();
    let rows = csv(&all);
    let mut got: Vec<&str> = rows[1..].iter().map(|r| r[0].as_str()).collect();
    let mut want: Vec<String> = expected.iter().map(|r| r.activity_id.to_string()).collect();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want);
    let receipt = std::fs::read_to_string(crate::resume::checkpoint_path(&all)).unwrap();
    assert!(
        receipt.contains("\"finished\": true"),
        "a receipt: {receipt}"
    );

    // Its filter flag reaches the wire, and `--resume` on the finished file exits 0.
    let one = &expected[0];
    let mine = dir.path().join("one.ndjson");
    let mut args = connect.to_vec();
    let id = one.resource_id.to_string();
    args.extend(["export", "-o", mine.to_str().unwrap(), "--settle", "0s"]);
    args.extend(["--invoice-id", &id]);
    run(&args).await.unwrap();
    let text = std::fs::read_to_string(&mine).unwrap();
    assert!(text.lines().count() >= 1);
    assert!(text.lines().all(|l| l.contains(&id)), "{text}");
    args.push("--resume");
    run(&args).await.unwrap();
}
