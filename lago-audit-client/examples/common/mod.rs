//! What every example shares: a client for your Lago, or for the bundled fake when no key is set.

// Each example uses a part of this module.
#![allow(dead_code)]

use lago_audit_client::{config, Client, ClientBuilder};
use lago_audit_fake::FakeLago;
use std::io::{self, Write};

/// A client for Lago when `LAGO_API_KEY` is set (region from `LAGO_REGION` or `LAGO_API_URL`),
/// else for the bundled fake on a loopback port, which is returned too so it lives as long as the
/// client. `LAGO_API_URL` or `LAGO_REGION` without a key is an error, not silently ignored.
pub async fn connect() -> Result<(Option<FakeLago>, Client), Box<dyn std::error::Error>> {
    let builder = ClientBuilder::from_env();
    if builder.has_api_key() {
        return Ok((None, builder.build()?));
    }
    for var in [config::ENV_API_URL, config::ENV_REGION] {
        if std::env::var_os(var).is_some_and(|v| !v.is_empty()) {
            return Err(format!(
                "{var} is set but {} is not: set the key too, or unset {var} to use the built-in fake",
                config::ENV_API_KEY
            )
            .into());
        }
    }
    let fake = FakeLago::builder().start().await?;
    eprintln!(
        "{} is not set: using the built-in fake Lago at {}",
        config::ENV_API_KEY,
        fake.base_url()
    );
    let client = ClientBuilder::new(fake.api_key())
        .base_url(fake.base_url())
        .build()?;
    Ok((Some(fake), client))
}

/// Writes one line to standard output. `Ok(false)` when the reader went away (`| head`), so the
/// example can stop quietly instead of panicking like `println!`.
pub fn out(line: std::fmt::Arguments<'_>) -> io::Result<bool> {
    let mut stdout = io::stdout().lock();
    match stdout
        .write_fmt(line)
        .and_then(|()| stdout.write_all(b"\n"))
    {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e),
    }
}

/// Runs an example's body and exits with its error, printed once, on failure.
pub fn exit_on_error(result: Result<(), Box<dyn std::error::Error>>) {
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
