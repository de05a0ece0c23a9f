//! The files of a resumable `export -o FILE`: the data goes to `FILE.part`, the last safe point
//! to `FILE.checkpoint.json`, and `FILE.part` becomes `FILE` when the export ends.
//!
//! Exactly once, even when the process is killed at any instant: the checkpoint file records,
//! with the library's checkpoint, the length `FILE.part` had when that checkpoint was reached.
//! It is written only after the data up to that length is flushed and synced, and replaced
//! atomically (write a temporary file, sync, rename). A resume truncates `FILE.part` to that
//! length, dropping whatever was written after the checkpoint, and asks the library to continue
//! from it: the records after the checkpoint are then written again, once.

use crate::error::{CliError, Exit};
use crate::output::{file_name, parent_dir, sync_dir, Format};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What the checkpoint file holds.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Saved<C> {
    /// Marks the file as this tool's.
    pub tool: String,
    /// The layout of this file.
    pub version: u32,
    /// `activity-logs`, `api-logs`, `security-logs`.
    pub kind: String,
    /// The output format (a resume must write the same one).
    pub format: Format,
    /// The filters, as given (a resume must use the same ones).
    pub filters: serde_json::Value,
    /// The length of the data file at this checkpoint.
    pub bytes: u64,
    /// The records in the data file at this checkpoint.
    pub records: u64,
    /// Whether the header (CSV, table) or opening bracket (JSON) is written.
    pub started: bool,
    /// The library's checkpoint; `None` before the first one.
    pub checkpoint: Option<C>,
}

/// Marks a checkpoint file as this tool's.
pub const TOOL: &str = "lago-audit export";
/// The layout of the checkpoint file.
pub const VERSION: u32 = 1;
/// The longest time between two saved checkpoints while records flow.
const SAVE_EVERY: Duration = Duration::from_millis(250);

/// A byte-counting writer over the data file.
pub struct DataFile {
    inner: BufWriter<File>,
    bytes: u64,
}

impl DataFile {
    /// The bytes written so far (including those before a resume).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Write for DataFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The data file and checkpoint file of one export.
pub struct ExportFiles {
    /// The data, until it is complete.
    pub data: DataFile,
    dest: PathBuf,
    part: PathBuf,
    checkpoint: PathBuf,
    last_save: Option<Instant>,
}

fn beside(dest: &Path, suffix: &str) -> PathBuf {
    parent_dir(dest).join(format!("{}{suffix}", file_name(dest)))
}

/// The checkpoint file kept beside `dest`.
pub fn checkpoint_path(dest: &Path) -> PathBuf {
    beside(dest, ".checkpoint.json")
}

/// The data file of an unfinished export into `dest`.
pub fn part_path(dest: &Path) -> PathBuf {
    beside(dest, ".part")
}

fn io_err(what: &Path, e: &io::Error) -> CliError {
    CliError::io(format!("cannot write {}", what.display()), e)
}

/// What `--resume` finds at a destination.
pub enum Resume<C> {
    /// An interrupted export, reopened at its last checkpoint.
    Continue(Box<(ExportFiles, Saved<C>)>),
    /// The export into it has finished: the file is whole.
    Finished,
    /// No export into it got to a checkpoint: start afresh.
    NotStarted,
}

impl ExportFiles {
    /// Starts a new export into `dest`. Refuses when an interrupted one is there, unless
    /// `restart`.
    pub fn create(dest: &Path, restart: bool) -> Result<Self, CliError> {
        let checkpoint = checkpoint_path(dest);
        if checkpoint.exists() && !restart {
            return Err(CliError::new(
                Exit::Resume,
                format!(
                    "an interrupted export into {} is there ({})",
                    dest.display(),
                    checkpoint.display()
                ),
            )
            .hint("add --resume to continue it, or --restart to discard it and start again"));
        }
        let part = part_path(dest);
        let file = File::create(&part).map_err(|e| io_err(&part, &e))?;
        Ok(Self {
            data: DataFile {
                inner: BufWriter::with_capacity(256 * 1024, file),
                bytes: 0,
            },
            dest: dest.to_owned(),
            part,
            checkpoint,
            last_save: None,
        })
    }

    /// Reopens an interrupted export into `dest`, cut back to its last checkpoint; says when
    /// there is none to reopen: the export into `dest` finished, or never got to its first
    /// checkpoint (so `--resume` is always safe to pass, as with `wget -c`).
    pub fn resume<C: DeserializeOwned>(dest: &Path) -> Result<Resume<C>, CliError> {
        let checkpoint = checkpoint_path(dest);
        let refuse = |m: String| {
            CliError::new(Exit::Resume, m)
                .hint("run the export again without --resume to start it afresh")
        };
        let text = match std::fs::read(&checkpoint) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(if dest.exists() {
                    Resume::Finished
                } else {
                    Resume::NotStarted
                });
            }
            Err(e) => {
                return Err(CliError::io(
                    format!("cannot read {}", checkpoint.display()),
                    &e,
                ))
            }
        };
        if !part_path(dest).exists() && dest.exists() {
            // Killed after the data took its final name, before the checkpoint went.
            std::fs::remove_file(&checkpoint).map_err(|e| io_err(&checkpoint, &e))?;
            return Ok(Resume::Finished);
        }
        let saved: Saved<C> = serde_json::from_slice(&text)
            .ok()
            .filter(|s: &Saved<C>| s.tool == TOOL && s.version == VERSION)
            .ok_or_else(|| {
                refuse(format!(
                    "{} is not a checkpoint this version of lago-audit can read",
                    checkpoint.display()
                ))
            })?;
        let part = part_path(dest);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&part)
            .map_err(|e| {
                refuse(format!(
                    "cannot open the unfinished data {}: {e}",
                    part.display()
                ))
            })?;
        let len = file.metadata().map_err(|e| io_err(&part, &e))?.len();
        if len < saved.bytes {
            return Err(refuse(format!(
                "{} holds {len} bytes, fewer than the {} its checkpoint recorded",
                part.display(),
                saved.bytes
            )));
        }
        file.set_len(saved.bytes).map_err(|e| io_err(&part, &e))?;
        file.seek(SeekFrom::Start(saved.bytes))
            .map_err(|e| io_err(&part, &e))?;
        Ok(Resume::Continue(Box::new((
            Self {
                data: DataFile {
                    inner: BufWriter::with_capacity(256 * 1024, file),
                    bytes: saved.bytes,
                },
                dest: dest.to_owned(),
                part,
                checkpoint,
                last_save: None,
            },
            saved,
        ))))
    }

    /// The destination, `FILE`.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Whether to save now: at the first safe point, then when enough time has passed.
    pub fn due(&self) -> bool {
        self.last_save.is_none_or(|t| t.elapsed() >= SAVE_EVERY)
    }

    /// Makes the data durable, then records `saved` (whose `bytes` must be the current length).
    pub fn save<C: Serialize>(&mut self, saved: &Saved<C>) -> Result<(), CliError> {
        self.data.flush().map_err(|e| io_err(&self.part, &e))?;
        self.data
            .inner
            .get_ref()
            .sync_data()
            .map_err(|e| io_err(&self.part, &e))?;
        let tmp = beside(&self.dest, ".checkpoint.json.tmp");
        let text =
            serde_json::to_vec_pretty(saved).map_err(|e| io_err(&tmp, &io::Error::other(e)))?;
        (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.checkpoint)
        })()
        .map_err(|e| io_err(&self.checkpoint, &e))?;
        self.last_save = Some(Instant::now());
        Ok(())
    }

    /// Removes both files: an export that failed before writing anything leaves nothing behind.
    pub fn discard(self) {
        let _ = std::fs::remove_file(&self.checkpoint);
        let _ = std::fs::remove_file(&self.part);
    }

    /// Completes the export: the data file becomes `dest`, the checkpoint goes.
    pub fn finish(mut self) -> Result<(), CliError> {
        self.data.flush().map_err(|e| io_err(&self.part, &e))?;
        self.data
            .inner
            .get_ref()
            .sync_all()
            .map_err(|e| io_err(&self.part, &e))?;
        std::fs::rename(&self.part, &self.dest).map_err(|e| io_err(&self.dest, &e))?;
        sync_dir(parent_dir(&self.dest));
        match std::fs::remove_file(&self.checkpoint) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(&self.checkpoint, &e)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resume_cuts_the_data_back_to_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.ndjson");
        let mut f = ExportFiles::create(&dest, false).unwrap();
        f.data.write_all(b"one\ntwo\n").unwrap();
        let saved = Saved {
            tool: TOOL.into(),
            version: VERSION,
            kind: "activity-logs".into(),
            format: Format::Ndjson,
            filters: serde_json::json!({}),
            bytes: f.data.bytes(),
            records: 2,
            started: true,
            checkpoint: Some(7u32),
        };
        f.save(&saved).unwrap();
        // Written after the checkpoint, then the process dies.
        f.data.write_all(b"three\nfou").unwrap();
        f.data.flush().unwrap();
        drop(f);
        assert!(matches!(ExportFiles::create(&dest, false), Err(e) if e.exit == Exit::Resume));
        let Ok(Resume::Continue(opened)) = ExportFiles::resume::<u32>(&dest) else {
            panic!("an interrupted export resumes");
        };
        let (mut f, saved) = *opened;
        assert_eq!((saved.records, saved.checkpoint), (2, Some(7)));
        f.data.write_all(b"three\n").unwrap();
        f.finish().unwrap();
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), "one\ntwo\nthree\n");
        assert!(!checkpoint_path(&dest).exists());
        assert!(!part_path(&dest).exists());
        // A finished export is left as it is.
        assert!(matches!(
            ExportFiles::resume::<u32>(&dest),
            Ok(Resume::Finished)
        ));
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), "one\ntwo\nthree\n");
    }

    #[test]
    fn resume_finds_nothing_started_or_an_export_killed_as_it_finished() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("trail.ndjson");
        // Nothing there: start afresh.
        assert!(matches!(
            ExportFiles::resume::<u32>(&dest),
            Ok(Resume::NotStarted)
        ));
        // Killed after the data took its final name, before the checkpoint was removed.
        std::fs::write(&dest, "one\n").unwrap();
        std::fs::write(checkpoint_path(&dest), "{}").unwrap();
        assert!(matches!(
            ExportFiles::resume::<u32>(&dest),
            Ok(Resume::Finished)
        ));
        assert!(
            !checkpoint_path(&dest).exists(),
            "the stale checkpoint goes"
        );
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), "one\n");
    }
}
