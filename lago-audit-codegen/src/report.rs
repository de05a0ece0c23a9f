//! The spec update report: what a user of the generated client would feel when Lago's spec
//! changes, and what the change does to our overlay. [`report`] completes on any two specs that
//! parse, whatever upstream did to what the overlay relies on, in three parts:
//!
//! 1. **upstream changes**: the two specs compared as Lago publishes them (no overlay), limited to
//!    the audit-log operations, operation by operation (keyed by `operationId`, which names the
//!    client's methods): parameters (and the level they are declared at), response codes,
//!    response fields, required-ness, nullability, types and enum values. Each change is
//!    classified the way the generated Rust code experiences it, following oasdiff's rules where
//!    they agree (`docs/BREAKING-CHANGES.md` in oasdiff):
//!    - **breaking**: code that compiled against the old client no longer compiles, or responses
//!      it decoded no longer decode: an operation, parameter or response field removed; a
//!      parameter that becomes required; any type change (a renamed schema renames the Rust
//!      type); a response field that becomes optional or nullable (`T` becomes `Option<T>`) or
//!      required; an enum value removed from a closed enum; an enum value added to a closed
//!      response enum; a success response code added or removed;
//!    - **non-breaking**: an operation, optional parameter or response field added; a parameter
//!      that becomes optional or moves between path item and operation; an enum value added to a
//!      parameter; an error response code added or removed; an enum value added to or removed
//!      from an open enum, one the client takes from hand-written code (found by applying the
//!      overlay as far as it goes): the client keeps values it does not know, and the variant of
//!      a value Lago drops stays for old data. Such a change names its hand-written type and,
//!      from [`crate::open_enums`], the places in the workspace's hand-written code that name the
//!      values (the type, the CLI's parser and help, the OCSF and ECS mappings): they need a new
//!      value before its users can name it. The overlay never says these values, so they are
//!      never masked by it;
//! 2. **overlay actions**: the status of each action against the new spec ([`crate::status`]);
//! 3. **generated client**: a unified diff of the code generated from each spec plus the overlay,
//!    or one line saying why there is none (the new spec plus the overlay does not build, …).
//!
//! The [`Verdict`] (and the exit status of `diff`) is the most urgent of: overlay needs work,
//! breaking, non-breaking, no change.

use crate::filter::audit_paths_only;
use crate::model::{model, Model, Operation, Shape};
use crate::open_enums::{open_enum, Place};
use crate::status::{ActionStatus, Status};
use crate::SpecError;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

/// A unified diff of two texts (3 lines of context), empty when they are equal.
pub fn unified_diff(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    if old == new {
        return String::new();
    }
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(old_name, new_name)
        .to_string()
}

/// How a change affects users of the generated client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Existing code stops compiling, or responses stop decoding.
    Breaking,
    /// Existing code keeps working.
    NonBreaking,
}

/// One change between two specs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Breaking or not.
    pub severity: Severity,
    /// The operation (`operationId`) it concerns.
    pub operation: String,
    /// What changed, in words.
    pub what: String,
    /// For an enum value added to or removed from an open enum, the hand-written type that holds
    /// the values (`ActivitySource`); [`crate::open_enums`] says where the code names them.
    pub open_enum: Option<String>,
}

impl Change {
    /// The places in hand-written code that name the values of this change's open enum (none
    /// when it concerns no open enum, or one the table does not know).
    pub fn hand_written(&self) -> &'static [Place] {
        self.open_enum
            .as_deref()
            .and_then(open_enum)
            .map_or(&[], |e| e.places)
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.severity {
            Severity::Breaking => "BREAKING",
            Severity::NonBreaking => "non-breaking",
        };
        write!(f, "[{tag}] {}: {}", self.operation, self.what)
    }
}

fn describe(sh: &Shape) -> String {
    let mut s = sh.ty.clone();
    if sh.nullable {
        s.push_str(" or null");
    }
    s
}

fn enum_changes(
    old: &Shape,
    new: &Shape,
    response: bool,
    op: &str,
    what: &str,
    out: &mut Vec<Change>,
) {
    let (Some(a), Some(b)) = (&old.values, &new.values) else {
        return;
    };
    // The client keeps values it does not know in a hand-written type, which keeps the variants
    // of values Lago no longer lists: nothing breaks, but the hand-written code may need the value.
    if let Some(ty) = new.open.as_ref().or(old.open.as_ref()) {
        let change = |v: &String, how: String| Change {
            severity: Severity::NonBreaking,
            operation: op.to_owned(),
            what: format!("{what}: enum value {v:?} {how}"),
            open_enum: Some(ty.clone()),
        };
        for v in a.iter().filter(|v| !b.contains(v)) {
            out.push(change(
                v,
                format!("removed (open enum {ty}: its variant stays, for old data)"),
            ));
        }
        for v in b.iter().filter(|v| !a.contains(v)) {
            out.push(change(
                v,
                format!(
                    "added (open enum {ty}: the client takes it as {ty}::Other until the \
                     hand-written code names it)"
                ),
            ));
        }
        return;
    }
    for v in a.iter().filter(|v| !b.contains(v)) {
        out.push(Change {
            severity: Severity::Breaking,
            operation: op.to_owned(),
            what: format!("{what}: enum value {v:?} removed"),
            open_enum: None,
        });
    }
    for v in b.iter().filter(|v| !a.contains(v)) {
        let (severity, why) = if response {
            (
                Severity::Breaking,
                "older clients cannot decode it (closed enum)",
            )
        } else {
            (Severity::NonBreaking, "a new value to filter by")
        };
        out.push(Change {
            severity,
            operation: op.to_owned(),
            what: format!("{what}: enum value {v:?} added ({why})"),
            open_enum: None,
        });
    }
}

fn shape_changes(
    old: &Shape,
    new: &Shape,
    response: bool,
    op: &str,
    what: &str,
    out: &mut Vec<Change>,
) {
    if old.ty != new.ty {
        out.push(Change {
            severity: Severity::Breaking,
            operation: op.to_owned(),
            what: format!("{what}: type {} became {}", old.ty, new.ty),
            open_enum: None,
        });
    } else {
        enum_changes(old, new, response, op, what, out);
    }
    if old.nullable != new.nullable {
        let (severity, change) = match (new.nullable, response) {
            (true, true) => (Severity::Breaking, "may now be null (T becomes Option<T>)"),
            (false, true) => (Severity::Breaking, "is no longer nullable"),
            (true, false) => (Severity::NonBreaking, "now accepts null"),
            (false, false) => (Severity::Breaking, "no longer accepts null"),
        };
        out.push(Change {
            severity,
            operation: op.to_owned(),
            what: format!("{what} {change}"),
            open_enum: None,
        });
    }
}

/// `a.b` → `a`, `a[]` → `a`, `a` → `.`.
fn parent_path(path: &str) -> &str {
    if let Some(p) = path.strip_suffix("[]") {
        return p;
    }
    path.rfind('.').map_or(".", |i| &path[..i])
}

/// Compares two models.
pub fn compare(old: &Model, new: &Model) -> Vec<Change> {
    let mut out = Vec::new();
    for (id, o) in old {
        let Some(n) = new.get(id) else {
            out.push(Change {
                severity: Severity::Breaking,
                operation: id.clone(),
                what: format!("operation removed ({})", o.route),
                open_enum: None,
            });
            continue;
        };
        if o.route != n.route {
            out.push(Change {
                severity: Severity::Breaking,
                operation: id.clone(),
                what: format!("moved from {} to {}", o.route, n.route),
                open_enum: None,
            });
        }
        response_changes(id, o, n, &mut out);
        for (name, p) in &o.params {
            let what = format!("parameter {name}");
            match n.params.get(name) {
                None => out.push(Change {
                    severity: Severity::Breaking,
                    operation: id.clone(),
                    what: format!("{what} removed"),
                    open_enum: None,
                }),
                Some(q) => {
                    if p.required != q.required {
                        out.push(Change {
                            severity: if q.required {
                                Severity::Breaking
                            } else {
                                Severity::NonBreaking
                            },
                            operation: id.clone(),
                            what: format!(
                                "{what} became {}",
                                if q.required { "required" } else { "optional" }
                            ),
                            open_enum: None,
                        });
                    }
                    if p.location != q.location {
                        out.push(Change {
                            severity: Severity::Breaking,
                            operation: id.clone(),
                            what: format!("{what} moved from {} to {}", p.location, q.location),
                            open_enum: None,
                        });
                    }
                    if p.level != q.level {
                        out.push(Change {
                            severity: Severity::NonBreaking,
                            operation: id.clone(),
                            what: format!(
                                "{what} moved from the {} to the {} level (the client is the same)",
                                p.level, q.level
                            ),
                            open_enum: None,
                        });
                    }
                    shape_changes(&p.shape, &q.shape, false, id, &what, &mut out);
                }
            }
        }
        for (name, q) in n.params.iter().filter(|(k, _)| !o.params.contains_key(*k)) {
            out.push(Change {
                severity: if q.required {
                    Severity::Breaking
                } else {
                    Severity::NonBreaking
                },
                operation: id.clone(),
                what: format!(
                    "{} parameter {name} ({}) added",
                    if q.required { "required" } else { "optional" },
                    describe(&q.shape)
                ),
                open_enum: None,
            });
        }
        for (path, f) in &o.fields {
            let what = if path == "." {
                "response body".to_owned()
            } else {
                format!("response field {path}")
            };
            match n.fields.get(path) {
                None => out.push(Change {
                    severity: Severity::Breaking,
                    operation: id.clone(),
                    what: format!("{what} removed ({})", describe(&f.shape)),
                    open_enum: None,
                }),
                Some(g) => {
                    if f.required != g.required {
                        out.push(Change {
                            severity: Severity::Breaking,
                            operation: id.clone(),
                            what: if g.required {
                                format!("{what} became required (Option<T> becomes T)")
                            } else {
                                format!("{what} became optional (T becomes Option<T>)")
                            },
                            open_enum: None,
                        });
                    }
                    shape_changes(&f.shape, &g.shape, true, id, &what, &mut out);
                }
            }
        }
        for (path, g) in n.fields.iter().filter(|(k, _)| !o.fields.contains_key(*k)) {
            // Fields under a new field are part of it.
            let parent = parent_path(path);
            if parent != "." && !o.fields.contains_key(parent) {
                continue;
            }
            out.push(Change {
                severity: Severity::NonBreaking,
                operation: id.clone(),
                what: format!(
                    "response field {path} ({}{}) added",
                    if g.required { "required, " } else { "" },
                    describe(&g.shape)
                ),
                open_enum: None,
            });
        }
    }
    for (id, n) in new.iter().filter(|(k, _)| !old.contains_key(*k)) {
        out.push(Change {
            severity: Severity::NonBreaking,
            operation: id.clone(),
            what: format!("operation added ({})", n.route),
            open_enum: None,
        });
    }
    out
}

/// A success code changes what `send()` returns; an error code only how an error is classified.
fn response_changes(id: &str, o: &Operation, n: &Operation, out: &mut Vec<Change>) {
    let success = |code: &str| code.starts_with('2');
    for code in o.responses.iter().filter(|c| !n.responses.contains(c)) {
        out.push(if success(code) {
            Change {
                severity: Severity::Breaking,
                operation: id.to_owned(),
                what: format!("response {code} removed (the success type changes)"),
                open_enum: None,
            }
        } else {
            Change {
                severity: Severity::NonBreaking,
                operation: id.to_owned(),
                what: format!(
                    "response {code} no longer documented (the error still arrives as an error)"
                ),
                open_enum: None,
            }
        });
    }
    for code in n.responses.iter().filter(|c| !o.responses.contains(c)) {
        out.push(if success(code) {
            Change {
                severity: Severity::Breaking,
                operation: id.to_owned(),
                what: format!("response {code} added (the success type changes)"),
                open_enum: None,
            }
        } else {
            Change {
                severity: Severity::NonBreaking,
                operation: id.to_owned(),
                what: format!(
                    "response {code} added (an error the client already returns as an error)"
                ),
                open_enum: None,
            }
        });
    }
}

/// Where the generated client keeps values in an open enum, `(operationId, "param NAME")` or
/// `(operationId, "field PATH")`, and the hand-written type that keeps them (`ActivitySource`).
pub type OpenSet = BTreeMap<(String, String), String>;

/// The hand-written type a shape of the overlaid model uses, itself or somewhere inside it.
fn hand_written_type(sh: &Shape) -> Option<String> {
    const OPEN: &str = " (open, hand-written)";
    sh.open.clone().or_else(|| {
        let before = &sh.ty[..sh.ty.find(OPEN)?];
        let start = before
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        Some(before[start..].to_owned())
    })
}

fn open_entries(m: &Model, out: &mut OpenSet) {
    for (id, op) in m {
        for (name, p) in &op.params {
            if let Some(ty) = hand_written_type(&p.shape) {
                out.insert((id.clone(), format!("param {name}")), ty);
            }
        }
        for (path, f) in &op.fields {
            if let Some(ty) = hand_written_type(&f.shape) {
                out.insert((id.clone(), format!("field {path}")), ty);
            }
        }
    }
}

/// Upstream's type becomes the hand-written one; its values stay, to compare.
fn mark_open(sh: &mut Shape, ty: &str) {
    sh.ty = if sh.ty.starts_with("array<") {
        "array<open enum>".to_owned()
    } else {
        "open enum".to_owned()
    };
    sh.open = Some(ty.to_owned());
}

/// The model of Lago's spec as published (no overlay), limited to the audit-log operations, with
/// the values the client keeps in open enums (`open`) marked as such.
pub fn raw_model(doc: &Value, open: &OpenSet) -> Model {
    let mut d = doc.clone();
    audit_paths_only(&mut d);
    let mut m = model(&d);
    for (id, op) in m.iter_mut() {
        for (name, p) in op.params.iter_mut() {
            if let Some(ty) = open.get(&(id.clone(), format!("param {name}"))) {
                mark_open(&mut p.shape, ty);
            }
        }
        for (path, f) in op.fields.iter_mut() {
            if let Some(ty) = open.get(&(id.clone(), format!("field {path}"))) {
                mark_open(&mut f.shape, ty);
            }
        }
    }
    m
}

/// Exit status of `diff`: nothing changed.
pub const EXIT_NO_CHANGE: u8 = 0;
/// Exit status of `diff`: a usage error, or a file that cannot be read or parsed.
pub const EXIT_ERROR: u8 = 1;
/// Exit status of `diff`: changes, none of them breaking; every overlay action applies.
pub const EXIT_NON_BREAKING: u8 = 2;
/// Exit status of `diff`: at least one breaking change; every overlay action applies.
pub const EXIT_BREAKING: u8 = 3;
/// Exit status of `diff`: the overlay needs work (an action obsolete or broken, or NEW plus the
/// overlay does not build), whatever the changes.
pub const EXIT_OVERLAY_NEEDS_WORK: u8 = 4;

/// The overall verdict of a report, most urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// An overlay action is obsolete or broken, or NEW plus the overlay does not build.
    OverlayNeedsWork,
    /// At least one breaking change.
    Breaking,
    /// Changes, none breaking.
    NonBreaking,
    /// Nothing users of the client would feel.
    NoChange,
}

impl Verdict {
    /// The exit status `diff` ends with.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::NoChange => EXIT_NO_CHANGE,
            Verdict::NonBreaking => EXIT_NON_BREAKING,
            Verdict::Breaking => EXIT_BREAKING,
            Verdict::OverlayNeedsWork => EXIT_OVERLAY_NEEDS_WORK,
        }
    }

    /// A short name (`no_change`, `non_breaking`, `breaking`, `overlay_needs_work`).
    pub fn name(self) -> &'static str {
        match self {
            Verdict::NoChange => "no_change",
            Verdict::NonBreaking => "non_breaking",
            Verdict::Breaking => "breaking",
            Verdict::OverlayNeedsWork => "overlay_needs_work",
        }
    }
}

/// Part 3 of the report: the generated client, old → new.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientDiff {
    /// Both build and generate the same code.
    Unchanged,
    /// Both build; the unified diff.
    Diff(String),
    /// OLD plus the overlay does not build (so there is nothing to compare with); why, in one line.
    OldNotBuilt(String),
    /// NEW plus the overlay does not build; why, in one line.
    NewNotBuilt(String),
}

/// The whole update report for `old` → `new`.
#[derive(Debug, Clone)]
pub struct Report {
    /// The old spec's file.
    pub old: String,
    /// The new spec's file.
    pub new: String,
    /// Part 1: what changed upstream (Lago's spec as published, audit-log operations), each
    /// called as users of the generated client feel it.
    pub changes: Vec<Change>,
    /// Indices into `changes` of those the client does not see while the overlay applies (the
    /// overlay already says what upstream now says, or overrides it).
    pub masked: BTreeSet<usize>,
    /// Part 2: the status of every overlay action against the new spec.
    pub actions: Vec<ActionStatus>,
    /// Part 3: the generated client, old → new (both with the overlay).
    pub client: ClientDiff,
}

impl Report {
    /// The overall verdict.
    pub fn verdict(&self) -> Verdict {
        if matches!(self.client, ClientDiff::NewNotBuilt(_))
            || self.actions.iter().any(|a| a.status != Status::Applies)
        {
            Verdict::OverlayNeedsWork
        } else if self
            .changes
            .iter()
            .any(|c| c.severity == Severity::Breaking)
        {
            Verdict::Breaking
        } else if !self.changes.is_empty() {
            Verdict::NonBreaking
        } else {
            Verdict::NoChange
        }
    }

    /// The actions with a given status name (`applies`, `obsolete`, `broken`).
    pub fn actions_with(&self, status: &str) -> Vec<&ActionStatus> {
        self.actions
            .iter()
            .filter(|a| a.status.name() == status)
            .collect()
    }

    /// The report for tools (`--format json`).
    pub fn to_json(&self) -> Value {
        let verdict = self.verdict();
        let changes: Vec<Value> = self
            .changes
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut v = json!({
                    "masked_by_overlay": self.masked.contains(&i),
                    "severity": match c.severity {
                        Severity::Breaking => "breaking",
                        Severity::NonBreaking => "non_breaking",
                    },
                    "operation": c.operation,
                    "what": c.what,
                });
                if let Some(ty) = &c.open_enum {
                    v["open_enum"] = json!(ty);
                    v["hand_written"] = c
                        .hand_written()
                        .iter()
                        .map(|p| json!({"file": p.file, "item": p.item, "needs": p.needs}))
                        .collect();
                }
                v
            })
            .collect();
        let actions: Vec<Value> = self
            .actions
            .iter()
            .map(|a| {
                let mut v = json!({
                    "index": a.index,
                    "kind": a.kind,
                    "target": a.target,
                    "fact": a.fact,
                    "status": a.status.name(),
                });
                match &a.status {
                    Status::Applies => {}
                    Status::Obsolete { why } => v["why"] = json!(why),
                    Status::Broken { change, new_target } => {
                        v["change"] = json!(change);
                        v["new_target"] = json!(new_target);
                    }
                }
                v
            })
            .collect();
        let client = match &self.client {
            ClientDiff::Unchanged => json!({"status": "unchanged"}),
            ClientDiff::Diff(d) => json!({"status": "changed", "diff": d}),
            ClientDiff::OldNotBuilt(why) => json!({"status": "old_not_built", "why": why}),
            ClientDiff::NewNotBuilt(why) => json!({"status": "new_not_built", "why": why}),
        };
        json!({
            "old": self.old,
            "new": self.new,
            "verdict": verdict.name(),
            "exit_code": verdict.exit_code(),
            "changes": changes,
            "overlay": actions,
            "client": client,
        })
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let breaking = self
            .changes
            .iter()
            .filter(|c| c.severity == Severity::Breaking)
            .count();
        writeln!(f, "Update report: {} → {}", self.old, self.new)?;
        writeln!(
            f,
            "== 1. Upstream changes (Lago's spec as published, audit-log operations): {} ({breaking} breaking)",
            self.changes.len()
        )?;
        let mut changes: Vec<(usize, &Change)> = self.changes.iter().enumerate().collect();
        changes.sort_by_key(|(_, c)| c.severity);
        let mut listed = BTreeSet::new();
        for (i, c) in changes {
            if self.masked.contains(&i) {
                writeln!(f, "  {c} (the overlay already says this: the client does not change while it applies)")?;
            } else {
                writeln!(f, "  {c}")?;
            }
            // Where the hand-written code names the values: in full under the first change of
            // each open enum.
            if let Some(ty) = &c.open_enum {
                if listed.insert(ty) {
                    for p in c.hand_written() {
                        writeln!(f, "      - {} ({}): {}", p.file, p.item, p.needs)?;
                    }
                } else if !c.hand_written().is_empty() {
                    writeln!(f, "      - the hand-written code listed above for {ty}")?;
                }
            }
        }
        let (broken, obsolete, applies) = (
            self.actions_with("broken"),
            self.actions_with("obsolete"),
            self.actions_with("applies"),
        );
        writeln!(
            f,
            "== 2. Overlay actions against the new spec: {} broken, {} obsolete, {} apply",
            broken.len(),
            obsolete.len(),
            applies.len()
        )?;
        for a in broken.iter().chain(obsolete.iter()) {
            writeln!(f, "  {}: {a}", a.status.name())?;
        }
        if !applies.is_empty() {
            let list: Vec<String> = applies.iter().map(|a| a.index.to_string()).collect();
            writeln!(f, "  applies: actions[{}]", list.join(", "))?;
        }
        match &self.client {
            ClientDiff::Unchanged => writeln!(f, "== 3. Generated client: unchanged")?,
            ClientDiff::OldNotBuilt(why) | ClientDiff::NewNotBuilt(why) => {
                writeln!(f, "== 3. Generated client: no diff: {why}")?
            }
            ClientDiff::Diff(d) => {
                writeln!(f, "== 3. Generated client (unified diff, old → new):")?;
                f.write_str(d)?;
            }
        }
        let verdict = self.verdict();
        writeln!(
            f,
            "== Verdict: {} (exit {})",
            verdict.name().replace('_', " "),
            verdict.exit_code()
        )
    }
}

/// What a change is about (`parameter x`, `response field a.b`, `response 404`, `operation`), to
/// match the same change in two comparisons whatever its details.
fn subject(what: &str) -> String {
    let w = what
        .strip_prefix("optional ")
        .or_else(|| what.strip_prefix("required "))
        .unwrap_or(what);
    let words: Vec<&str> = w.split([' ', ':']).filter(|s| !s.is_empty()).collect();
    match words.as_slice() {
        ["parameter", name, ..] => format!("parameter {name}"),
        ["response", "field", path, ..] => format!("field {path}"),
        ["response", "body", ..] => "body".to_owned(),
        ["response", code, ..] => format!("response {code}"),
        ["operation", ..] => "operation".to_owned(),
        _ => w.to_owned(),
    }
}

/// A build error in one line: for upstream changes the overlay relies on, how many (part 2 names
/// them); else the first line of its message.
fn one_line(e: &SpecError) -> String {
    if e.problem
        .starts_with("Lago's spec changed where our overlay")
    {
        let n = e
            .problem
            .lines()
            .filter(|l| l.trim_start().starts_with("- "))
            .count();
        return format!(
            "{n} upstream change(s) break overlay actions they rely on (part 2 names each, with the new target where evident)"
        );
    }
    e.to_string().lines().next().unwrap_or_default().to_owned()
}

/// Builds the report for `old` → `new` with `overlay_file`. It completes whatever upstream did to
/// what the overlay relies on; it fails only when a file cannot be read or parsed (or the overlay
/// is not an Overlay 1.0 document).
pub fn report(old: &Path, new: &Path, overlay_file: &Path) -> Result<Report, SpecError> {
    let old_doc = crate::read_document(old)?;
    let new_doc = crate::read_document(new)?;
    let overlay_doc = crate::read_document(overlay_file)?;
    // Where the client keeps open enums, from both specs with as much of the overlay as applies.
    let mut open = OpenSet::new();
    for doc in [&old_doc, &new_doc] {
        let mut d = doc.clone();
        audit_paths_only(&mut d);
        crate::overlay::apply(&mut d, overlay_doc.clone(), overlay_file)?;
        open_entries(&model(&d), &mut open);
    }
    let changes = compare(&raw_model(&old_doc, &open), &raw_model(&new_doc, &open));
    // What the client would see with as much of the overlay as applies: a raw change absent there
    // is one the overlay already makes (or undoes).
    let overlaid = |doc: &Value| -> Result<Model, SpecError> {
        let mut d = doc.clone();
        audit_paths_only(&mut d);
        crate::overlay::apply(&mut d, overlay_doc.clone(), overlay_file)?;
        Ok(model(&d))
    };
    let felt: BTreeSet<(String, String)> = compare(&overlaid(&old_doc)?, &overlaid(&new_doc)?)
        .iter()
        .map(|c| (c.operation.clone(), subject(&c.what)))
        .collect();
    let masked = changes
        .iter()
        .enumerate()
        // The overlay never says an open enum's values: the hand-written type holds them.
        .filter(|(_, c)| {
            c.open_enum.is_none() && !felt.contains(&(c.operation.clone(), subject(&c.what)))
        })
        .map(|(i, _)| i)
        .collect();
    let actions = crate::status::statuses(&old_doc, &new_doc, &overlay_doc, overlay_file)?;
    let build = |p: &Path| crate::build_from(crate::Target::Client, p, overlay_file);
    let client = match (build(old), build(new)) {
        (_, Err(e)) => ClientDiff::NewNotBuilt(format!(
            "the new spec plus the overlay does not build: {}",
            one_line(&e)
        )),
        (Err(e), Ok(_)) => ClientDiff::OldNotBuilt(format!(
            "the old spec plus the overlay does not build, so there is nothing to compare with: {}",
            one_line(&e)
        )),
        (Ok(a), Ok(b)) => {
            let d = unified_diff(
                &a.code,
                &b.code,
                &old.display().to_string(),
                &new.display().to_string(),
            );
            if d.is_empty() {
                ClientDiff::Unchanged
            } else {
                ClientDiff::Diff(d)
            }
        }
    };
    Ok(Report {
        old: old.display().to_string(),
        new: new.display().to_string(),
        changes,
        masked,
        actions,
        client,
    })
}

/// The generated code reduced to what a user compiles against: doc comments removed, the
/// `api-version` value (the spec's `info.version`) blanked, pretty-printed. Two specs that differ
/// only in wording, order of components or version give the same surface.
pub fn api_surface(code: &str) -> Result<String, String> {
    use proc_macro2::{Group, TokenStream, TokenTree};
    use syn::visit_mut::VisitMut;
    fn strip_docs(tokens: TokenStream) -> TokenStream {
        let trees: Vec<TokenTree> = tokens.into_iter().collect();
        let mut out = Vec::with_capacity(trees.len());
        let mut i = 0;
        while i < trees.len() {
            if let TokenTree::Punct(p) = &trees[i] {
                if p.as_char() == '#' {
                    let bang =
                        matches!(trees.get(i + 1), Some(TokenTree::Punct(b)) if b.as_char() == '!');
                    let at = if bang { i + 2 } else { i + 1 };
                    if let Some(TokenTree::Group(g)) = trees.get(at) {
                        let is_doc = matches!(
                            g.stream().into_iter().next(),
                            Some(TokenTree::Ident(id)) if id == "doc"
                        );
                        if is_doc {
                            i = at + 1;
                            continue;
                        }
                    }
                }
            }
            out.push(match &trees[i] {
                TokenTree::Group(g) => {
                    let mut n = Group::new(g.delimiter(), strip_docs(g.stream()));
                    n.set_span(g.span());
                    TokenTree::Group(n)
                }
                other => other.clone(),
            });
            i += 1;
        }
        out.into_iter().collect()
    }
    struct Version;
    impl VisitMut for Version {
        fn visit_impl_item_fn_mut(&mut self, f: &mut syn::ImplItemFn) {
            if f.sig.ident == "api_version" {
                f.block = syn::parse_quote!({ "<info.version>" });
            }
            syn::visit_mut::visit_impl_item_fn_mut(self, f);
        }
    }
    let tokens: TokenStream = code.parse().map_err(|e| format!("{e}"))?;
    let mut file: syn::File = syn::parse2(strip_docs(tokens)).map_err(|e| e.to_string())?;
    Version.visit_file_mut(&mut file);
    Ok(prettyplease::unparse(&file))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A small spec in Lago's shape: one list operation with filters, a record with a closed enum,
    /// an open (replaced) enum and a nullable field.
    fn base() -> Value {
        json!({
            "paths": {"/logs": {"get": {
                "operationId": "findAllLogs",
                "parameters": [
                    {"name": "page", "in": "query", "schema": {"type": "integer"}},
                    {"name": "kinds[]", "in": "query", "schema": {"type": "array",
                        "items": {"type": "string", "enum": ["a", "b"]}}}
                ],
                "responses": {"200": {"content": {"application/json": {"schema":
                    {"$ref": "#/components/schemas/Page"}}}}}
            }}},
            "components": {"schemas": {
                "Page": {"type": "object", "required": ["logs"], "properties": {
                    "logs": {"type": "array", "items": {"$ref": "#/components/schemas/Log"}}}},
                "Log": {"type": "object", "required": ["id", "level"], "properties": {
                    "id": {"type": "string", "format": "uuid"},
                    "level": {"type": "string", "enum": ["info", "error"]},
                    "source": {"$ref": "#/components/schemas/ActivitySource"},
                    "user_email": {"type": ["string", "null"], "format": "email"}
                }},
                "ActivitySource": {"type": "string", "enum": ["api", "front"]}
            }}
        })
    }

    fn changes(edit: impl FnOnce(&mut Value)) -> Vec<String> {
        let old = base();
        let mut new = base();
        edit(&mut new);
        compare(&model(&old), &model(&new))
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn log(doc: &mut Value) -> &mut Value {
        &mut doc["components"]["schemas"]["Log"]
    }

    fn one(found: Vec<String>, expected: &str) {
        assert_eq!(found, vec![expected.to_owned()]);
    }

    #[test]
    fn the_same_spec_has_no_changes() {
        assert!(changes(|_| {}).is_empty());
    }

    #[test]
    fn a_removed_response_field_is_breaking() {
        one(
            changes(|d| {
                log(d)["properties"].as_object_mut().unwrap().remove("user_email");
            }),
            "[BREAKING] findAllLogs: response field logs[].user_email removed (string(email) or null)",
        );
    }

    #[test]
    fn an_added_response_field_is_not_breaking() {
        one(
            changes(|d| {
                log(d)["properties"]["tags"] = json!({"type": "array", "items": {"type": "string"}})
            }),
            "[non-breaking] findAllLogs: response field logs[].tags (array<string>) added",
        );
    }

    #[test]
    fn required_ness_of_response_fields_changes_the_rust_type() {
        one(
            changes(|d| log(d)["required"] = json!(["id"])),
            "[BREAKING] findAllLogs: response field logs[].level became optional (T becomes Option<T>)",
        );
        one(
            changes(|d| log(d)["required"] = json!(["id", "level", "user_email"])),
            "[BREAKING] findAllLogs: response field logs[].user_email became required (Option<T> becomes T)",
        );
    }

    #[test]
    fn a_field_that_may_become_null_is_breaking() {
        one(
            changes(|d| log(d)["properties"]["id"]["type"] = json!(["string", "null"])),
            "[BREAKING] findAllLogs: response field logs[].id may now be null (T becomes Option<T>)",
        );
    }

    #[test]
    fn a_type_change_is_breaking() {
        one(
            changes(|d| log(d)["properties"]["id"] = json!({"type": "integer"})),
            "[BREAKING] findAllLogs: response field logs[].id: type string(uuid) became integer",
        );
    }

    #[test]
    fn closed_response_enums_break_on_any_value_change() {
        one(
            changes(|d| log(d)["properties"]["level"]["enum"] = json!(["info", "error", "debug"])),
            "[BREAKING] findAllLogs: response field logs[].level: enum value \"debug\" added (older clients cannot decode it (closed enum))",
        );
        one(
            changes(|d| log(d)["properties"]["level"]["enum"] = json!(["info"])),
            "[BREAKING] findAllLogs: response field logs[].level: enum value \"error\" removed",
        );
    }

    #[test]
    fn value_changes_of_open_enums_are_not_breaking_and_name_the_hand_written_type() {
        let source = |values: Value| {
            let old = base();
            let mut new = base();
            new["components"]["schemas"]["ActivitySource"]["enum"] = values;
            compare(&model(&old), &model(&new))
        };
        let changes = source(json!(["api", "ai"]));
        assert_eq!(
            changes.iter().map(ToString::to_string).collect::<Vec<_>>(),
            vec![
                "[non-breaking] findAllLogs: response field logs[].source: enum value \"front\" removed (open enum ActivitySource: its variant stays, for old data)".to_owned(),
                "[non-breaking] findAllLogs: response field logs[].source: enum value \"ai\" added (open enum ActivitySource: the client takes it as ActivitySource::Other until the hand-written code names it)".to_owned(),
            ]
        );
        assert!(changes
            .iter()
            .all(|c| c.open_enum.as_deref() == Some("ActivitySource")));
        assert_eq!(
            changes[1].hand_written()[0].file,
            "lago-audit-client/src/open_enum.rs"
        );
    }

    #[test]
    fn parameter_changes() {
        fn kinds(d: &mut Value) -> &mut Value {
            &mut d["paths"]["/logs"]["get"]["parameters"][1]
        }
        one(
            changes(|d| kinds(d)["schema"]["items"]["enum"] = json!(["a", "b", "c"])),
            "[non-breaking] findAllLogs: parameter kinds[]: enum value \"c\" added (a new value to filter by)",
        );
        one(
            changes(|d| kinds(d)["schema"]["items"]["enum"] = json!(["a"])),
            "[BREAKING] findAllLogs: parameter kinds[]: enum value \"b\" removed",
        );
        one(
            changes(|d| kinds(d)["required"] = json!(true)),
            "[BREAKING] findAllLogs: parameter kinds[] became required",
        );
        // A rename is a removal plus an addition.
        assert_eq!(
            changes(|d| kinds(d)["name"] = json!("kinds")),
            vec![
                "[BREAKING] findAllLogs: parameter kinds[] removed".to_owned(),
                "[non-breaking] findAllLogs: optional parameter kinds (array<string>) added"
                    .to_owned()
            ]
        );
    }

    #[test]
    fn added_parameters_break_only_when_required() {
        let add = |required: bool| {
            changes(move |d| {
                d["paths"]["/logs"]["get"]["parameters"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"name": "q", "in": "query", "required": required,
                                 "schema": {"type": "string"}}));
            })
        };
        one(
            add(false),
            "[non-breaking] findAllLogs: optional parameter q (string) added",
        );
        one(
            add(true),
            "[BREAKING] findAllLogs: required parameter q (string) added",
        );
    }

    #[test]
    fn operations_removed_and_added() {
        let found = changes(|d| {
            let op = d["paths"]["/logs"]["get"].take();
            d["paths"] = json!({"/v2/logs": {"get": op}});
            d["paths"]["/v2/logs"]["get"]["operationId"] = json!("listLogs");
        });
        assert_eq!(
            found,
            vec![
                "[BREAKING] findAllLogs: operation removed (GET /logs)".to_owned(),
                "[non-breaking] listLogs: operation added (GET /v2/logs)".to_owned(),
            ]
        );
    }

    #[test]
    fn surfaces_ignore_docs_and_version_only() {
        let a = "impl Client { /// Docs.\n pub fn api_version(&self) -> &'static str { \"1.0.0\" } }\n/// A.\npub struct A { /// x\n pub x: i64 }";
        let b = "impl Client { pub fn api_version(&self) -> &'static str { \"2.0.0\" } }\npub struct A { pub x: i64 }";
        let c = "impl Client { pub fn api_version(&self) -> &'static str { \"2.0.0\" } }\npub struct A { pub x: String }";
        assert_eq!(api_surface(a).unwrap(), api_surface(b).unwrap());
        assert_ne!(api_surface(b).unwrap(), api_surface(c).unwrap());
    }

    #[test]
    fn unified_diffs_show_the_changed_lines() {
        let d = unified_diff("a\nb\nc\n", "a\nB\nc\n", "old", "new");
        assert!(d.contains("--- old") && d.contains("+++ new"), "{d}");
        assert!(d.contains("-b\n+B\n"), "{d}");
        assert!(unified_diff("same", "same", "a", "b").is_empty());
    }

    fn write(dir: &Path, name: &str, doc: &Value) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, serde_json::to_string_pretty(doc).unwrap()).unwrap();
        p
    }

    /// End to end on our own spec: upstream drops `user_email` and fixes `organization_id`.
    #[test]
    fn the_report_on_our_spec_shows_breaking_changes_obsolete_corrections_and_the_code_diff() {
        let (spec, overlay) = crate::test_paths();
        let old = crate::read_document(&spec).unwrap();
        let mut new = old.clone();
        let record = &mut new["components"]["schemas"]["ActivityLogObject"];
        record["properties"]
            .as_object_mut()
            .unwrap()
            .remove("user_email");
        let required: Vec<Value> = record["required"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| *r != "organization_id")
            .cloned()
            .collect();
        record["required"] = Value::Array(required);
        let dir = std::env::temp_dir().join(format!("lago-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (old_p, new_p) = (write(&dir, "old.json", &old), write(&dir, "new.json", &new));

        let r = report(&old_p, &new_p, &overlay).unwrap();
        let text = r.to_string();
        assert_eq!(r.verdict(), Verdict::OverlayNeedsWork);
        assert!(
            text.contains(
                "[BREAKING] findAllActivityLogs: response field activity_logs[].user_email removed"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "[BREAKING] findActivityLog: response field activity_log.user_email removed"
            ),
            "{text}"
        );
        // Upstream now agrees that organization_id is optional: our correction changes nothing.
        assert!(
            r.actions_with("obsolete")
                .iter()
                .any(|a| a.target.ends_with("ActivityLogObject.required")),
            "{text}"
        );
        assert!(text.contains("-        pub user_email:"), "{text}");

        let same = report(&old_p, &old_p, &overlay).unwrap();
        assert_eq!(same.verdict(), Verdict::NoChange, "{same}");
        assert_eq!(same.client, ClientDiff::Unchanged);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A Lago-shaped variant of our spec (other wording, version and component order) generates the
    /// same API; one that loses a correction's target fails the build, naming it.
    #[test]
    fn a_reworded_spec_drops_in_and_a_moved_parameter_is_named() {
        let (spec, overlay) = crate::test_paths();
        let mut doc = crate::read_document(&spec).unwrap();
        doc["info"]["version"] = json!("9.9.9");
        doc["paths"]["/activity_logs"]["get"]["description"] = json!("Reworded.");
        let schemas = doc["components"]["schemas"].as_object().unwrap().clone();
        let reversed: serde_json::Map<String, Value> = schemas.into_iter().rev().collect();
        doc["components"]["schemas"] = Value::Object(reversed);
        let dir = std::env::temp_dir().join(format!("lago-dropin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let variant = write(&dir, "variant.json", &doc);
        let surface = |p: &Path| {
            api_surface(
                &crate::build_from(crate::Target::Client, p, &overlay)
                    .unwrap()
                    .code,
            )
            .unwrap()
        };
        assert_eq!(surface(&spec), surface(&variant));

        // Lago moves from_date of the activity-log list into a shared component.
        let params = doc["paths"]["/activity_logs"]["get"]["parameters"]
            .as_array_mut()
            .unwrap();
        let i = params
            .iter()
            .position(|p| p["name"] == "from_date")
            .unwrap();
        let moved = std::mem::replace(
            &mut params[i],
            json!({"$ref": "#/components/parameters/from_date"}),
        );
        doc["components"]["parameters"]["from_date"] = moved;
        let moved_spec = write(&dir, "moved.json", &doc);
        let err = crate::build_from(crate::Target::Client, &moved_spec, &overlay).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("the parameter from_date of GET /activity_logs (findAllActivityLogs) is now the shared component #/components/parameters/from_date"),
            "{text}"
        );
        assert_eq!(
            text.matches("\n  - ").count(),
            1,
            "one upstream change: {text}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
