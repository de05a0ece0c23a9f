//! The status of each overlay action against a new upstream spec: does the correction still
//! apply, did upstream make it obsolete, or did upstream break it?
//!
//! Unlike [`crate::load`], nothing here fails on an upstream change: every action gets a status,
//! so the update report can be read *before* the overlay is fixed.
//!
//! - **applies**: its target is there and applying it changes the result;
//! - **obsolete**: upstream now says what the correction says (applying it changes nothing, the
//!   parameter it removes is gone and upstream has the one it adds, or upstream already defines
//!   the parameter it adds, the same way);
//! - **broken**: what it relies on is gone or has moved; the upstream change is named, and where
//!   one is evident, the target the action should now have.

use crate::overlay::{self, Anchor};
use crate::SpecError;
use serde_json::Value;
use std::fmt;
use std::path::Path;

/// Where an overlay action stands against a spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// The correction still applies.
    Applies,
    /// Upstream now says what the correction says.
    Obsolete {
        /// What upstream now says, in words.
        why: String,
    },
    /// What the correction relies on is gone or has moved.
    Broken {
        /// The upstream change, in words.
        change: String,
        /// The target the action should have now, when one is evident.
        new_target: Option<String>,
    },
}

impl Status {
    /// `applies`, `obsolete` or `broken`.
    pub fn name(&self) -> &'static str {
        match self {
            Status::Applies => "applies",
            Status::Obsolete { .. } => "obsolete",
            Status::Broken { .. } => "broken",
        }
    }
}

/// One overlay action and its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionStatus {
    /// Index in the overlay's `actions` array.
    pub index: usize,
    /// `update` or `remove`.
    pub kind: String,
    /// The JSONPath target.
    pub target: String,
    /// The fact(s) of `openapi/FACTS.md` the correction encodes (`fact 4`, `facts 2-3`), read from
    /// its description (or from the action it is paired with).
    pub fact: Option<String>,
    /// Its status.
    pub status: Status,
}

impl fmt::Display for ActionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "actions[{}] ({} {}", self.index, self.kind, self.target)?;
        if let Some(fact) = &self.fact {
            write!(f, "; {fact}")?;
        }
        write!(f, ")")?;
        match &self.status {
            Status::Applies => write!(f, ": applies"),
            Status::Obsolete { why } => write!(f, ": obsolete: {why}"),
            Status::Broken { change, new_target } => {
                write!(f, ": broken: {change}")?;
                if let Some(t) = new_target {
                    write!(f, "; new target: {t}")?;
                }
                Ok(())
            }
        }
    }
}

/// Reads `Fact 4`, `Facts 2-3`, `Facts 1, 3, 11, 13` from an action's description.
pub fn fact_of(description: &str) -> Option<String> {
    let lower = description.to_lowercase();
    let at = lower.find("fact")?;
    let rest = &description[at + 4..];
    let rest = rest.strip_prefix('s').unwrap_or(rest).trim_start();
    let mut numbers = String::new();
    let mut chars = rest.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c.is_ascii_digit() || c == '-' {
            numbers.push(c);
        } else if c == ','
            && rest[i + 1..]
                .trim_start()
                .starts_with(|d: char| d.is_ascii_digit())
        {
            numbers.push_str(", ");
            while chars.peek().is_some_and(|(_, c)| *c == ' ') {
                chars.next();
            }
        } else {
            break;
        }
    }
    if numbers.is_empty() {
        return None;
    }
    let plural = numbers.contains([',', '-']);
    Some(format!("fact{} {numbers}", if plural { "s" } else { "" }))
}

struct Action {
    target: String,
    remove: bool,
    update: Option<Value>,
    description: Option<String>,
}

fn read_actions(overlay_doc: &Value) -> Vec<Action> {
    overlay_doc["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| Action {
            target: a["target"].as_str().unwrap_or_default().to_owned(),
            remove: a["remove"] == Value::Bool(true),
            update: a.get("update").cloned(),
            description: a["description"].as_str().map(str::to_owned),
        })
        .collect()
}

/// The last key of a JSONPath target (`…properties.x` → `x`, `…['200']` → `200`), and the target
/// without it.
fn split_last(target: &str) -> Option<(&str, String)> {
    if let Some(stripped) = target.strip_suffix("']") {
        let i = stripped.rfind("['")?;
        return Some((&target[..i], stripped[i + 2..].to_owned()));
    }
    if target.ends_with(']') {
        return None;
    }
    let i = target.rfind('.')?;
    Some((&target[..i], target[i + 1..].to_owned()))
}

/// For each `remove`, the later `update` that puts the removed key back (a correction written as
/// remove-then-re-add), if any.
fn re_adds(actions: &[Action]) -> Vec<Option<usize>> {
    actions
        .iter()
        .enumerate()
        .map(|(i, a)| {
            if !a.remove {
                return None;
            }
            let (parent, key) = split_last(&a.target)?;
            actions.iter().enumerate().skip(i + 1).find_map(|(j, b)| {
                (b.target == parent
                    && b.update
                        .as_ref()
                        .and_then(Value::as_object)
                        .is_some_and(|u| u.contains_key(&key)))
                .then_some(j)
            })
        })
        .collect()
}

/// The parameter a `…parameters` update appends (an update on a list appends its value).
fn appended_parameter(a: &Action) -> Option<(&str, &str)> {
    if a.remove || !a.target.ends_with(".parameters") {
        return None;
    }
    let u = a.update.as_ref()?;
    Some((u.get("name")?.as_str()?, u.get("in")?.as_str()?))
}

fn operation_of(target: &str) -> Option<(String, String)> {
    match overlay::anchor(target)? {
        Anchor::Operation { path, method } | Anchor::Parameter { path, method, .. } => {
            Some((path, method))
        }
        _ => None,
    }
}

/// The parameters an operation sees (its path item's, then its own), resolved.
fn parameters_of<'a>(doc: &'a Value, path: &str, method: &str) -> Vec<&'a Value> {
    let Some(item) = doc.pointer(&crate::join_pointer("/paths", path)) else {
        return Vec::new();
    };
    let shared = item.get("parameters").and_then(Value::as_array);
    let own = item
        .get(method)
        .and_then(|o| o.get("parameters"))
        .and_then(Value::as_array);
    shared
        .into_iter()
        .flatten()
        .chain(own.into_iter().flatten())
        .map(|p| resolve(doc, p))
        .collect()
}

fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    v.get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix('#'))
        .and_then(|p| doc.pointer(p))
        .unwrap_or(v)
}

fn param_shape(doc: &Value, p: &Value) -> String {
    p.get("schema")
        .map(|s| crate::model::shape(doc, s).ty)
        .unwrap_or_default()
}

/// A JSON pointer as a JSONPath target in the overlay's style.
pub fn pointer_to_target(pointer: &str) -> String {
    let mut out = String::from("$");
    for seg in pointer.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        if !seg.is_empty() && seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            if seg.chars().all(|c| c.is_ascii_digit()) {
                out.push_str(&format!("['{seg}']"));
            } else {
                out.push('.');
                out.push_str(&seg);
            }
        } else {
            out.push_str(&format!("['{seg}']"));
        }
    }
    out
}

/// Every place in `doc` that holds `{"$ref": reference}`, as JSON pointers.
fn places_of_ref(doc: &Value, reference: &str, at: String, out: &mut Vec<String>) {
    match doc {
        Value::Object(m) => {
            if m.get("$ref").and_then(Value::as_str) == Some(reference) {
                out.push(at.clone());
            }
            for (k, v) in m {
                places_of_ref(v, reference, crate::join_pointer(&at, k), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                places_of_ref(v, reference, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn property_names(schema: &Value) -> Vec<String> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// Explains where a component the overlay patches went: renamed (another schema with most of its
/// properties, that `old` did not have) or inlined (where `old` referred to it, `new` now holds an
/// object of its own).
fn find_component(old: &Value, new: &Value, kind: &str, name: &str) -> (String, Option<String>) {
    let base = format!("components.{kind}.{name}");
    let Some(before) = old.pointer(&crate::join_pointer(&format!("/components/{kind}"), name))
    else {
        return (
            format!("{base} is not in the new spec (nor in the old: the overlay was written for a later one)"),
            None,
        );
    };
    let props = property_names(before);
    if !props.is_empty() {
        let olds = old["components"][kind].as_object();
        let best = new["components"][kind]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(n, _)| olds.is_none_or(|o| !o.contains_key(*n)))
            .map(|(n, s)| {
                let theirs = property_names(s);
                let common = props.iter().filter(|p| theirs.contains(p)).count();
                (common * 100 / props.len().max(theirs.len()).max(1), n)
            })
            .max();
        if let Some((score, n)) = best.filter(|(s, _)| *s >= 60) {
            return (
                format!("{base} was renamed {n} upstream ({score}% of its properties match)"),
                Some(format!("$.components.{kind}.{n}")),
            );
        }
    }
    let reference = format!("#/components/{kind}/{name}");
    let mut places = Vec::new();
    places_of_ref(old, &reference, String::new(), &mut places);
    for place in places {
        if let Some(inline) = new.pointer(&place) {
            if inline.get("$ref").is_none() && inline.is_object() {
                return (
                    format!("{base} was inlined upstream (at {place})"),
                    Some(pointer_to_target(&place)),
                );
            }
        }
    }
    (format!("{base} was removed upstream"), None)
}

/// Explains an action whose anchor is missing in `new`, with the target it should now have.
fn diagnose(old: &Value, new: &Value, target: &str, change: &str) -> (String, Option<String>) {
    let rest_after = |prefix: &str| target.strip_prefix(prefix).unwrap_or("").to_owned();
    match overlay::anchor(target) {
        Some(Anchor::Operation { path, method }) => {
            let prefix = format!("$.paths['{path}'].{method}");
            match moved_operation(old, new, &path, &method) {
                Some((new_path, id)) => (
                    format!(
                        "{change}: {id} moved to {} {new_path}",
                        method.to_uppercase()
                    ),
                    Some(format!(
                        "$.paths['{new_path}'].{method}{}",
                        rest_after(&prefix)
                    )),
                ),
                None => (gone_operation(old, change, &path, &method), None),
            }
        }
        Some(Anchor::Parameter { path, method, name }) => {
            let prefix = format!("$.paths['{path}'].{method}.parameters[?@.name=='{name}']");
            let rest = rest_after(&prefix);
            let op_ptr = crate::join_pointer(&crate::join_pointer("/paths", &path), &method);
            if new.pointer(&op_ptr).is_none() {
                return match moved_operation(old, new, &path, &method) {
                    Some((new_path, id)) => (
                        format!(
                            "{change}: {id} moved to {} {new_path}",
                            method.to_uppercase()
                        ),
                        Some(format!(
                            "$.paths['{new_path}'].{method}.parameters[?@.name=='{name}']{rest}"
                        )),
                    ),
                    None => (gone_operation(old, change, &path, &method), None),
                };
            }
            // Moved to the path item's shared parameters?
            let item = new.pointer(&crate::join_pointer("/paths", &path));
            let at_path_level = item
                .and_then(|i| i.get("parameters"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|p| resolve(new, p).get("name").and_then(Value::as_str) == Some(&name));
            if let Some(p) = at_path_level {
                return match p.get("$ref").and_then(Value::as_str) {
                    Some(r) => (
                        format!(
                            "the parameter {name} moved from the operation to its path item, as {r}"
                        ),
                        Some(format!("$.components.parameters.{}{rest}", last_segment(r))),
                    ),
                    None => (
                        format!(
                            "the parameter {name} moved from the operation to its path item ({path})"
                        ),
                        Some(format!("$.paths['{path}'].parameters[?@.name=='{name}']{rest}")),
                    ),
                };
            }
            let params = parameters_of(new, &path, &method);
            // Now a shared component?
            if let Some(r) = new
                .pointer(&format!("{op_ptr}/parameters"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|p| p.get("$ref").and_then(Value::as_str))
                .find(|r| {
                    r.strip_prefix('#')
                        .and_then(|p| new.pointer(p))
                        .and_then(|p| p.get("name"))
                        .and_then(Value::as_str)
                        == Some(&name)
                })
            {
                return (
                    format!("the parameter {name} is now the shared component {r}"),
                    Some(format!("$.components.parameters.{}{rest}", last_segment(r))),
                );
            }
            let bare = name.trim_end_matches("[]");
            if let Some(other) = params
                .iter()
                .filter_map(|p| p.get("name").and_then(Value::as_str))
                .find(|n| *n != name && n.trim_end_matches("[]") == bare)
            {
                return (
                    format!("the parameter {name} was renamed {other} upstream"),
                    Some(format!(
                        "$.paths['{path}'].{method}.parameters[?@.name=='{other}']{rest}"
                    )),
                );
            }
            (
                format!("the parameter {name} was removed upstream ({change})"),
                None,
            )
        }
        Some(Anchor::Component { kind, name }) => {
            let (why, to) = find_component(old, new, &kind, &name);
            let prefix = format!("$.components.{kind}.{name}");
            (why, to.map(|t| format!("{t}{}", rest_after(&prefix))))
        }
        _ => (change.to_owned(), None),
    }
}

fn gone_operation(old: &Value, change: &str, path: &str, method: &str) -> String {
    let ptr = crate::join_pointer(&crate::join_pointer("/paths", path), method);
    if old.pointer(&ptr).is_some() {
        format!("{change}: removed upstream")
    } else {
        format!("{change} (not in the old spec either: the overlay was written for a later one)")
    }
}

fn last_segment(r: &str) -> &str {
    r.rsplit('/').next().unwrap_or(r)
}

/// Where the operation `method path` of `old` went in `new` (same `operationId`, other path).
fn moved_operation(old: &Value, new: &Value, path: &str, method: &str) -> Option<(String, String)> {
    let ptr = crate::join_pointer(&crate::join_pointer("/paths", path), method);
    let id = old.pointer(&ptr)?.get("operationId")?.as_str()?;
    new["paths"].as_object()?.iter().find_map(|(p, item)| {
        (item.get(method)?.get("operationId")?.as_str()? == id && p != path)
            .then(|| (p.clone(), id.to_owned()))
    })
}

/// The status of every action of `overlay_doc` against `new` (Lago's spec as published); `old` is
/// the spec the overlay was written against, used to tell where a moved target went.
pub fn statuses(
    old: &Value,
    new: &Value,
    overlay_doc: &Value,
    overlay_file: &Path,
) -> Result<Vec<ActionStatus>, SpecError> {
    let actions = read_actions(overlay_doc);
    let partner = re_adds(&actions);
    let mut paired_with: Vec<Option<usize>> = vec![None; actions.len()];
    for (i, p) in partner.iter().enumerate() {
        if let Some(j) = *p {
            paired_with[i] = Some(j);
            paired_with[j] = Some(i);
        }
    }
    let mut upstream = new.clone();
    crate::filter::audit_paths_only(&mut upstream);
    let apply = |skip: &[usize]| -> Result<(Value, overlay::Outcome), SpecError> {
        let mut doc = upstream.clone();
        let mut o = overlay_doc.clone();
        if let Some(list) = o.get_mut("actions").and_then(Value::as_array_mut) {
            let kept: Vec<Value> = list
                .iter()
                .enumerate()
                .filter(|(i, _)| !skip.contains(i))
                .map(|(_, a)| a.clone())
                .collect();
            *list = kept;
        }
        let outcome = overlay::apply(&mut doc, o, overlay_file)?;
        Ok((doc, outcome))
    };
    let (full, outcome) = apply(&[])?;
    // Without an action the overlay needs, the result may not even load: then it is not redundant.
    let apply_without = |skip: &[usize]| apply(skip).ok().map(|(doc, _)| doc);

    let mut out = Vec::new();
    for (i, a) in actions.iter().enumerate() {
        let description = a
            .description
            .clone()
            .or_else(|| paired_with[i].and_then(|j| actions[j].description.clone()));
        let fact = description.as_deref().and_then(fact_of);
        let status = status_of(
            i,
            &actions,
            &partner,
            &paired_with,
            old,
            new,
            &full,
            &apply_without,
            &outcome,
        )?;
        out.push(ActionStatus {
            index: i,
            kind: if a.remove { "remove" } else { "update" }.to_owned(),
            target: a.target.clone(),
            fact,
            status,
        });
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn status_of(
    i: usize,
    actions: &[Action],
    partner: &[Option<usize>],
    paired_with: &[Option<usize>],
    old: &Value,
    new: &Value,
    full: &Value,
    apply_without: &dyn Fn(&[usize]) -> Option<Value>,
    outcome: &overlay::Outcome,
) -> Result<Status, SpecError> {
    let broken_at = |i: usize| outcome.broken.iter().find(|b| b.index == i);
    let stale_at = |i: usize| outcome.stale.iter().any(|s| s.index == i);
    let a = &actions[i];
    // A parameter the overlay adds that upstream now defines.
    if let Some((name, location)) = appended_parameter(a) {
        if let Some((path, method)) = operation_of(&a.target) {
            let theirs = parameters_of(new, &path, &method)
                .into_iter()
                .find(|p| p.get("name").and_then(Value::as_str) == Some(name));
            if let Some(p) = theirs {
                let ours = a.update.as_ref().map(|u| param_shape(new, u));
                let same = p.get("in").and_then(Value::as_str) == Some(location)
                    && ours.as_deref() == Some(param_shape(new, p).as_str());
                return Ok(if same {
                    Status::Obsolete {
                        why: format!(
                            "upstream now defines the parameter {name} ({}) itself",
                            param_shape(new, p)
                        ),
                    }
                } else {
                    Status::Broken {
                        change: format!(
                            "upstream now defines the parameter {name} itself, differently ({} {}); the overlay would add a second one",
                            p.get("in").and_then(Value::as_str).unwrap_or("?"),
                            param_shape(new, p)
                        ),
                        new_target: None,
                    }
                });
            }
        }
    }
    // A remove that is not a re-add: what it removes may be gone already.
    let pure_remove = a.remove && partner[i].is_none();
    if let Some(b) = broken_at(i) {
        let (change, new_target) = diagnose(old, new, &a.target, &b.change);
        if pure_remove {
            if let Some(Anchor::Parameter { path, method, name }) = overlay::anchor(&a.target) {
                // What the correction removes is gone from an operation that is still there:
                // upstream agrees, whatever it did instead.
                let op_ptr = crate::join_pointer(&crate::join_pointer("/paths", &path), &method);
                if new.pointer(&op_ptr).is_some()
                    && !change.contains("moved")
                    && !change.contains("shared component")
                {
                    let replacement = actions
                        .iter()
                        .skip(i + 1)
                        .filter_map(appended_parameter)
                        .find(|(n, _)| n.trim_end_matches("[]") == name.trim_end_matches("[]"));
                    let tail = match replacement {
                        Some((n, _)) if change.contains(&format!("renamed {n}")) => {
                            format!("upstream renamed {name} → {n}, what this correction does")
                        }
                        _ => format!("upstream no longer has {name} ({change})"),
                    };
                    return Ok(Status::Obsolete { why: tail });
                }
            }
        }
        return Ok(Status::Broken { change, new_target });
    }
    if stale_at(i) {
        if pure_remove {
            return Ok(Status::Obsolete {
                why: "upstream no longer has what it removes".to_owned(),
            });
        }
        let (change, new_target) = diagnose(
            old,
            new,
            &a.target,
            "its target matches nothing in the new spec",
        );
        let change = if change.contains("matches nothing") {
            change
        } else {
            format!("its target matches nothing: {change}")
        };
        return Ok(Status::Broken { change, new_target });
    }
    if let Some(j) = paired_with[i] {
        if stale_at(j) || broken_at(j).is_some() {
            // The other half of a remove-and-re-add: what it patches is gone upstream.
            let (change, new_target) = diagnose(
                old,
                new,
                &actions[j].target,
                "what it re-adds was removed upstream",
            );
            let change = if a.remove {
                change
            } else {
                format!(
                    "it re-adds what actions[{j}] removes, which upstream no longer has ({change})"
                )
            };
            return Ok(Status::Broken { change, new_target });
        }
    }
    let mut group = vec![i];
    if let Some(j) = paired_with[i] {
        group.push(j);
    }
    let redundant = apply_without(&group).is_some_and(|doc| &doc == full);
    Ok(if redundant {
        Status::Obsolete {
            why: if group.len() == 2 {
                format!(
                    "with actions[{}] it changes nothing: upstream already says this",
                    group[1]
                )
            } else {
                "it changes nothing: upstream already says this".to_owned()
            },
        }
    } else {
        Status::Applies
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_are_read_from_descriptions() {
        assert_eq!(fact_of("Fact 4, a scalar"), Some("fact 4".into()));
        assert_eq!(fact_of("Fact 2-3, an object"), Some("facts 2-3".into()));
        assert_eq!(
            fact_of("Facts 1, 3, 11, 13; the example"),
            Some("facts 1, 3, 11, 13".into())
        );
        assert_eq!(fact_of("Share one type"), None);
    }

    #[test]
    fn pointers_become_targets() {
        assert_eq!(
            pointer_to_target(
                "/paths/~1logs~1{id}/get/responses/200/content/application~1json/schema"
            ),
            "$.paths['/logs/{id}'].get.responses['200'].content['application/json'].schema"
        );
    }
}
