//! The one export loop: reads what the library yields into a [`Writer`], until the export ends,
//! fails, or a stop is asked.

use crate::env::Env;
use crate::error::{explain, CliError};
use crate::kinds::LogKind;
use crate::writer::Writer;
use futures::{Stream, StreamExt};
use lago_audit_client::ExportEvent;

/// Reads `events` into `writer` until they end, fail, or Ctrl-C: the one export loop.
pub async fn drive<K, W, S>(env: &Env, events: S, writer: W) -> Result<(), CliError>
where
    K: LogKind,
    W: Writer<K>,
    S: Stream<Item = Result<ExportEvent<K::Record>, lago_audit_client::Error>> + Unpin,
{
    drive_until::<K, W, S>(env, events, writer, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

/// [`drive`], stopped by `stop` (Ctrl-C for [`drive`]; also SIGTERM for a shipper).
pub(crate) async fn drive_until<K, W, S>(
    env: &Env,
    mut events: S,
    mut writer: W,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), CliError>
where
    K: LogKind,
    W: Writer<K>,
    S: Stream<Item = Result<ExportEvent<K::Record>, lago_audit_client::Error>> + Unpin,
{
    tokio::pin!(stop);
    loop {
        let written = tokio::select! {
            event = events.next() => match event {
                None => return writer.finish().await,
                Some(Ok(ExportEvent::Record(r))) => writer.record(r).await,
                Some(Ok(ExportEvent::Checkpoint(c))) => writer.checkpoint(c).await,
                Some(Err(e)) => {
                    let error = explain(&e, &env.context::<K>());
                    return Err(writer.failed(error, false).await);
                }
            },
            () = &mut stop => return writer.interrupted().await,
        };
        if let Err(e) = written {
            return Err(writer.failed(e, true).await);
        }
    }
}
