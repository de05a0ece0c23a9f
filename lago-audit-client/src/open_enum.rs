//! Enums over the open lists Lago's server sends.
//!
//! Lago adds values without notice (a new activity source, an HTTP method its store already
//! knows, a new kind of security event). A closed enum would fail the whole page on one new value,
//! so these types keep any value they do not know in an `Other` arm, and write it back unchanged.
//! They replace the schemas of the same names when the client is generated.

macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this version of the client does not know, kept as sent.
            Other(String),
        }

        impl $name {
            /// The values this version of the client knows.
            pub const KNOWN: &'static [&'static str] = &[$($text),+];

            /// The value as Lago writes it.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $text, )+
                    Self::Other(s) => s,
                }
            }

            /// Whether this is a value the client does not know.
            pub fn is_other(&self) -> bool {
                matches!(self, Self::Other(_))
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    $( $text => Self::$variant, )+
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                match s.as_str() {
                    $( $text => Self::$variant, )+
                    _ => Self::Other(s),
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::convert::Infallible;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok(Self::from(s))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d).map(Self::from)
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> String {
                stringify!($name).to_owned()
            }

            fn json_schema(_: &mut schemars::gen::SchemaGenerator) -> schemars::schema::Schema {
                // Any string: values outside KNOWN are accepted by design.
                schemars::schema::SchemaObject {
                    instance_type: Some(schemars::schema::InstanceType::String.into()),
                    metadata: Some(Box::new(schemars::schema::Metadata {
                        description: Some(format!(
                            "One of {:?}, or a value added by Lago later.",
                            Self::KNOWN
                        )),
                        ..Default::default()
                    })),
                    ..Default::default()
                }
                .into()
            }
        }
    };
}

open_enum! {
    /// Where an action recorded in an activity log came from.
    ActivitySource {
        /// Through the REST API (with an API key).
        Api = "api",
        /// Through Lago's web application.
        Front = "front",
        /// By Lago itself (a scheduled job, a webhook from a payment provider, …).
        System = "system",
    }
}

open_enum! {
    /// The HTTP method of a logged API call. Lago logs only calls that change data.
    HttpMethod {
        /// `POST`
        Post = "post",
        /// `PUT`
        Put = "put",
        /// `DELETE`
        Delete = "delete",
    }
}

open_enum! {
    /// The kind of event a security log records.
    SecurityLogType {
        /// API keys: created, rotated, destroyed, permissions changed.
        ApiKey = "api_key",
        /// Billing entities.
        BillingEntity = "billing_entity",
        /// Data exports.
        Export = "export",
        /// Integrations.
        Integration = "integration",
        /// Roles.
        Role = "role",
        /// Users: sign-ups, log-ins, new devices, invitations.
        User = "user",
        /// Webhook endpoints.
        WebhookEndpoint = "webhook_endpoint",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_and_unknown_values_round_trip() {
        let v: ActivitySource = serde_json::from_str("\"front\"").unwrap();
        assert_eq!(v, ActivitySource::Front);
        let v: ActivitySource = serde_json::from_str("\"ai_agent\"").unwrap();
        assert_eq!(v, ActivitySource::Other("ai_agent".into()));
        assert!(v.is_other());
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"ai_agent\"");
        assert_eq!("get".parse::<HttpMethod>().unwrap().to_string(), "get");
        assert_eq!(SecurityLogType::from("api_key"), SecurityLogType::ApiKey);
    }

    #[test]
    fn non_strings_are_refused() {
        assert!(serde_json::from_str::<HttpMethod>("3").is_err());
        assert!(serde_json::from_str::<HttpMethod>("null").is_err());
    }
}
