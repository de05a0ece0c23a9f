//! `lago-audit-codegen`: the spec update report and drop-in checks, from the command line.
//! Run it with `--help` for the commands and exit statuses.

use lago_audit_codegen::report::{self, EXIT_ERROR};
use lago_audit_codegen::{build_from, Target, OVERLAY_ENV, OVERLAY_FILE};
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: lago-audit-codegen <diff OLD NEW [--format text|json] | same-client A B | generate SPEC | overlaid SPEC> [--overlay FILE]
       lago-audit-codegen --help";

const HELP: &str =
    "lago-audit-codegen: the spec update report and drop-in checks for lago-audit-client

Commands:
  diff OLD NEW [--format text|json]
      The update report for Lago's spec OLD -> NEW. It always completes on two specs that parse:
        1. the changes between the two specs as Lago publishes them, limited to the audit-log
           operations, each breaking or not for users of the generated client (open enums exempt);
        2. the status of every overlay action against NEW: applies, obsolete (upstream now says
           what the correction says; the fact is named) or broken (its target is gone or moved;
           the upstream change and, where evident, the new target are named);
        3. a unified diff of the generated client when NEW plus the overlay builds, else why not.
      Exit status:
        0  no change
        1  usage error, or a file that cannot be read or parsed
        2  changes, none of them breaking (every overlay action applies)
        3  breaking changes (every overlay action applies)
        4  the overlay needs work: an action is obsolete or broken, or NEW plus the overlay does
           not build (whatever the changes)
  same-client A B   Do A and B generate the same client API? (0 same, 2 different, 1 error)
  generate SPEC     Print the client generated from SPEC (0 ok, 2 stale actions, 1 error)
  overlaid SPEC     Print the audit part of SPEC after the overlay, as YAML (0 ok, 1 error)

Options:
  --overlay FILE    the overlay to apply (else $LAGO_AUDIT_OPENAPI_OVERLAY, else
                    openapi/lago-audit-logs.overlay.yaml)
  --format FORMAT   for diff: text (the default) or json (one JSON document, for tools)
  -h, --help        this help
";

fn take_option(args: &mut Vec<String>, name: &str) -> Result<Option<String>, ()> {
    let Some(i) = args.iter().position(|a| a == name) else {
        return Ok(None);
    };
    let value = args.get(i + 1).cloned().ok_or(())?;
    args.drain(i..i + 2);
    Ok(Some(value))
}

fn usage() -> ExitCode {
    eprintln!("{USAGE}");
    ExitCode::from(EXIT_ERROR)
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{HELP}");
        return ExitCode::SUCCESS;
    }
    let Ok(overlay) = take_option(&mut args, "--overlay") else {
        return usage();
    };
    let overlay = overlay.map(PathBuf::from).unwrap_or_else(|| {
        std::env::var_os(OVERLAY_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("openapi").join(OVERLAY_FILE))
    });
    let json = match take_option(&mut args, "--format") {
        Ok(None) => false,
        Ok(Some(f)) if f == "text" => false,
        Ok(Some(f)) if f == "json" => true,
        _ => return usage(),
    };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["diff", old, new] => report::report(old.as_ref(), new.as_ref(), &overlay).map(|r| {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&r.to_json()).expect("JSON values serialise")
                );
            } else {
                print!("{r}");
            }
            r.verdict().exit_code()
        }),
        _ if json => return usage(),
        ["same-client", a, b] => same_client(a, b, &overlay).map(|differ| 2 * u8::from(differ)),
        ["generate", spec] => build_from(Target::Client, spec.as_ref(), &overlay).map(|out| {
            for w in &out.warnings {
                eprintln!("warning: stale overlay action: {w}");
            }
            print!("{}", out.code);
            2 * u8::from(!out.warnings.is_empty())
        }),
        ["overlaid", spec] => lago_audit_codegen::load(spec.as_ref(), &overlay)
            .and_then(|loaded| lago_audit_codegen::audit_document(&loaded))
            .map(|doc| {
                print!(
                    "{}",
                    serde_norway::to_string(&doc).expect("a JSON value serialises as YAML")
                );
                0
            }),
        _ => return usage(),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Whether `a` and `b` generate the same client API (doc comments and `info.version` aside);
/// prints the difference as a unified diff.
fn same_client(
    a: &str,
    b: &str,
    overlay: &std::path::Path,
) -> Result<bool, lago_audit_codegen::SpecError> {
    let surface = |spec: &str| -> Result<String, lago_audit_codegen::SpecError> {
        let code = build_from(Target::Client, spec.as_ref(), overlay)?.code;
        report::api_surface(&code).map_err(|e| {
            lago_audit_codegen::SpecError::new(
                spec,
                "",
                format!("generated code does not parse: {e}"),
            )
        })
    };
    let diff = report::unified_diff(&surface(a)?, &surface(b)?, a, b);
    if diff.is_empty() {
        println!("same client API from {a} and {b}");
        Ok(false)
    } else {
        println!("the client APIs differ ({a} → {b}):\n{diff}");
        Ok(true)
    }
}
