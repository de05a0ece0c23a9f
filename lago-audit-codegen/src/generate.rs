//! Running progenitor: the generation settings shared by the client and the mocks, the changes
//! made only to suit progenitor, panic capture, and pretty-printing.

use crate::{join_pointer, SpecError};
use progenitor::{GenerationSettings, Generator, HooksMode, InterfaceStyle, TagStyle, TypeImpl};
use quote::quote;
use serde_json::{json, Value};
use std::path::Path;
use syn::visit_mut::VisitMut;

/// Hand-written types that replace named schemas: enums that keep values the server adds later,
/// and filter values whose generated form would be an unnamed untagged enum.
/// (component name, Rust path). The paths go through `::lago_audit_client` so they resolve both in
/// the client crate (which declares `extern crate self as lago_audit_client`) and in the mocks.
pub const REPLACEMENTS: &[(&str, &str)] = &[
    (
        "ActivitySource",
        "::lago_audit_client::open_enum::ActivitySource",
    ),
    ("HttpMethod", "::lago_audit_client::open_enum::HttpMethod"),
    (
        "SecurityLogType",
        "::lago_audit_client::open_enum::SecurityLogType",
    ),
    ("DateFilter", "::lago_audit_client::filters::DateFilter"),
    (
        "HttpStatusFilter",
        "::lago_audit_client::filters::HttpStatusFilter",
    ),
];

/// The progenitor settings. Both build scripts use exactly these.
pub fn settings() -> GenerationSettings {
    let mut s = GenerationSettings::new();
    s.with_interface(InterfaceStyle::Builder)
        .with_tag(TagStyle::Merged)
        .with_inner_type(quote!(::lago_audit_client::config::Inner))
        // Our hooks (retries, path checks) are hand-written; forgetting them must not compile.
        .with_hooks(HooksMode::Expected)
        .with_derive("schemars::JsonSchema")
        .with_derive("PartialEq");
    for (name, path) in REPLACEMENTS {
        s.with_replacement(
            name,
            path,
            [TypeImpl::Display, TypeImpl::FromStr].into_iter(),
        );
    }
    s
}

/// Changes made only so progenitor can generate from the document, which otherwise stays a faithful
/// description of the API:
///
/// - every error response (4xx, 5xx, `default`) is handed to progenitor as raw bytes, so the client
///   keeps the status and the body even when a proxy answers with HTML, and operations whose error
///   bodies differ (401 vs 404) do not trip progenitor's single-error-type assertion; the
///   hand-written error layer decodes Lago's JSON error bodies;
/// - each operation must have exactly one success response, `200` with a JSON body (the error layer
///   relies on it to name the status of an undecodable success body).
pub fn adapt_for_progenitor(doc: &mut Value, file: &Path) -> Result<(), SpecError> {
    let paths = doc
        .get_mut("paths")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| SpecError::new(file, "/paths", "missing"))?;
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            if !crate::filter::METHODS.contains(&method.as_str()) {
                continue;
            }
            let op_ptr = join_pointer(&join_pointer("/paths", path), method);
            let responses = op
                .get_mut("responses")
                .and_then(Value::as_object_mut)
                .ok_or_else(|| {
                    SpecError::new(file, join_pointer(&op_ptr, "responses"), "missing")
                })?;
            let success: Vec<&String> = responses.keys().filter(|s| s.starts_with('2')).collect();
            if success.len() != 1 || success[0] != "200" {
                return Err(SpecError::new(
                    file,
                    join_pointer(&op_ptr, "responses"),
                    format!("expected exactly one success response, 200; found {success:?}"),
                ));
            }
            for (status, response) in responses.iter_mut() {
                if status.starts_with('4') || status.starts_with('5') || status == "default" {
                    *response = json!({
                        "description": format!("error {status}"),
                        "content": {"application/octet-stream": {
                            "schema": {"type": "string", "format": "binary"}
                        }}
                    });
                }
            }
        }
    }
    if let Some(Value::Object(components)) = doc.get_mut("components") {
        // Only error responses were shared; none is referenced any more.
        components.remove("responses");
    }
    Ok(())
}

/// Parses the prepared document as OpenAPI 3.0, naming the JSON pointer of any problem.
fn parse(doc: Value, file: &Path) -> Result<openapiv3::OpenAPI, SpecError> {
    serde_path_to_error::deserialize(doc).map_err(|e| {
        SpecError::new(
            file,
            crate::overlay::pointer_from_serde_path(&e.path().to_string()),
            format!("not valid OpenAPI 3.0 after rewriting: {}", e.inner()),
        )
    })
}

thread_local! {
    /// Set while this thread runs the generator: where its panic happened, once it has.
    static CAPTURING: std::cell::RefCell<Option<Option<String>>> =
        const { std::cell::RefCell::new(None) };
}

/// Installs, once per process, a panic hook that stays silent for (and records the location of)
/// panics on a thread inside [`catch_generator_panic`], and hands every other panic to the hook
/// that was installed before. The process-wide hook is never swapped back and forth, so threads
/// running at the same time (parallel tests) keep their panic messages.
fn install_capturing_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let captured = CAPTURING.with(|c| match c.borrow_mut().as_mut() {
                Some(slot) => {
                    *slot = info
                        .location()
                        .map(|at| format!("{}:{}", at.file(), at.line()));
                    true
                }
                None => false,
            });
            if !captured {
                previous(info);
            }
        }));
    });
}

/// Runs `f`, turning a panic inside progenitor or typify into an error (and keeping the default
/// panic message and backtrace off the build output).
fn catch_generator_panic<T>(
    file: &Path,
    f: impl FnOnce() -> Result<T, progenitor::Error>,
) -> Result<T, SpecError> {
    install_capturing_hook();
    let outer = CAPTURING.with(|c| c.borrow_mut().replace(None));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    let location = CAPTURING
        .with(|c| std::mem::replace(&mut *c.borrow_mut(), outer))
        .flatten();
    match result {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(SpecError::new(
            file,
            "",
            format!("progenitor refused the spec: {e}"),
        )),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "unknown panic".to_owned());
            Err(SpecError::new(
                file,
                "",
                format!(
                    "progenitor panicked (an unsupported construct in the spec): {msg}{}",
                    location.map(|l| format!(" (at {l})")).unwrap_or_default()
                ),
            ))
        }
    }
}

fn pretty(tokens: proc_macro2::TokenStream, file: &Path) -> Result<syn::File, SpecError> {
    syn::parse2::<syn::File>(tokens).map_err(|e| {
        SpecError::new(
            file,
            "",
            format!("progenitor produced code that does not parse: {e}"),
        )
    })
}

const HEADER: &str =
    "// @generated by lago-audit-codegen from Lago's audit-log OpenAPI spec. Do not edit.\n\n";

/// Generates the client and its models.
pub fn client(prepared: &Value, file: &Path) -> Result<String, SpecError> {
    let mut doc = prepared.clone();
    adapt_for_progenitor(&mut doc, file)?;
    let spec = parse(doc, file)?;
    let mut tokens =
        catch_generator_panic(file, || Generator::new(&settings()).generate_tokens(&spec))?;
    tokens.extend(operation_paths(prepared));
    let mut ast = pretty(tokens, file)?;
    crate::postprocess::client(&mut ast);
    Ok(format!("{HEADER}{}", prettyplease::unparse(&ast)))
}

/// A table of each operation's path template, keyed by the id progenitor passes to the hooks
/// (`findActivityLog` becomes `find_activity_log`). The client's request hook uses it to check
/// that a path parameter stayed inside its own segment.
fn operation_paths(doc: &Value) -> proc_macro2::TokenStream {
    let mut rows = Vec::new();
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        for (path, item) in paths {
            for (method, op) in item.as_object().into_iter().flatten() {
                if let (true, Some(id)) = (
                    crate::filter::METHODS.contains(&method.as_str()),
                    op.get("operationId").and_then(Value::as_str),
                ) {
                    let id = snake_case(id);
                    rows.push(quote!((#id, #path)));
                }
            }
        }
    }
    quote! {
        /// Each operation's path template (relative to the base URL), by the operation id the
        /// hooks receive.
        pub const OPERATION_PATHS: &[(&str, &str)] = &[#(#rows),*];
    }
}

/// `findAllApiLogs` → `find_all_api_logs`, as progenitor names operations.
pub fn snake_case(id: &str) -> String {
    let mut out = String::new();
    for (i, c) in id.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c == '-' || c == ' ' {
            out.push('_');
        } else {
            out.push(c);
        }
    }
    out
}

/// Generates progenitor's typed httpmock helpers for the client crate named `crate_name`, with the
/// fix for array query parameters (upstream progenitor#1260).
pub fn httpmock(prepared: &Value, file: &Path, crate_name: &str) -> Result<String, SpecError> {
    let mut doc = prepared.clone();
    adapt_for_progenitor(&mut doc, file)?;
    let spec = parse(doc, file)?;
    let tokens = catch_generator_panic(file, || {
        Generator::new(&settings()).httpmock(&spec, crate_name)
    })?;
    let mut ast = pretty(tokens, file)?;
    ArrayQueryFix.visit_file_mut(&mut ast);
    MockPathFix {
        prefix: server_path(prepared),
    }
    .visit_file_mut(&mut ast);
    Ok(format!("{HEADER}{}", prettyplease::unparse(&ast)))
}

/// The path of the spec's first server URL (`/api/v1` for Lago), without a trailing slash.
pub fn server_path(doc: &Value) -> String {
    let url = doc
        .pointer("/servers/0/url")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
    path.trim_end_matches('/').to_owned()
}

/// progenitor anchors mock paths at the spec's paths (`^/activity_logs$`), but a client's base
/// URL ends in the server path (`/api/v1`), as Lago's does; and it puts path values into the regex
/// unescaped. This prefixes the server path and escapes the values.
struct MockPathFix {
    prefix: String,
}

impl VisitMut for MockPathFix {
    fn visit_lit_str_mut(&mut self, lit: &mut syn::LitStr) {
        let value = lit.value();
        if let Some(rest) = value.strip_prefix("^/") {
            *lit = syn::LitStr::new(&format!("^{}/{rest}", self.prefix), lit.span());
        }
    }

    fn visit_macro_mut(&mut self, mac: &mut syn::Macro) {
        if !mac.path.is_ident("format") {
            return;
        }
        let parser = syn::punctuated::Punctuated::<syn::Expr, syn::Token![,]>::parse_terminated;
        let Ok(mut args) = mac.parse_body_with(parser) else {
            return;
        };
        let is_path_pattern = matches!(
            args.first(),
            Some(syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. })) if s.value().starts_with("^/")
        );
        if !is_path_pattern {
            return;
        }
        for (i, arg) in args.iter_mut().enumerate() {
            if i == 0 {
                self.visit_expr_mut(arg);
            } else {
                *arg = syn::parse_quote!(regex::escape(&#arg));
            }
        }
        mac.tokens = quote!(#args);
    }
}

/// progenitor's mock helpers call `value.to_string()` on a `Vec` for array query parameters, which
/// does not compile. This rewrites such a method to expect one `name=value` pair per element,
/// each element written as the client writes it (its serde string form).
struct ArrayQueryFix;

impl VisitMut for ArrayQueryFix {
    fn visit_impl_item_fn_mut(&mut self, f: &mut syn::ImplItemFn) {
        let takes_vec = f
            .sig
            .inputs
            .iter()
            .any(|i| quote!(#i).to_string().contains("Vec"))
            || f.sig
                .generics
                .where_clause
                .as_ref()
                .is_some_and(|w| quote!(#w).to_string().contains("Vec"));
        if !takes_vec {
            return;
        }
        let mut finder = QueryName(None);
        finder.visit_block_mut(&mut f.block);
        let Some(name) = finder.0 else { return };
        let required = f.sig.generics.params.is_empty();
        let each = quote! {
            let mut inner = self.0;
            for item in value.iter() {
                let text = match ::serde_json::to_value(item) {
                    Ok(::serde_json::Value::String(s)) => s,
                    Ok(other) => other.to_string(),
                    Err(_) => unreachable!("mock values serialise"),
                };
                inner = inner.query_param(#name, text);
            }
            Self(inner)
        };
        let body = if required {
            quote!({ #each })
        } else {
            quote!({
                if let Some(value) = value.into() {
                    #each
                } else {
                    Self(self.0.query_param_missing(#name))
                }
            })
        };
        f.block = syn::parse2(body).expect("well-formed replacement body");
    }
}

/// Finds the literal name passed to `query_param(…)`.
struct QueryName(Option<syn::LitStr>);

impl VisitMut for QueryName {
    fn visit_expr_method_call_mut(&mut self, call: &mut syn::ExprMethodCall) {
        if call.method == "query_param" {
            if let Some(syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            })) = call.args.first()
            {
                self.0 = Some(s.clone());
            }
        }
        syn::visit_mut::visit_expr_method_call_mut(self, call);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepared() -> (Value, std::path::PathBuf) {
        let (spec, overlay) = crate::test_paths();
        let loaded = crate::load(&spec, &overlay).unwrap();
        (crate::prepare(&loaded).unwrap(), spec)
    }

    #[test]
    fn errors_become_raw_and_success_stays_typed() {
        let (mut doc, file) = prepared();
        adapt_for_progenitor(&mut doc, &file).unwrap();
        let responses = &doc["paths"]["/activity_logs"]["get"]["responses"];
        assert!(responses["200"]["content"]["application/json"].is_object());
        assert!(responses["401"]["content"]["application/octet-stream"].is_object());
        assert!(doc["components"].get("responses").is_none());
    }

    #[test]
    fn a_second_success_status_is_refused_with_its_pointer() {
        let (mut doc, file) = prepared();
        doc["paths"]["/api_logs"]["get"]["responses"]["201"] = json!({"description": "created"});
        let err = adapt_for_progenitor(&mut doc, &file).unwrap_err();
        assert_eq!(err.pointer, "/paths/~1api_logs/get/responses");
    }

    #[test]
    fn the_client_and_the_mocks_generate() {
        let (doc, file) = prepared();
        let code = client(&doc, &file).unwrap();
        assert!(code.contains("pub fn find_all_activity_logs"));
        assert!(code.contains("pub fn find_security_log"));
        let mocks = httpmock(&doc, &file, "lago_audit_client").unwrap();
        assert!(
            mocks.contains("for item in value.iter()"),
            "array query fix applied"
        );
        assert!(!mocks.contains("query_param(\"activity_types[]\", value.to_string())"));
        assert!(
            mocks.contains("\"^/api/v1/activity_logs$\""),
            "server path prefixed"
        );
        assert!(mocks.contains("regex::escape("), "path values escaped");
        assert!(!mocks.contains("\"^/activity_logs"));
    }

    #[test]
    fn operation_ids_are_snake_cased_like_progenitor() {
        assert_eq!(snake_case("findAllApiLogs"), "find_all_api_logs");
        assert_eq!(snake_case("findActivityLog"), "find_activity_log");
        let (doc, file) = prepared();
        let code = client(&doc, &file).unwrap();
        assert!(code.contains("(\"find_activity_log\", \"/activity_logs/{activity_id}\")"));
        // The ids in the table are the ones progenitor hands to the hooks.
        assert!(code.contains("operation_id: \"find_activity_log\""));
    }

    /// Lago's whole published spec has ~200 other operations and every 3.1 construct; dropped in
    /// place of ours, the pipeline must still produce the audit client only.
    #[test]
    fn a_whole_spec_with_other_operations_still_generates_only_the_audit_client() {
        let (spec, overlay) = crate::test_paths();
        let mut doc = crate::read_document(&spec).unwrap();
        let extra = json!({
            "paths": {
                "/invoices": {"get": {
                    "tags": ["invoices"], "operationId": "findAllInvoices",
                    "parameters": [{"name": "search", "in": "query", "style": "deepObject",
                                    "schema": {"type": "object"}}],
                    "responses": {"200": {"description": "ok", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Invoice"}}}},
                        "400": {"description": "bad", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/ApiErrorBadRequest"}}}}}
                }},
                "/customers/{id}": {"delete": {
                    "tags": ["customers"], "operationId": "destroyCustomer",
                    "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                    "responses": {"200": {"description": "ok"}, "201": {"description": "also ok"}}
                }}
            },
            "webhooks": {"invoice.created": {"post": {"responses": {"200": {"description": "ok"}}}}},
            "components": {"schemas": {
                "Invoice": {"type": "object", "properties": {
                    "total": {"type": ["integer", "null"], "const": 3},
                    "meta": {"$ref": "#/components/schemas/PaginationMeta", "description": "sibling"},
                    "fees": {"type": "array", "format": "object", "items": {"type": "null"}},
                    "metadata": {"type": "object", "format": "object", "nullable": true},
                    "status": {"anyOf": [{"type": "string", "enum": ["draft"]}, {"type": "null"}]},
                    "examples_only": {"type": "string", "examples": ["a"]}
                }}
            }}
        });
        for key in ["paths", "webhooks"] {
            let target = doc.as_object_mut().unwrap().entry(key).or_insert(json!({}));
            target
                .as_object_mut()
                .unwrap()
                .extend(extra[key].as_object().unwrap().clone());
        }
        doc["components"]["schemas"]
            .as_object_mut()
            .unwrap()
            .extend(extra["components"]["schemas"].as_object().unwrap().clone());
        let dir = std::env::temp_dir().join(format!("lago-whole-spec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let whole = dir.join("openapi.yaml");
        std::fs::write(&whole, serde_norway::to_string(&doc).unwrap()).unwrap();

        let loaded = crate::load(&whole, &overlay).unwrap();
        assert!(
            loaded.stale_actions.is_empty(),
            "{:?}",
            loaded.stale_actions
        );
        let prepared = crate::prepare(&loaded).unwrap();
        assert!(
            prepared.pointer("/components/schemas/Invoice").is_none(),
            "unreached schemas are dropped"
        );
        let code = client(&prepared, &whole).unwrap();
        assert!(code.contains("pub fn find_all_activity_logs"));
        assert!(!code.contains("find_all_invoices") && !code.contains("destroy_customer"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_generator_panic_becomes_an_error() {
        let err =
            catch_generator_panic(Path::new("s.yaml"), || -> Result<(), progenitor::Error> {
                panic!("todo: format object")
            })
            .unwrap_err();
        assert!(err.problem.contains("format object"), "{err}");
    }

    /// The hook is installed once and captures only the panics of the thread inside
    /// `catch_generator_panic`: a panic on another thread at the same time is not taken for the
    /// generator's, and this thread reports its own panics again afterwards.
    #[test]
    fn only_the_generating_thread_is_captured() {
        let mut inside_line = 0;
        let err =
            catch_generator_panic(Path::new("s.yaml"), || -> Result<(), progenitor::Error> {
                let other = std::thread::spawn(|| panic!("elsewhere (expected in test output)"));
                assert!(other.join().is_err());
                inside_line = line!() + 1;
                panic!("inside")
            })
            .unwrap_err();
        assert!(err.problem.contains("inside"), "{err}");
        assert!(
            err.problem.contains(&format!("generate.rs:{inside_line})")),
            "the location is this thread's panic: {err}"
        );
        assert!(CAPTURING.with(|c| c.borrow().is_none()));
    }

    #[test]
    fn invalid_30_is_reported_with_a_pointer() {
        let (mut doc, file) = prepared();
        doc["paths"]["/api_logs"]["get"]["parameters"] = json!("not a list");
        let err = parse(doc, &file).unwrap_err();
        assert!(err.pointer.starts_with("/paths"), "{err}");
    }
}
