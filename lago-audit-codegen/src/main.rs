//! `lago-audit-codegen`: the spec update report and drop-in checks, from the command line.
//!
//! ```text
//! cargo run -p lago-audit-codegen -- diff OLD.yaml NEW.yaml      # what users of the client would feel
//! cargo run -p lago-audit-codegen -- same-client A.yaml B.yaml   # do A and B generate the same API?
//! cargo run -p lago-audit-codegen -- generate SPEC.yaml          # the client code, or the one error
//! cargo run -p lago-audit-codegen -- overlaid SPEC.yaml          # the audit part after the overlay (YAML)
//! ```
//!
//! Every command applies the overlay (`--overlay FILE`, else `LAGO_AUDIT_OPENAPI_OVERLAY`, else
//! `openapi/lago-audit-logs.overlay.yaml`). Exit status: 0 fine, 1 error, 2 something needs
//! attention (a breaking change, an obsolete correction, a different client).

use lago_audit_codegen::{build_from, report, Target, OVERLAY_ENV, OVERLAY_FILE};
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str =
    "usage: lago-audit-codegen <diff OLD NEW | same-client A B | generate SPEC> [--overlay FILE]";

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut overlay = std::env::var_os(OVERLAY_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("openapi").join(OVERLAY_FILE));
    if let Some(i) = args.iter().position(|a| a == "--overlay") {
        let Some(file) = args.get(i + 1).cloned() else {
            eprintln!("{USAGE}");
            return ExitCode::from(1);
        };
        overlay = PathBuf::from(file);
        args.drain(i..i + 2);
    }
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["diff", old, new] => report::report(old.as_ref(), new.as_ref(), &overlay).map(|r| {
            print!("{r}");
            r.needs_attention()
        }),
        ["same-client", a, b] => same_client(a, b, &overlay),
        ["generate", spec] => build_from(Target::Client, spec.as_ref(), &overlay).map(|out| {
            for w in &out.warnings {
                eprintln!("warning: stale overlay action: {w}");
            }
            print!("{}", out.code);
            !out.warnings.is_empty()
        }),
        ["overlaid", spec] => lago_audit_codegen::load(spec.as_ref(), &overlay)
            .and_then(|loaded| lago_audit_codegen::audit_document(&loaded))
            .map(|doc| {
                print!(
                    "{}",
                    serde_norway::to_string(&doc).expect("a JSON value serialises as YAML")
                );
                false
            }),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(1);
        }
    };
    match result {
        Ok(false) => ExitCode::SUCCESS,
        Ok(true) => ExitCode::from(2),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
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
