//! The files of a resumable `export -o FILE`: the data goes to `FILE.part`, the last safe point
//! to `FILE.checkpoint.json`, and `FILE.part` becomes `FILE` when the export ends.
//!
//! Exactly once, even when the process is killed at any instant: the checkpoint file records,
//! with the library's checkpoint, the length `FILE.part` had when that checkpoint was reached.
//! It is written only after the data up to that length is flushed and synced, and replaced
//! atomically (write a temporary file, sync, rename). A resume truncates `FILE.part` to that
//! length, dropping whatever was written after the checkpoint, and asks the library to continue
//! from it: the records after the checkpoint are then written again, once.
//!
//! When the export ends, `FILE.part` becomes `FILE` and the checkpoint file becomes its receipt:
//! the same file, marked finished, with the length `FILE` has. It is what lets `--resume` call a
//! file finished only when this command finished it: a file with no receipt beside it, a receipt
//! of another kind, format or filters, or a file whose length changed since, is refused.

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
    /// The export into `FILE` finished: `FILE` is whole, `bytes` long (the file is a receipt).
    #[serde(default)]
    pub finished: bool,
}

/// The export a `--resume` is asked to continue: the one it may continue, or call finished.
pub struct Expected<'a> {
    /// `activity-logs`, `api-logs`, `security-logs`.
    pub kind: &'a str,
    /// `--format`, when given (else the saved one).
    pub format: Option<Format>,
    /// The filters, as the checkpoint file records them.
    pub filters: &'a serde_json::Value,
    /// The kind's query parameters and their flags (`to_date`, `--to`).
    pub flags: &'a [(String, String)],
}

impl Expected<'_> {
    /// Why `saved` belongs to another export than this one, naming what differs.
    pub fn differs<C>(&self, saved: &Saved<C>, dest: &Path) -> Option<String> {
        if saved.kind != self.kind {
            return Some(format!(
                "the export into {} is of {}, not {}",
                dest.display(),
                saved.kind,
                self.kind
            ));
        }
        if let Some(format) = self.format.filter(|f| *f != saved.format) {
            return Some(format!(
                "--format {} differs from the {} of the export into {}",
                format.name(),
                saved.format.name(),
                dest.display()
            ));
        }
        let changes = filter_changes(&saved.filters, self.filters, self.flags);
        (!changes.is_empty()).then(|| {
            format!(
                "the filters differ from those of the export into {}: {}",
                dest.display(),
                changes.join("; ")
            )
        })
    }
}

/// The flags whose values differ between two exports' filters, each with both values:
/// `--from was 2025-03-01, is 2025-03-02`.
fn filter_changes(
    was: &serde_json::Value,
    is: &serde_json::Value,
    flags: &[(String, String)],
) -> Vec<String> {
    // `--from`/`--to` are kept as `window.from`/`window.to`; their parameters are `from_date`
    // and `to_date`.
    fn flatten(v: &serde_json::Value, out: &mut Vec<(String, serde_json::Value)>) {
        if let Some(map) = v.as_object() {
            for (k, v) in map {
                match (k.as_str(), v.as_object()) {
                    ("window", Some(w)) => {
                        for (k, v) in w {
                            out.push((format!("{k}_date"), v.clone()));
                        }
                    }
                    _ => out.push((k.clone(), v.clone())),
                }
            }
        }
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    flatten(was, &mut a);
    flatten(is, &mut b);
    let value = |list: &[(String, serde_json::Value)], key: &str| {
        list.iter()
            .find(|(k, _)| k == key)
            .map_or(serde_json::Value::Null, |(_, v)| v.clone())
    };
    let shown = |v: &serde_json::Value| match v {
        serde_json::Value::Null => "not given".to_owned(),
        serde_json::Value::Array(a) if a.is_empty() => "not given".to_owned(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut keys: Vec<&String> = a.iter().chain(&b).map(|(k, _)| k).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|key| {
            let (old, new) = (value(&a, key), value(&b, key));
            (shown(&old) != shown(&new)).then(|| {
                let flag = flags
                    .iter()
                    .find(|(id, _)| id == key)
                    .map_or(key.as_str(), |(_, f)| f.as_str());
                format!("{flag} was {}, is {}", shown(&old), shown(&new))
            })
        })
        .collect()
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
        // A receipt (the export into it finished) is replaced, as the file will be.
        let finished = std::fs::read(&checkpoint)
            .ok()
            .and_then(|t| serde_json::from_slice::<Saved<serde_json::Value>>(&t).ok())
            .is_some_and(|s| s.finished);
        if checkpoint.exists() && !finished && !restart {
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

    /// Reopens the interrupted export `expected` into `dest`, cut back to its last checkpoint;
    /// says when there is none to reopen: that export into `dest` finished, or never got to its
    /// first checkpoint (so `--resume` is always safe to pass, as with `wget -c`). Anything else
    /// at `dest` (a file no export finished, another export's) is refused.
    pub fn resume<C: DeserializeOwned + Serialize>(
        dest: &Path,
        expected: &Expected<'_>,
    ) -> Result<Resume<C>, CliError> {
        let checkpoint = checkpoint_path(dest);
        let refuse = |m: String| {
            CliError::new(Exit::Resume, m)
                .hint("run the export again without --resume to start it afresh")
        };
        let other = |m: String| {
            CliError::new(Exit::Resume, m).hint(
                "resume with the same command as the export into it, run it without --resume to \
                 replace the file, or choose another -o",
            )
        };
        let text = match std::fs::read(&checkpoint) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if !dest.exists() {
                    return Ok(Resume::NotStarted);
                }
                return Err(other(format!(
                    "{} was not written by an export of lago-audit (there is no {} beside it), \
                     so --resume cannot call it finished",
                    dest.display(),
                    checkpoint.display()
                )));
            }
            Err(e) => {
                return Err(CliError::io(
                    format!("cannot read {}", checkpoint.display()),
                    &e,
                ))
            }
        };
        let mut saved: Saved<C> = serde_json::from_slice(&text)
            .ok()
            .filter(|s: &Saved<C>| s.tool == TOOL && s.version == VERSION)
            .ok_or_else(|| {
                refuse(format!(
                    "{} is not a checkpoint this version of lago-audit can read",
                    checkpoint.display()
                ))
            })?;
        if let Some(why) = expected.differs(&saved, dest) {
            return Err(other(why));
        }
        let length = std::fs::metadata(dest)
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len());
        if saved.finished {
            return match length {
                // The file is gone: export it again.
                None => Ok(Resume::NotStarted),
                Some(n) if n == saved.bytes => Ok(Resume::Finished),
                Some(n) => Err(other(format!(
                    "{} changed since the export into it finished ({n} bytes, not {})",
                    dest.display(),
                    saved.bytes
                ))),
            };
        }
        if let (false, Some(n)) = (part_path(dest).exists(), length) {
            // Killed after the data took its final name, before the receipt was written.
            saved.finished = true;
            saved.bytes = n;
            write_atomically(&checkpoint, &saved)?;
            return Ok(Resume::Finished);
        }
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
        write_atomically(&self.checkpoint, saved)?;
        self.last_save = Some(Instant::now());
        Ok(())
    }

    /// Removes both files: an export that failed before writing anything leaves nothing behind.
    pub fn discard(self) {
        let _ = std::fs::remove_file(&self.checkpoint);
        let _ = std::fs::remove_file(&self.part);
    }

    /// Completes the export: the data file becomes `dest`, the checkpoint its receipt
    /// (`receipt`, marked finished, with the file's length).
    pub fn finish<C: Serialize>(mut self, mut receipt: Saved<C>) -> Result<(), CliError> {
        self.data.flush().map_err(|e| io_err(&self.part, &e))?;
        self.data
            .inner
            .get_ref()
            .sync_all()
            .map_err(|e| io_err(&self.part, &e))?;
        std::fs::rename(&self.part, &self.dest).map_err(|e| io_err(&self.dest, &e))?;
        sync_dir(parent_dir(&self.dest));
        receipt.finished = true;
        receipt.bytes = self.data.bytes();
        write_atomically(&self.checkpoint, &receipt)
    }
}

/// Replaces `path` with `saved`, whole or not at all: a temporary file beside it, synced, then
/// renamed over it.
fn write_atomically<C: Serialize>(path: &Path, saved: &Saved<C>) -> Result<(), CliError> {
    let tmp = beside(path, ".tmp");
    let text = serde_json::to_vec_pretty(saved).map_err(|e| io_err(&tmp, &io::Error::other(e)))?;
    (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(&text)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        sync_dir(parent_dir(path));
        Ok(())
    })()
    .map_err(|e: io::Error| io_err(path, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: serde_json::Value = serde_json::Value::Null;

    fn activity() -> Expected<'static> {
        Expected {
            kind: "activity-logs",
            format: None,
            filters: &NONE,
            flags: &[],
        }
    }

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
            filters: NONE,
            bytes: f.data.bytes(),
            records: 2,
            started: true,
            checkpoint: Some(7u32),
            finished: false,
        };
        f.save(&saved).unwrap();
        // Written after the checkpoint, then the process dies.
        f.data.write_all(b"three\nfou").unwrap();
        f.data.flush().unwrap();
        drop(f);
        assert!(matches!(ExportFiles::create(&dest, false), Err(e) if e.exit == Exit::Resume));
        let Ok(Resume::Continue(opened)) = ExportFiles::resume::<u32>(&dest, &activity()) else {
            panic!("an interrupted export resumes");
        };
        let (mut f, saved) = *opened;
        assert_eq!((saved.records, saved.checkpoint), (2, Some(7)));
        f.data.write_all(b"three\n").unwrap();
        f.finish(Saved {
            records: 3,
            ..saved
        })
        .unwrap();
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), "one\ntwo\nthree\n");
        assert!(!part_path(&dest).exists());
        // The checkpoint became the receipt of the finished file.
        let receipt: Saved<u32> =
            serde_json::from_slice(&std::fs::read(checkpoint_path(&dest)).unwrap()).unwrap();
        assert!(receipt.finished);
        assert_eq!((receipt.bytes, receipt.records), (14, 3));
        // A finished export is left as it is.
        assert!(matches!(
            ExportFiles::resume::<u32>(&dest, &activity()),
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
            ExportFiles::resume::<u32>(&dest, &activity()),
            Ok(Resume::NotStarted)
        ));
        // Killed after the data took its final name, before the receipt was written.
        let mut f = ExportFiles::create(&dest, false).unwrap();
        let saved = Saved {
            tool: TOOL.into(),
            version: VERSION,
            kind: "activity-logs".into(),
            format: Format::Ndjson,
            filters: NONE,
            bytes: 0,
            records: 0,
            started: false,
            checkpoint: None::<u32>,
            finished: false,
        };
        f.save(&saved).unwrap();
        drop(f);
        std::fs::write(&dest, "one\n").unwrap();
        std::fs::remove_file(part_path(&dest)).unwrap();
        assert!(matches!(
            ExportFiles::resume::<u32>(&dest, &activity()),
            Ok(Resume::Finished)
        ));
        let receipt: Saved<u32> =
            serde_json::from_slice(&std::fs::read(checkpoint_path(&dest)).unwrap()).unwrap();
        assert!(
            receipt.finished && receipt.bytes == 4,
            "the checkpoint became its receipt"
        );
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), "one\n");
    }

    #[test]
    fn resume_refuses_a_file_no_export_of_this_command_finished() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("other.ndjson");
        std::fs::write(&dest, "hello\n").unwrap();
        let Err(e) = ExportFiles::resume::<u32>(&dest, &activity()) else {
            panic!("a file with no receipt is not finished");
        };
        assert_eq!(e.exit, Exit::Resume);
        assert!(e.message.contains("not written by an export"), "{e}");
        // A receipt of another kind.
        let receipt = Saved {
            tool: TOOL.into(),
            version: VERSION,
            kind: "api-logs".into(),
            format: Format::Ndjson,
            filters: serde_json::json!({"window": {"from": "2025-03-01", "to": null}}),
            bytes: 6,
            records: 1,
            started: true,
            checkpoint: None::<u32>,
            finished: true,
        };
        write_atomically(&checkpoint_path(&dest), &receipt).unwrap();
        let Err(e) = ExportFiles::resume::<u32>(&dest, &activity()) else {
            panic!("another kind's file is not this export's");
        };
        assert!(e.message.contains("of api-logs, not activity-logs"), "{e}");
        // Its own kind, other filters: the flag is named.
        let filters = serde_json::json!({"window": {"from": "2025-03-02", "to": null}});
        let flags = [("from_date".to_owned(), "--from".to_owned())];
        let api = Expected {
            kind: "api-logs",
            format: None,
            filters: &filters,
            flags: &flags,
        };
        let Err(e) = ExportFiles::resume::<u32>(&dest, &api) else {
            panic!("other filters");
        };
        assert!(
            e.message.contains("--from was 2025-03-01, is 2025-03-02"),
            "{e}"
        );
        // The same export: finished, while the file is as it left it.
        let same = Expected {
            filters: &receipt.filters,
            ..api
        };
        assert!(matches!(
            ExportFiles::resume::<u32>(&dest, &same),
            Ok(Resume::Finished)
        ));
        std::fs::write(&dest, "hello, again\n").unwrap();
        let Err(e) = ExportFiles::resume::<u32>(&dest, &same) else {
            panic!("a file changed since is not finished");
        };
        assert!(e.message.contains("changed since"), "{e}");
    }
}
