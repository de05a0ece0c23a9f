//! The open enums: the types the generated client takes from hand-written code
//! (`lago_audit_client::open_enum`) for lists Lago grows without notice, and the places in the
//! workspace's hand-written code that name their values.
//!
//! A value Lago adds to one of these lists breaks nothing (the client decodes it as `Other`), but
//! the hand-written code does not know it until someone names it there. The update report lists
//! these places under every value added to an open enum; the table is checked against the code by
//! this module's tests.

/// One place in the workspace's hand-written code that names an open enum's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    /// The file, from the workspace's root.
    pub file: &'static str,
    /// The item there: a type, `fn name`, or `Type.field`.
    pub item: &'static str,
    /// What a new value needs there.
    pub needs: &'static str,
}

/// An open enum, by the name of the spec's schema it replaces, and its places.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenEnum {
    /// The schema's name, which is also the hand-written type's (`ActivitySource`).
    pub name: &'static str,
    /// Where the hand-written code names its values.
    pub places: &'static [Place],
}

const fn place(file: &'static str, item: &'static str, needs: &'static str) -> Place {
    Place { file, item, needs }
}

const CLIENT: &str = "lago-audit-client/src/open_enum.rs";
const CLI_PARSERS: &str = "lago-audit-cli/src/parse.rs";
const CLI_FLAGS: &str = "lago-audit-cli/src/kinds.rs";
const OCSF: &str = "lago-audit-sink/src/ocsf.rs";
const ECS: &str = "lago-audit-sink/src/ecs.rs";

/// Every open enum of the client, with the places that name its values.
pub const OPEN_ENUMS: &[OpenEnum] = &[
    OpenEnum {
        name: "ActivitySource",
        places: &[
            place(CLIENT, "ActivitySource", "a variant for the value"),
            place(
                CLI_PARSERS,
                "fn parse_activity_source",
                "takes ActivitySource::KNOWN only: --activity-source refuses the value until the variant exists",
            ),
            place(CLI_FLAGS, "ActivityFilters.activity_sources", "the --activity-source help lists the values"),
            place(
                OCSF,
                "fn activity",
                "the actor of a record without a user e-mail (by default app_name \"Lago (<value>)\")",
            ),
            place(ECS, "fn activity", "no case: the value passes through as lago.activity.activity_source"),
        ],
    },
    OpenEnum {
        name: "HttpMethod",
        places: &[
            place(CLIENT, "HttpMethod", "a variant for the value"),
            place(
                CLI_PARSERS,
                "fn parse_http_method",
                "takes HttpMethod::KNOWN only: --http-method refuses the value until the variant exists",
            ),
            place(CLI_FLAGS, "ApiFilters.http_methods", "the --http-method help lists the values"),
            place(OCSF, "fn http_activity", "the HTTP Activity activity_id (99 Other by default)"),
            place(ECS, "fn api", "no case: the value passes through, upper-cased, as http.request.method"),
        ],
    },
    OpenEnum {
        name: "SecurityLogType",
        places: &[
            place(CLIENT, "SecurityLogType", "a variant for the value"),
            place(
                CLI_PARSERS,
                "fn parse_log_type",
                "takes SecurityLogType::KNOWN only: --log-type refuses the value until the variant exists",
            ),
            place(CLI_FLAGS, "SecurityFilters.log_types", "the --log-type help lists the values"),
            place(OCSF, "fn security_class", "the OCSF class (Entity Management by default)"),
            place(ECS, "fn security", "the ECS category (configuration by default)"),
        ],
    },
];

/// The open enum named `name`, if the client has one.
pub fn open_enum(name: &str) -> Option<&'static OpenEnum> {
    OPEN_ENUMS.iter().find(|e| e.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::REPLACEMENTS;

    /// Every replacement from `open_enum` has a row, and every row is such a replacement.
    #[test]
    fn the_table_covers_the_open_enums_the_client_replaces() {
        let replaced: Vec<&str> = REPLACEMENTS
            .iter()
            .filter(|(_, path)| path.contains("::open_enum::"))
            .map(|(name, _)| *name)
            .collect();
        let rows: Vec<&str> = OPEN_ENUMS.iter().map(|e| e.name).collect();
        assert_eq!(rows, replaced);
    }

    /// Each place is in the code: the file exists and holds the item.
    #[test]
    fn every_place_names_an_item_of_the_code() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for e in OPEN_ENUMS {
            assert_eq!(e.places[0].file, CLIENT, "{}: the type comes first", e.name);
            for p in e.places {
                let text = std::fs::read_to_string(root.join(p.file))
                    .unwrap_or_else(|err| panic!("{}: {err}", p.file));
                let needles: Vec<String> =
                    match (p.item.strip_prefix("fn "), p.item.split_once('.')) {
                        (Some(f), _) => vec![format!("fn {f}(")],
                        (None, Some((ty, field))) => {
                            vec![format!("struct {ty} "), format!("pub {field}: ")]
                        }
                        (None, None) => vec![format!("{} {{", p.item)],
                    };
                for n in needles {
                    assert!(text.contains(&n), "{}: {} is not in {}", e.name, n, p.file);
                }
            }
        }
    }
}
