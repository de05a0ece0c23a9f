//! `export` and `tail`, on the library's exactly-once export (not in this build yet).

use crate::cli::{ExportArgs, TailArgs};
use crate::error::{CliError, Exit};
use crate::kinds::LogKind;
use crate::run::Env;

/// `export`: waits for the library's exactly-once export.
pub async fn export<K: LogKind>(
    _env: &Env,
    _filters: &K::Filters,
    _args: &ExportArgs,
) -> Result<(), CliError> {
    Err(CliError::new(
        Exit::Failure,
        "export is not available in this build yet",
    ))
}

/// `tail`: waits for the library's follow stream.
pub async fn tail<K: LogKind>(
    _env: &Env,
    _filters: &K::Filters,
    _args: &TailArgs,
) -> Result<(), CliError> {
    Err(CliError::new(
        Exit::Failure,
        "tail is not available in this build yet",
    ))
}
