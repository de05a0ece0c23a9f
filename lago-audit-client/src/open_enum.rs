//! Enums over the open lists Lago's server sends.
//!
//! Lago adds values without notice (a new activity source, an HTTP method its store already
//! knows, a new kind of security event). A closed enum would fail the whole page on one new value,
//! so these types keep any value they do not know in an `Other` arm, and write it back unchanged.
//! They replace the schemas of the same names when the client is generated.
//!
//! A known value always lands in its own variant, however the value is built: `Other` holds an
//! [`UnknownValue`], which can only be made from text this version does not know, so
//! `ActivitySource::from("api")` is `ActivitySource::Api` and no `Other` can hold `"api"`.
//!
//! ```
//! use lago_audit_client::ActivitySource;
//!
//! assert_eq!(ActivitySource::from("api"), ActivitySource::Api);
//! let new = ActivitySource::from("ai_agent");
//! assert!(matches!(&new, ActivitySource::Other(v) if v.as_str() == "ai_agent"));
//! ```

use std::fmt;

/// A value an open enum does not know, as Lago sent it. It cannot be built from a known value, so
/// a known value is never hidden in an `Other` arm.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UnknownValue(String);

impl UnknownValue {
    /// The value as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for UnknownValue {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for UnknownValue {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

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
            Other(UnknownValue),
        }

        impl $name {
            /// The values this version of the client knows.
            pub const KNOWN: &'static [&'static str] = &[$($text),+];

            /// The value as Lago writes it.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $text, )+
                    Self::Other(s) => s.as_str(),
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
                    other => Self::Other(UnknownValue(other.to_owned())),
                }
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                match s.as_str() {
                    $( $text => Self::$variant, )+
                    _ => Self::Other(UnknownValue(s)),
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
        /// `GET`: Lago logs only calls that change data, but its store knows this method too.
        Get = "get",
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
        assert_eq!(v, ActivitySource::from("ai_agent"));
        assert!(matches!(&v, ActivitySource::Other(u) if u == "ai_agent"));
        assert!(v.is_other());
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"ai_agent\"");
        assert_eq!("get".parse::<HttpMethod>().unwrap(), HttpMethod::Get);
        assert_eq!("patch".parse::<HttpMethod>().unwrap().to_string(), "patch");
        assert_eq!(SecurityLogType::from("api_key"), SecurityLogType::ApiKey);
    }

    #[test]
    fn known_values_always_land_in_their_variant() {
        for text in ActivitySource::KNOWN {
            for built in [
                ActivitySource::from(*text),
                ActivitySource::from(text.to_string()),
                text.parse().unwrap(),
                serde_json::from_value(serde_json::json!(text)).unwrap(),
            ] {
                assert!(!built.is_other(), "{text}");
                assert_eq!(built.as_str(), *text);
            }
        }
        assert!(HttpMethod::KNOWN
            .iter()
            .all(|m| !HttpMethod::from(*m).is_other()));
        assert!(SecurityLogType::KNOWN
            .iter()
            .all(|m| !SecurityLogType::from(*m).is_other()));
    }

    #[test]
    fn non_strings_are_refused() {
        assert!(serde_json::from_str::<HttpMethod>("3").is_err());
        assert!(serde_json::from_str::<HttpMethod>("null").is_err());
    }
}
