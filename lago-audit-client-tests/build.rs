//! Generates progenitor's typed httpmock helpers from the same spec, overlay and settings as the
//! client (see the `lago-audit-codegen` crate).
fn main() {
    lago_audit_codegen::run_build_script(
        lago_audit_codegen::Target::Httpmock("lago_audit_client"),
        "lago_audit_mocks.rs",
    );
}
