//! The code generation pipeline behind `lago-audit-client` and its conformance tests.
//!
//! Both build scripts call this crate, so the client and the test mocks are always generated from
//! the same document with the same settings:
//!
//! 1. [`load`] reads the YAML (or JSON) spec and the OpenAPI Overlay 1.0 file of our corrections;
//! 2. [`overlay::apply`] applies the corrections one at a time, first checking that what each relies
//!    on in Lago's spec is there ([`overlay::anchor`]): an upstream change it relies on fails the
//!    build with one message naming each change and action; an action that merely matches nothing
//!    is reported as stale;
//! 3. [`filter::keep_audit_operations`] keeps the audit-log operations and only the components they
//!    reach, so Lago's whole published spec can be dropped in;
//! 4. [`downgrade::to_openapi_30`] rewrites OpenAPI 3.1 constructs into the 3.0 that progenitor reads;
//! 5. [`generate`] adapts the document to progenitor's limits, runs it (turning its panics into
//!    errors), applies [`postprocess`] to the client (the crate's own error type from `send()`,
//!    iterator-taking array setters, strict path encoding) and pretty-prints the result.
//!
//! Every failure is a [`SpecError`] that names the file, the JSON pointer and the problem.
//!
//! Build scripts find the spec in their own package ([`package_spec_dir`], read at run time).
//! [`report`] compares two specs (each reduced to its [`model`]) as users of the client would feel
//! the change and gives the status of each overlay action against the new one ([`status`]), even when upstream broke what the
//! overlay relies on; the crate's binary prints it (`cargo run -p lago-audit-codegen -- diff OLD
//! NEW`, `--help` for the exit statuses).

#![warn(missing_docs)]

pub mod downgrade;
pub mod filter;
pub mod generate;
pub mod model;
pub mod open_enums;
pub mod overlay;
pub mod postprocess;
pub mod report;
pub mod status;

use serde_json::Value;
use std::fmt;
use std::path::{Path, PathBuf};

/// The tags whose operations make up the audit-log client.
pub const AUDIT_TAGS: &[&str] = &["activity_logs", "api_logs", "security_logs"];

/// Environment variable a build script reads to use another spec file.
pub const SPEC_ENV: &str = "LAGO_AUDIT_OPENAPI_SPEC";
/// Environment variable a build script reads to use another overlay file.
pub const OVERLAY_ENV: &str = "LAGO_AUDIT_OPENAPI_OVERLAY";

/// A problem with the spec, located precisely enough to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// The file the problem is in (or was derived from).
    pub file: PathBuf,
    /// RFC 6901 JSON pointer into that document (after the overlay, where one was applied).
    pub pointer: String,
    /// What is wrong.
    pub problem: String,
}

impl SpecError {
    /// Creates an error at `pointer` in `file`.
    pub fn new(
        file: impl Into<PathBuf>,
        pointer: impl Into<String>,
        problem: impl Into<String>,
    ) -> Self {
        Self {
            file: file.into(),
            pointer: pointer.into(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pointer = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        write!(
            f,
            "{}: at {}: {}",
            self.file.display(),
            pointer,
            self.problem
        )
    }
}

impl std::error::Error for SpecError {}

/// A spec document after the overlay, ready for [`prepare`].
#[derive(Debug, Clone)]
pub struct LoadedSpec {
    /// Where the spec came from (used in error messages).
    pub file: PathBuf,
    /// Where the overlay came from (named when the overlay, not the spec, is at fault).
    pub overlay_file: PathBuf,
    /// Every `$ref` the spec held before the overlay: a dangling reference outside this set was
    /// made by the overlay.
    pub upstream_refs: std::collections::BTreeSet<String>,
    /// The document (JSON data model) with our overlay applied.
    pub document: Value,
    /// Overlay actions whose target matched nothing: corrections that no longer apply.
    pub stale_actions: Vec<overlay::StaleAction>,
}

/// The spec and overlay file names inside an `openapi/` folder.
pub const SPEC_FILE: &str = "lago-audit-logs.yaml";
/// The overlay file name inside an `openapi/` folder.
pub const OVERLAY_FILE: &str = "lago-audit-logs.overlay.yaml";

/// The spec and overlay in the folder `dir` (a package's `openapi/`).
pub fn paths_in(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join(SPEC_FILE), dir.join(OVERLAY_FILE))
}

/// The `openapi/` folder of the package whose build script is running, found at run time from
/// `CARGO_MANIFEST_DIR` (never baked in when this crate compiles: two copies of the workspace
/// sharing a target directory must each build from their own spec).
pub fn package_spec_dir() -> Result<PathBuf, SpecError> {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(|dir| PathBuf::from(dir).join("openapi"))
        .ok_or_else(|| {
            SpecError::new(
                "openapi",
                "",
                "CARGO_MANIFEST_DIR is not set: call this from a build script or a cargo test",
            )
        })
}

/// Reads a YAML or JSON file into the JSON data model.
pub fn read_document(path: &Path) -> Result<Value, SpecError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| SpecError::new(path, "", format!("cannot read the file: {e}")))?;
    // YAML is a superset of JSON, so one parser serves both.
    serde_norway::from_str::<Value>(&text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!(" (line {}, column {})", l.line(), l.column()))
            .unwrap_or_default();
        SpecError::new(path, "", format!("not valid YAML{at}: {e}"))
    })
}

/// Reads the spec and the overlay, and applies the overlay.
///
/// An upstream change the overlay relies on (an operation, parameter or schema it patches is gone
/// or has moved) fails with one [`SpecError`] that names each change and the actions concerned;
/// the actions that merely matched nothing are listed in it too.
pub fn load(spec: &Path, overlay_file: &Path) -> Result<LoadedSpec, SpecError> {
    let mut document = read_document(spec)?;
    let overlay_doc = read_document(overlay_file)?;
    let mut upstream_refs = std::collections::BTreeSet::new();
    filter::collect_refs(&document, &mut |r| {
        upstream_refs.insert(r.to_owned());
    });
    let outcome = overlay::apply(&mut document, overlay_doc, overlay_file)?;
    if !outcome.broken.is_empty() {
        return Err(overlay::broken_error(spec, overlay_file, &outcome));
    }
    Ok(LoadedSpec {
        file: spec.to_path_buf(),
        overlay_file: overlay_file.to_path_buf(),
        upstream_refs,
        document,
        stale_actions: outcome.stale,
    })
}

/// Applies the document-level steps shared by the client and the tests: keep the audit-log
/// operations (and what they reach), then rewrite OpenAPI 3.1 into 3.0.
///
/// The result is still a faithful description of the API (examples included); what is changed
/// only to suit progenitor happens later, in [`generate`].
pub fn prepare(loaded: &LoadedSpec) -> Result<Value, SpecError> {
    let mut doc = audit_document(loaded)?;
    downgrade::to_openapi_30(&mut doc, &loaded.file)?;
    Ok(doc)
}

/// The audit-log part of the spec after the overlay, still in OpenAPI 3.1: what the conformance
/// tests build fixtures from and validate examples against (JSON Schema 2020-12).
pub fn audit_document(loaded: &LoadedSpec) -> Result<Value, SpecError> {
    let mut doc = loaded.document.clone();
    filter::keep_audit_operations(&mut doc, AUDIT_TAGS, &loaded.file).map_err(|e| {
        let reference = format!("#{}", e.pointer);
        if e.problem == filter::DANGLING_REF && !loaded.upstream_refs.contains(&reference) {
            SpecError::new(
                &loaded.overlay_file,
                &e.pointer,
                format!(
                    "the overlay refers to {reference}, which neither the overlay nor {} defines",
                    loaded.file.display()
                ),
            )
        } else {
            e
        }
    })?;
    Ok(doc)
}

/// The spec and overlay paths in force: [`SPEC_ENV`] and [`OVERLAY_ENV`] when set, else the files
/// in `default_dir` (see [`paths_in`]).
pub fn resolve_paths(default_dir: &Path) -> (PathBuf, PathBuf) {
    let (default_spec, default_overlay) = paths_in(default_dir);
    (
        std::env::var_os(SPEC_ENV)
            .map(PathBuf::from)
            .unwrap_or(default_spec),
        std::env::var_os(OVERLAY_ENV)
            .map(PathBuf::from)
            .unwrap_or(default_overlay),
    )
}

/// Escapes one JSON pointer segment (RFC 6901).
pub fn escape_pointer(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Joins a pointer and a segment.
pub fn join_pointer(base: &str, segment: &str) -> String {
    format!("{base}/{}", escape_pointer(segment))
}

/// The output of a build-script run: what to write, and what the build script should tell cargo.
#[derive(Debug, Clone)]
pub struct BuildOutput {
    /// Pretty-printed Rust source.
    pub code: String,
    /// Warnings for `cargo:warning=` (stale overlay actions).
    pub warnings: Vec<String>,
}

/// What a build script generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// The client and its models.
    Client,
    /// progenitor's typed httpmock helpers, referring to the client crate by this name.
    Httpmock(&'a str),
}

/// Everything a build script does, in one call: resolve the spec and overlay paths (honouring
/// [`SPEC_ENV`] and [`OVERLAY_ENV`], else the files in `default_dir`), load, prepare and generate.
pub fn build(target: Target<'_>, default_dir: &Path) -> Result<BuildOutput, SpecError> {
    let (spec, overlay_file) = resolve_paths(default_dir);
    build_from(target, &spec, &overlay_file)
}

/// Generates `target` from the given spec and overlay files.
pub fn build_from(
    target: Target<'_>,
    spec: &Path,
    overlay_file: &Path,
) -> Result<BuildOutput, SpecError> {
    let loaded = load(spec, overlay_file)?;
    let warnings = stale_warnings(&loaded);
    let code = generate_from(target, &loaded).map_err(|mut e| {
        // The stale actions often explain the failure: keep them in the one message.
        for w in &warnings {
            e.problem
                .push_str(&format!("\n  also: stale overlay action: {w}"));
        }
        e
    })?;
    Ok(BuildOutput { code, warnings })
}

/// The warnings a build prints for the stale actions of a loaded spec.
pub fn stale_warnings(loaded: &LoadedSpec) -> Vec<String> {
    loaded
        .stale_actions
        .iter()
        .map(|s| format!("{}: {s}", loaded.overlay_file.display()))
        .collect()
}

/// Prepares a loaded spec and generates `target` from it.
pub fn generate_from(target: Target<'_>, loaded: &LoadedSpec) -> Result<String, SpecError> {
    let prepared = prepare(loaded)?;
    match target {
        Target::Client => generate::client(&prepared, &loaded.file),
        Target::Httpmock(crate_name) => generate::httpmock(&prepared, &loaded.file, crate_name),
    }
}

/// Runs [`build`] from a build script, with the spec and overlay of the running package's own
/// `openapi/` folder ([`package_spec_dir`]): prints the `cargo:` directives, writes `file_name`
/// into `OUT_DIR`, and on failure exits with the error (no panic backtrace).
pub fn run_build_script(target: Target<'_>, file_name: &str) {
    println!("cargo:rerun-if-env-changed={SPEC_ENV}");
    println!("cargo:rerun-if-env-changed={OVERLAY_ENV}");
    let dir = match package_spec_dir() {
        Ok(dir) => dir,
        Err(e) => fail(&e),
    };
    // Registered before the work, so a failing spec is read again once it is fixed.
    let (spec, overlay_file) = resolve_paths(&dir);
    for p in [&spec, &overlay_file] {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    match build_from(target, &spec, &overlay_file) {
        Ok(out) => {
            for w in &out.warnings {
                println!("cargo:warning=stale overlay action: {w}");
            }
            let out_dir =
                std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR for build scripts");
            let path = Path::new(&out_dir).join(file_name);
            if let Err(e) = std::fs::write(&path, &out.code) {
                eprintln!("error: cannot write {}: {e}", path.display());
                std::process::exit(1);
            }
        }
        Err(e) => fail(&e),
    }
}

fn fail(e: &SpecError) -> ! {
    eprintln!("error: the Lago audit-log spec cannot be turned into Rust code");
    eprintln!("  {e}");
    std::process::exit(1);
}

/// The spec and overlay of this repository, for the crate's own tests.
#[cfg(test)]
pub(crate) fn test_paths() -> (PathBuf, PathBuf) {
    paths_in(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn write_variant(name: &str, edit: impl FnOnce(&mut Value)) -> (PathBuf, PathBuf) {
        let (spec, overlay) = test_paths();
        let mut doc = read_document(&spec).unwrap();
        edit(&mut doc);
        let dir = std::env::temp_dir().join(format!("lago-lib-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("spec.json");
        std::fs::write(&path, serde_json::to_string(&doc).unwrap()).unwrap();
        (path, overlay)
    }

    fn schemas(doc: &mut Value) -> &mut serde_json::Map<String, Value> {
        doc["components"]["schemas"].as_object_mut().unwrap()
    }

    /// The stale actions are part of the one error when the build fails later on.
    #[test]
    fn a_failing_build_still_reports_the_stale_actions() {
        let (spec, overlay) = write_variant("stale", |doc| {
            // Upstream drops request_id's uuid format (our correction goes stale)…
            schemas(doc)["ApiLogObject"]["properties"]
                .as_object_mut()
                .unwrap()
                .remove("request_id");
            // …and breaks a reference of its own.
            schemas(doc).remove("PaginationMeta");
        });
        let err = build_from(Target::Client, &spec, &overlay).unwrap_err();
        let text = err.to_string();
        assert_eq!(err.file, spec, "{text}");
        assert!(
            text.contains("/components/schemas/PaginationMeta"),
            "{text}"
        );
        assert!(
            text.contains("also: stale overlay action:")
                && text.contains("actions[14] (remove) matched nothing")
                && text.contains("ApiLogObject.properties.request_id"),
            "{text}"
        );
        std::fs::remove_dir_all(spec.parent().unwrap()).unwrap();
    }

    /// A reference only the overlay makes, left dangling, names the overlay file, not the spec.
    #[test]
    fn a_dangling_reference_made_by_the_overlay_names_the_overlay() {
        // Upstream drops its 403 model (and the response that used it); the overlay still refers to
        // it.
        let (spec, overlay) = write_variant("dangling", |doc| {
            schemas(doc).remove("ApiErrorForbidden");
            doc["components"]["responses"]
                .as_object_mut()
                .unwrap()
                .remove("Forbidden");
        });
        let err = build_from(Target::Client, &spec, &overlay).unwrap_err();
        assert_eq!(err.file, overlay, "{err}");
        assert_eq!(err.pointer, "/components/schemas/ApiErrorForbidden");
        assert!(err.problem.contains("the overlay refers to"), "{err}");
        std::fs::remove_dir_all(spec.parent().unwrap()).unwrap();
    }

    #[test]
    fn the_spec_is_found_in_the_given_package_folder() {
        let dir = Path::new("/some/package/openapi");
        assert_eq!(
            paths_in(dir),
            (
                dir.join("lago-audit-logs.yaml"),
                dir.join("lago-audit-logs.overlay.yaml")
            )
        );
    }
}
