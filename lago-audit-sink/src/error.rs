//! The errors of a sink.

/// Everything that can go wrong while delivering a trail. The [`Display`](std::fmt::Display)
/// text says what happened and what to do; [`SinkError::is_transient`] tells a caller (a shipper
/// that runs for months) whether waiting and calling again can help.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The destination URL cannot be used.
    #[error("destination `{url}`: {reason}")]
    BadUrl {
        /// The URL as given (credentials never appear: such URLs are refused before this).
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// The object store failed (after its own retries and this crate's).
    #[error("object store, {operation} {path}: {source}")]
    Store {
        /// What was being done (`put`, `get`, `list`).
        operation: &'static str,
        /// The object's path in the store.
        path: String,
        /// The store's error.
        #[source]
        source: object_store::Error,
    },
    /// Another writer holds the prefix, or appended to its checkpoint chain first. Nothing was
    /// written by this writer after that was found.
    #[error(
        "another exporter is writing to `{prefix}`: {holder} holds it (stop the other exporter, \
         or give each its own prefix; if it is gone for good, wait for its lease or take over)"
    )]
    Concurrent {
        /// The `{prefix}/{kind}` the checkpoint belongs to.
        prefix: String,
        /// Who holds it: a process and host, and until when.
        holder: String,
    },
    /// The store does not refuse what exactly-once rests on (checked when a sink opens).
    #[error(
        "the store at `{prefix}` cannot be trusted with an archive: {missing}; a second writer \
         or a retried upload could overwrite data there (use a store that honours \
         If-None-Match and If-Match, or accept the risk explicitly)"
    )]
    Untrusted {
        /// The `{prefix}/{kind}` checked.
        prefix: String,
        /// The behaviour the store lacks.
        missing: String,
    },
    /// An upload did not finish within half of the writer's lease: it was given up, so that it
    /// cannot land after another writer took over.
    #[error(
        "the upload of `{path}` did not finish within half of the lease ({lease:?}); it was \
         given up"
    )]
    Stalled {
        /// The object's path.
        path: String,
        /// The writer's lease.
        lease: std::time::Duration,
    },
    /// An object exists where this writer would put one, with other content. Nothing was
    /// overwritten.
    #[error(
        "object `{path}` already exists with other content; it was left as it is (was the prefix \
         written by another tool, or with other filters?)"
    )]
    Conflict {
        /// The object's path.
        path: String,
    },
    /// The checkpoint at the destination cannot be used with this writer.
    #[error("checkpoint `{path}`: {reason}")]
    Checkpoint {
        /// The checkpoint's path.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The destination holds objects this writer cannot account for.
    #[error("destination `{prefix}`: {reason}")]
    Layout {
        /// The `{prefix}/{kind}` concerned.
        prefix: String,
        /// What was found.
        reason: String,
    },
    /// The export's stream of events broke a promise the writer relies on (a record older than
    /// a confirmed checkpoint). Nothing was written for it.
    #[error("export out of order: {0}")]
    OutOfOrder(String),
    /// The export (reading from Lago) failed.
    #[error("reading from Lago: {0}")]
    Export(#[from] lago_audit_client::Error),
    /// A record could not be encoded.
    #[error("encoding a record: {0}")]
    Encode(String),
}

impl SinkError {
    /// Whether the store refused the credentials (401 or 403): expired, revoked, or never
    /// allowed to do this.
    pub fn refused_credentials(&self) -> bool {
        matches!(
            self,
            SinkError::Store {
                source: object_store::Error::Unauthenticated { .. }
                    | object_store::Error::PermissionDenied { .. },
                ..
            }
        )
    }

    /// Whether calling again later (after backoff) can succeed: store and transport failures and
    /// Lago's temporary answers are; a concurrent exporter, a conflict, a bad URL are not.
    pub fn is_transient(&self) -> bool {
        match self {
            SinkError::Store { source, .. } => !matches!(
                source,
                object_store::Error::NotImplemented { .. }
                    | object_store::Error::NotSupported { .. }
                    | object_store::Error::InvalidPath { .. }
                    | object_store::Error::PermissionDenied { .. }
                    | object_store::Error::Unauthenticated { .. }
                    | object_store::Error::UnknownConfigurationKey { .. }
            ),
            SinkError::Stalled { .. } => true,
            SinkError::Export(e) => match e {
                lago_audit_client::Error::Transport(_) => true,
                lago_audit_client::Error::Api(api) => {
                    api.status.as_u16() == 429 || api.status.is_server_error()
                }
                _ => false,
            },
            _ => false,
        }
    }
}
