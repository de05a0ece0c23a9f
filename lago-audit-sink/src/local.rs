//! A local directory as a durable, create-only object store.
//!
//! `object_store`'s [`LocalFileSystem`] stages an upload as `{name}#{n}` beside its final name:
//! a reader of the prefix (Hive, Spark, Athena) takes a staging file left by a kill for data.
//! Here a create stages under a name that readers skip (a leading `.`), syncs the file, links it
//! into place only if the name is free, and syncs the directory, so an object or chain record
//! that a later record depends on survives a power cut. Every other operation is
//! [`LocalFileSystem`]'s, with its own fsync on.

use async_trait::async_trait;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};
use std::fs::File;
use std::io::{ErrorKind, Write};
use std::path::PathBuf;

/// A directory of objects: [`LocalFileSystem`] with durable, create-only uploads.
#[derive(Debug)]
pub(crate) struct LocalDir {
    inner: LocalFileSystem,
    root: PathBuf,
}

impl LocalDir {
    pub(crate) fn new(root: PathBuf) -> Result<Self> {
        Ok(Self {
            inner: LocalFileSystem::new_with_prefix(&root)?.with_fsync(true),
            root,
        })
    }
}

impl std::fmt::Display for LocalDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LocalDir({})", self.root.display())
    }
}

fn io_error(path: &std::path::Path, e: std::io::Error) -> object_store::Error {
    object_store::Error::Generic {
        store: "LocalDir",
        source: format!("{}: {e}", path.display()).into(),
    }
}

fn sync_dir(dir: &std::path::Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Creates `dir` and its missing parents, syncing the parent of each one created.
fn create_dirs(dir: &std::path::Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dirs(parent)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e),
    }
    match dir.parent() {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

/// Writes `payload` at `path` only if absent, durably: staged as `.{name}.{uuid}.tmp`, synced,
/// hard-linked into place, unlinked, and the directory synced.
fn create_durably(path: &std::path::Path, payload: PutPayload) -> Result<PutResult> {
    let dir = path
        .parent()
        .ok_or_else(|| io_error(path, ErrorKind::InvalidInput.into()))?;
    create_dirs(dir).map_err(|e| io_error(dir, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staging = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let written = (|| {
        let mut file = File::options()
            .write(true)
            .create_new(true)
            .open(&staging)?;
        for chunk in payload.iter() {
            file.write_all(chunk)?;
        }
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&staging);
        return Err(io_error(&staging, e));
    }
    let linked = std::fs::hard_link(&staging, path);
    let _ = std::fs::remove_file(&staging);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            return Err(object_store::Error::AlreadyExists {
                path: path.display().to_string(),
                source: e.into(),
            })
        }
        Err(e) => return Err(io_error(path, e)),
    }
    sync_dir(dir).map_err(|e| io_error(dir, e))?;
    Ok(PutResult {
        e_tag: None,
        version: None,
        extensions: Default::default(),
    })
}

#[async_trait]
impl ObjectStore for LocalDir {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        if opts.mode != PutMode::Create || !opts.attributes.is_empty() {
            return self.inner.put_opts(location, payload, opts).await;
        }
        let path = self.inner.path_to_filesystem(location)?;
        tokio::task::spawn_blocking(move || create_durably(&path, payload))
            .await
            .map_err(|source| object_store::Error::JoinError { source })?
    }
    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }
    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }
    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }
    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;

    #[tokio::test]
    async fn creates_once_and_leaves_no_file_a_reader_would_take() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDir::new(dir.path().to_owned()).unwrap();
        let path = Path::from("kind/dt=2025-03-01/a.ndjson.gz");
        let create = || PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        store
            .put_opts(&path, PutPayload::from("one"), create())
            .await
            .unwrap();
        let again = store
            .put_opts(&path, PutPayload::from("two"), create())
            .await
            .unwrap_err();
        assert!(
            matches!(again, object_store::Error::AlreadyExists { .. }),
            "{again}"
        );
        let got = store.get(&path).await.unwrap().bytes().await.unwrap();
        assert_eq!(&got[..], b"one");
        let names: Vec<_> = std::fs::read_dir(dir.path().join("kind/dt=2025-03-01"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["a.ndjson.gz"], "a staging file was left");
    }
}
