//! Generates the client from `openapi/` at compile time (see the `lago-audit-codegen` crate).
fn main() {
    lago_audit_codegen::run_build_script(
        lago_audit_codegen::Target::Client,
        "lago_audit_generated.rs",
    );
}
