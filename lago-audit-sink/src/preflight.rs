//! Before a cloud store is used: does the environment (and the caller's options) hold what the
//! store needs? Without credentials, `object_store` falls back to the machine's metadata server
//! (`169.254.169.254`), which on a laptop or a CI runner either hangs for a while or answers
//! something unrelated, and the error that finally comes says nothing of the variables to set.
//! This check looks only at the environment and the options, never at the network, and says in
//! one line what is missing and which variables set it.
//!
//! The machine's own identity (an EC2 instance role, an Azure managed identity, a GCE service
//! account), which only the metadata server knows of, is used when asked for: by the store's own
//! setting (`AWS_METADATA_ENDPOINT`, `AZURE_MSI_ENDPOINT` / `IDENTITY_ENDPOINT`), or for any store
//! by [`INSTANCE_CREDENTIALS`]`=true`.
//!
//! What only the store can tell (a refused key, an unknown bucket or container, a bucket in
//! another region) comes from the first request, which a [`Sink`](crate::Sink) makes when it
//! opens, before anything is read from Lago.

use crate::error::SinkError;
use object_store::aws::AmazonS3ConfigKey;
use object_store::azure::AzureConfigKey;
use object_store::gcp::GoogleConfigKey;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

/// Set to `true` to let a store without credentials in the environment take them from the
/// machine's metadata server (its instance role, managed identity or service account).
pub const INSTANCE_CREDENTIALS: &str = "LAGO_SINK_INSTANCE_CREDENTIALS";

/// What a store lacks before it can be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Missing {
    /// The store: `S3`, `Azure Blob`, `Google Cloud Storage`.
    pub store: &'static str,
    /// What is missing: `no AWS credentials`.
    pub what: &'static str,
    /// The variables that set it, as a sentence part: `AWS_ACCESS_KEY_ID and …`.
    pub variables: &'static str,
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}; set {}", self.store, self.what, self.variables)
    }
}

/// The check [`Destination::parse_with_options`](crate::Destination::parse_with_options)
/// makes: an error naming what is missing, for an `s3`, `az` or `gs` URL whose store cannot be
/// used as the environment and `options` (lower-case keys) stand. Other URLs, and those the
/// parser will refuse anyway (no bucket, an unknown option), pass.
pub(crate) fn check(
    url: &str,
    parsed: &url::Url,
    options: &[(String, String)],
) -> Result<(), SinkError> {
    if parsed.host_str().is_none_or(str::is_empty) {
        return Ok(());
    }
    match missing_in(parsed.scheme(), options, &std::env::vars().collect()) {
        Some(m) => Err(SinkError::BadUrl {
            url: url.to_owned(),
            reason: m.to_string(),
        }),
        None => Ok(()),
    }
}

/// What the store of `url` lacks in this process's environment, with `options` (named as
/// `object_store` names them) on top; `None` when nothing is missing or `url` is not an
/// `s3`, `az` or `gs` URL.
pub fn missing<K: AsRef<str>, V: AsRef<str>>(url: &str, options: &[(K, V)]) -> Option<Missing> {
    let scheme = url.split_once("://")?.0;
    let options: Vec<(String, String)> = options
        .iter()
        .map(|(k, v)| (k.as_ref().to_ascii_lowercase(), v.as_ref().to_owned()))
        .collect();
    missing_in(scheme, &options, &std::env::vars().collect())
}

/// The settings present (non-empty), under the canonical names `K` gives them: the variables
/// with `prefix` and then the options. `None` when an option is not one of `K` (the parser
/// reports it).
fn settings<K: FromStr + AsRef<str>>(
    prefix: &str,
    options: &[(String, String)],
    env: &HashMap<String, String>,
) -> Option<HashMap<String, String>> {
    let mut found = HashMap::new();
    for (name, value) in env {
        if name.starts_with(prefix) && !value.is_empty() {
            if let Ok(key) = name.to_ascii_lowercase().parse::<K>() {
                found.insert(key.as_ref().to_owned(), value.clone());
            }
        }
    }
    for (name, value) in options {
        let key = name.parse::<K>().ok()?;
        if value.is_empty() {
            found.remove(key.as_ref());
        } else {
            found.insert(key.as_ref().to_owned(), value.clone());
        }
    }
    Some(found)
}

fn truthy(value: Option<&String>) -> bool {
    value.is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

/// [`missing`], with the environment given (so tests need not change the process's).
fn missing_in(
    scheme: &str,
    options: &[(String, String)],
    env: &HashMap<String, String>,
) -> Option<Missing> {
    let instance = truthy(env.get(INSTANCE_CREDENTIALS));
    match scheme {
        "s3" | "s3a" => {
            let s = settings::<AmazonS3ConfigKey>("AWS_", options, env)?;
            let has = |k: &str| s.contains_key(k);
            let (id, secret) = (has("aws_access_key_id"), has("aws_secret_access_key"));
            if id != secret {
                return Some(Missing {
                    store: "S3",
                    what: if id {
                        "AWS_ACCESS_KEY_ID is set without its secret"
                    } else {
                        "AWS_SECRET_ACCESS_KEY is set without its key id"
                    },
                    variables: "both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
                });
            }
            let credentials = id
                || has("aws_web_identity_token_file")
                || has("aws_container_credentials_relative_uri")
                || has("aws_container_credentials_full_uri")
                || has("aws_metadata_endpoint")
                || truthy(s.get("aws_skip_signature"))
                || instance;
            (!credentials).then_some(Missing {
                store: "S3",
                what: "no AWS credentials in the environment (the instance metadata server was \
                       not tried)",
                variables: "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN \
                            for temporary ones), or AWS_WEB_IDENTITY_TOKEN_FILE with \
                            AWS_ROLE_ARN; on EC2, AWS_METADATA_ENDPOINT=http://169.254.169.254 \
                            or LAGO_SINK_INSTANCE_CREDENTIALS=true uses the instance's role",
            })
        }
        "az" | "azure" | "abfs" | "abfss" => {
            let s = settings::<AzureConfigKey>("AZURE_", options, env)?;
            let has = |k: &str| s.contains_key(k);
            if truthy(s.get("azure_storage_use_emulator")) || truthy(s.get("azure_skip_signature"))
            {
                return None;
            }
            if !has("azure_storage_account_name") {
                return Some(Missing {
                    store: "Azure Blob",
                    what: "no storage account named",
                    variables: "AZURE_STORAGE_ACCOUNT_NAME (and AZURE_STORAGE_ACCOUNT_KEY), or \
                                AZURE_STORAGE_USE_EMULATOR=true for Azurite",
                });
            }
            let credentials = has("azure_storage_account_key")
                || has("azure_storage_sas_key")
                || has("azure_storage_token")
                || (has("azure_storage_client_secret") && has("azure_storage_client_id"))
                || has("azure_federated_token_file")
                || truthy(s.get("azure_use_azure_cli"))
                || has("azure_msi_endpoint")
                || has("azure_object_id")
                || has("azure_msi_resource_id")
                || env.get("IDENTITY_ENDPOINT").is_some_and(|v| !v.is_empty())
                || instance;
            (!credentials).then_some(Missing {
                store: "Azure Blob",
                what: "no credentials for the storage account in the environment (the managed \
                       identity endpoint was not tried)",
                variables: "AZURE_STORAGE_ACCOUNT_KEY, AZURE_STORAGE_SAS_KEY or \
                            AZURE_STORAGE_TOKEN, or AZURE_STORAGE_CLIENT_ID with \
                            AZURE_STORAGE_CLIENT_SECRET and AZURE_STORAGE_TENANT_ID; on an Azure \
                            VM, AZURE_MSI_ENDPOINT or LAGO_SINK_INSTANCE_CREDENTIALS=true uses its \
                            managed identity",
            })
        }
        "gs" => {
            let s = settings::<GoogleConfigKey>("GOOGLE_", options, env)?;
            let has = |k: &str| s.contains_key(k);
            let home = if cfg!(windows) { "APPDATA" } else { "HOME" };
            let adc = env.get(home).is_some_and(|h| {
                std::path::Path::new(h)
                    .join(".config/gcloud/application_default_credentials.json")
                    .is_file()
            });
            let credentials = has("google_service_account")
                || has("google_service_account_key")
                || has("google_application_credentials")
                || has("google_bearer_token")
                || env.get("SERVICE_ACCOUNT").is_some_and(|v| !v.is_empty())
                || truthy(s.get("google_skip_signature"))
                || adc
                || instance;
            (!credentials).then_some(Missing {
                store: "Google Cloud Storage",
                what: "no Google credentials in the environment (the metadata server was not \
                       tried)",
                variables: "GOOGLE_APPLICATION_CREDENTIALS or GOOGLE_SERVICE_ACCOUNT to a key \
                            file, or GOOGLE_SERVICE_ACCOUNT_KEY to its JSON (`gcloud auth \
                            application-default login` writes one); on GCE, \
                            LAGO_SINK_INSTANCE_CREDENTIALS=true uses the instance's account",
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn opts(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn each_store_names_what_is_missing_and_the_variables() {
        let none = env(&[("HOME", "/nonexistent"), ("PATH", "/bin")]);
        let s3 = missing_in("s3", &[], &none).unwrap();
        assert!(s3.to_string().starts_with("S3: no AWS credentials"), "{s3}");
        assert!(s3.variables.contains("AWS_ACCESS_KEY_ID"));
        let half = missing_in("s3", &[], &env(&[("AWS_ACCESS_KEY_ID", "AKIA")])).unwrap();
        assert!(half.what.contains("without its secret"), "{half}");
        let az = missing_in("az", &[], &none).unwrap();
        assert!(az.variables.contains("AZURE_STORAGE_ACCOUNT_NAME"), "{az}");
        let az = missing_in("az", &[], &env(&[("AZURE_STORAGE_ACCOUNT_NAME", "acct")])).unwrap();
        assert!(az.variables.contains("AZURE_STORAGE_ACCOUNT_KEY"), "{az}");
        let gs = missing_in("gs", &[], &none).unwrap();
        assert!(
            gs.variables.contains("GOOGLE_APPLICATION_CREDENTIALS"),
            "{gs}"
        );
        assert!(gs.to_string().lines().count() == 1);
    }

    #[test]
    fn credentials_from_the_environment_or_the_options_pass() {
        let aws = env(&[("AWS_ACCESS_KEY_ID", "k"), ("AWS_SECRET_ACCESS_KEY", "s")]);
        assert_eq!(missing_in("s3", &[], &aws), None);
        let given = opts(&[("aws_access_key_id", "k"), ("aws_secret_access_key", "s")]);
        assert_eq!(missing_in("s3", &given, &env(&[])), None);
        // An option that blanks a variable takes it away.
        let blank = opts(&[("aws_secret_access_key", "")]);
        assert!(missing_in("s3", &blank, &aws).is_some());
        let azurite = env(&[("AZURE_STORAGE_USE_EMULATOR", "true")]);
        assert_eq!(missing_in("az", &[], &azurite), None);
        let key = env(&[
            ("AZURE_STORAGE_ACCOUNT_NAME", "acct"),
            ("AZURE_STORAGE_ACCOUNT_KEY", "a2V5"),
        ]);
        assert_eq!(missing_in("az", &[], &key), None);
        let gs = env(&[("GOOGLE_SERVICE_ACCOUNT", "/keys/sa.json")]);
        assert_eq!(missing_in("gs", &[], &gs), None);
        // The machine's identity, when asked for.
        let instance = env(&[(INSTANCE_CREDENTIALS, "true")]);
        assert_eq!(missing_in("s3", &[], &instance), None);
        assert_eq!(missing_in("gs", &[], &instance), None);
        let imds = env(&[("AWS_METADATA_ENDPOINT", "http://169.254.169.254")]);
        assert_eq!(missing_in("s3", &[], &imds), None);
        // Not a cloud store, or an option the parser will refuse: nothing to say here.
        assert_eq!(missing_in("file", &[], &env(&[])), None);
        assert_eq!(
            missing_in("s3", &opts(&[("no_such_key", "1")]), &env(&[])),
            None
        );
    }
}
