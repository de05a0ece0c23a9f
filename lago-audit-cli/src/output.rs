//! Output formats (table, JSON, NDJSON, CSV), written one record at a time so memory stays
//! constant whatever the number of records, to stdout or atomically to a file.

use crate::error::{CliError, Exit};
use crate::kinds::LogKind;
use crate::rows::Column;
use lago_audit_sink::SinkRecord;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

/// An output format.
#[derive(
    clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Aligned columns that fit the terminal's width (80 when not a terminal).
    Table,
    /// One JSON array of records.
    Json,
    /// One JSON record per line (for jq, SIEMs, `grep`).
    Ndjson,
    /// A header line, then one row per record; maps are JSON text in one column.
    Csv,
    /// One OCSF 1.8.0 event per line (the mapping in lago-audit-sink's README).
    Ocsf,
    /// One Elastic Common Schema document per line.
    Ecs,
}

impl Format {
    /// The name `--format` takes.
    pub fn name(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Json => "json",
            Format::Ndjson => "ndjson",
            Format::Csv => "csv",
            Format::Ocsf => "ocsf",
            Format::Ecs => "ecs",
        }
    }

    /// The line format an object store is written in; `None` for the formats it cannot hold.
    pub fn sink(self) -> Option<lago_audit_sink::Format> {
        match self {
            Format::Ndjson => Some(lago_audit_sink::Format::Lago),
            Format::Ocsf => Some(lago_audit_sink::Format::Ocsf),
            Format::Ecs => Some(lago_audit_sink::Format::Ecs),
            Format::Table | Format::Json | Format::Csv => None,
        }
    }

    /// The format to use when none was asked for: a table for a person at a terminal, NDJSON
    /// for a program or a file.
    pub fn default_for(to_file: bool) -> Format {
        if !to_file && io::stdout().is_terminal() {
            Format::Table
        } else {
            Format::Ndjson
        }
    }
}

/// The width tables are laid out for: the terminal's, or 80 when stdout is not a terminal.
pub fn table_width(to_file: bool) -> usize {
    if to_file {
        return 80;
    }
    match terminal_size::terminal_size_of(io::stdout()) {
        Some((terminal_size::Width(w), _)) if w >= 20 => usize::from(w),
        _ => 80,
    }
}

/// Chooses which columns to show and how wide, so a row fits in `width` characters: drops the
/// least useful columns until the rest fit at their narrowest, then widens them in order.
pub fn layout(columns: &[Column], width: usize) -> Vec<(usize, usize)> {
    let mut keep: Vec<usize> = (0..columns.len()).collect();
    let need = |keep: &[usize]| -> usize {
        keep.iter().map(|&i| columns[i].min).sum::<usize>() + 2 * keep.len().saturating_sub(1)
    };
    while need(&keep) > width {
        let Some(pos) = keep
            .iter()
            .enumerate()
            .filter(|(_, &i)| columns[i].drop_order > 0)
            .max_by_key(|(_, &i)| columns[i].drop_order)
            .map(|(pos, _)| pos)
        else {
            break;
        };
        keep.remove(pos);
    }
    // Share what is left one character at a time, so every column gets closer to its widest.
    let mut spare = width.saturating_sub(need(&keep));
    let mut widths: Vec<(usize, usize)> = keep.iter().map(|&i| (i, columns[i].min)).collect();
    while spare > 0 {
        let mut grew = false;
        for (i, w) in widths.iter_mut() {
            if spare > 0 && *w < columns[*i].max {
                *w += 1;
                spare -= 1;
                grew = true;
            }
        }
        if !grew {
            break;
        }
    }
    widths
}

/// `text` cut or padded to exactly `width` characters, control characters shown as spaces.
fn fit(text: &str, width: usize, pad: bool, out: &mut String) {
    let count = text.chars().count();
    let clean = |c: char| if c.is_control() { ' ' } else { c };
    if count > width {
        out.extend(text.chars().take(width.saturating_sub(1)).map(clean));
        out.push('…');
    } else {
        out.extend(text.chars().map(clean));
        if pad {
            out.extend(std::iter::repeat_n(' ', width - count));
        }
    }
}

/// One CSV field, quoted when it must be (RFC 4180).
fn csv_field(field: &str, out: &mut String) {
    if field.contains([',', '"', '\n', '\r']) || field.starts_with(' ') || field.ends_with(' ') {
        out.push('"');
        out.push_str(&field.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(field);
    }
}

fn csv_line(fields: &[impl AsRef<str>]) -> String {
    let mut line = String::new();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        csv_field(f.as_ref(), &mut line);
    }
    line.push('\n');
    line
}

/// Writes records of kind `K` in one format, one at a time.
pub struct Emitter<K> {
    format: Format,
    layout: Vec<(usize, usize)>,
    records: u64,
    started: bool,
    _kind: PhantomData<fn(&K)>,
}

impl<K: LogKind> Emitter<K> {
    /// An emitter at the start of its output; tables are laid out for `width` characters.
    pub fn new(format: Format, width: usize) -> Self {
        Self {
            format,
            layout: layout(K::COLUMNS, width),
            records: 0,
            started: false,
            _kind: PhantomData,
        }
    }

    /// An emitter continuing an output that already holds `records` records (and the header).
    pub fn resumed(format: Format, width: usize, records: u64, started: bool) -> Self {
        Self {
            records,
            started,
            ..Self::new(format, width)
        }
    }

    /// The format written.
    pub fn format(&self) -> Format {
        self.format
    }

    /// How many records were written (including those before a resume).
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Whether the header (or the opening bracket) has been written.
    pub fn started(&self) -> bool {
        self.started
    }

    fn begin(&mut self, w: &mut impl Write) -> io::Result<()> {
        if self.started {
            return Ok(());
        }
        self.started = true;
        match self.format {
            Format::Json => w.write_all(b"["),
            Format::Ndjson | Format::Ocsf | Format::Ecs => Ok(()),
            Format::Csv => w.write_all(csv_line(K::CSV_HEADER).as_bytes()),
            Format::Table => {
                let titles: Vec<String> = K::COLUMNS.iter().map(|c| c.title.to_owned()).collect();
                w.write_all(self.table_line(&titles).as_bytes())
            }
        }
    }

    fn table_line(&self, cells: &[String]) -> String {
        let mut line = String::new();
        for (n, &(i, width)) in self.layout.iter().enumerate() {
            if n > 0 {
                line.push_str("  ");
            }
            let last = n + 1 == self.layout.len();
            fit(
                cells.get(i).map_or("", String::as_str),
                width,
                !last,
                &mut line,
            );
        }
        line.truncate(line.trim_end().len());
        line.push('\n');
        line
    }

    /// Writes one record.
    pub fn record(&mut self, w: &mut impl Write, record: &K::Record) -> io::Result<()> {
        self.begin(w)?;
        match self.format {
            Format::Json => {
                w.write_all(if self.records == 0 { b"\n  " } else { b",\n  " })?;
                serde_json::to_writer(&mut *w, record)?;
            }
            Format::Ndjson => {
                serde_json::to_writer(&mut *w, record)?;
                w.write_all(b"\n")?;
            }
            Format::Ocsf => {
                serde_json::to_writer(&mut *w, &record.to_ocsf())?;
                w.write_all(b"\n")?;
            }
            Format::Ecs => {
                serde_json::to_writer(&mut *w, &record.to_ecs())?;
                w.write_all(b"\n")?;
            }
            Format::Csv => w.write_all(csv_line(&K::csv_row(record)).as_bytes())?,
            Format::Table => w.write_all(self.table_line(&K::table_row(record)).as_bytes())?,
        }
        self.records += 1;
        Ok(())
    }

    /// Ends the output (the JSON array's closing bracket; a header even with no record).
    pub fn end(&mut self, w: &mut impl Write) -> io::Result<()> {
        self.begin(w)?;
        if self.format == Format::Json {
            w.write_all(if self.records == 0 { b"]\n" } else { b"\n]\n" })?;
        }
        Ok(())
    }
}

/// Writes one record on its own: `get`'s output. A table shows one field per line.
pub fn single<K: LogKind>(
    w: &mut impl Write,
    format: Format,
    width: usize,
    record: &K::Record,
) -> io::Result<()> {
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *w, record)?;
            w.write_all(b"\n")
        }
        Format::Table => {
            let key_width = K::CSV_HEADER.iter().map(|h| h.len()).max().unwrap_or(0);
            for (key, value) in K::CSV_HEADER.iter().zip(K::csv_row(record)) {
                let mut line = format!("{key:<key_width$}  ");
                fit(
                    &value,
                    width.saturating_sub(key_width + 2).max(8),
                    false,
                    &mut line,
                );
                line.push('\n');
                w.write_all(line.as_bytes())?;
            }
            Ok(())
        }
        Format::Ndjson | Format::Csv | Format::Ocsf | Format::Ecs => {
            let mut e = Emitter::<K>::new(format, width);
            e.record(w, record)?;
            e.end(w)
        }
    }
}

/// Where output goes: stdout, or a temporary file renamed over the destination at the end.
pub enum Output {
    /// Standard output.
    Stdout(BufWriter<io::Stdout>),
    /// A temporary file in the destination's folder.
    File {
        /// The temporary file.
        file: BufWriter<tempfile::NamedTempFile>,
        /// Where it goes when complete.
        dest: PathBuf,
    },
}

impl Output {
    /// Opens stdout, or a temporary file beside `path`.
    pub fn open(path: Option<&Path>) -> Result<Output, CliError> {
        match path {
            None => Ok(Output::Stdout(BufWriter::with_capacity(
                64 * 1024,
                io::stdout(),
            ))),
            Some(dest) => {
                let dir = parent_dir(dest);
                let tmp = tempfile::Builder::new()
                    .prefix(&format!(".{}.", file_name(dest)))
                    .suffix(".tmp")
                    .tempfile_in(dir)
                    .map_err(|e| {
                        CliError::io(format!("cannot create a file in {}", dir.display()), &e)
                    })?;
                Ok(Output::File {
                    file: BufWriter::with_capacity(64 * 1024, tmp),
                    dest: dest.to_owned(),
                })
            }
        }
    }

    /// Flushes stdout, or moves the finished file into place.
    pub fn commit(self) -> Result<(), CliError> {
        match self {
            Output::Stdout(mut w) => w.flush().map_err(|e| write_error(&e, None)),
            Output::File { file, dest } => {
                let tmp = file
                    .into_inner()
                    .map_err(|e| write_error(e.error(), Some(&dest)))?;
                tmp.as_file()
                    .sync_all()
                    .map_err(|e| write_error(&e, Some(&dest)))?;
                tmp.persist(&dest)
                    .map_err(|e| write_error(&e.error, Some(&dest)))?;
                sync_dir(parent_dir(&dest));
                Ok(())
            }
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Stdout(w) => w.write(buf),
            Output::File { file, .. } => file.write(buf),
        }
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Output::Stdout(w) => w.write_all(buf),
            Output::File { file, .. } => file.write_all(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout(w) => w.flush(),
            Output::File { file, .. } => file.flush(),
        }
    }
}

/// The URL of an object store when `-o` names one (`file:///dir`, `s3://…`, `az://…`,
/// `gs://…`) rather than a file.
pub fn store_url(output: Option<&Path>) -> Option<&str> {
    let s = output?.to_str()?;
    let (scheme, _) = s.split_once("://")?;
    let known = ["file", "s3", "s3a", "az", "azure", "abfs", "abfss", "gs"];
    known.contains(&scheme).then_some(s)
}

/// Checks what `-o` names before anything is read: a supported object store URL, or a file that
/// is not a directory. A mistyped URL (`s3:/bucket`, `S3://bucket`, `https://…`) would otherwise
/// become a local file of that odd name, and a directory would fail only once every record was
/// read.
pub fn check_output(output: Option<&Path>) -> Result<(), CliError> {
    let Some(path) = output else { return Ok(()) };
    if store_url(output).is_some() {
        return Ok(());
    }
    let text = path.to_string_lossy();
    if let Some(why) = mistyped_url(&text) {
        return Err(CliError::new(Exit::Usage, format!("-o {text}: {why}"))
            .hint(format!("-o takes a file, or {}", crate::error::STORE_FORMS)));
    }
    let dir_like = text.ends_with('/') || text.ends_with(std::path::MAIN_SEPARATOR);
    if dir_like || path.is_dir() {
        return Err(CliError::new(
            Exit::Usage,
            format!("-o {text}: is a directory; -o names the file to write"),
        )
        .hint(format!(
            "name a file in it (-o {}/FILE), or give export and tail a directory as a URL: \
             file:///absolute/dir",
            text.trim_end_matches(['/', std::path::MAIN_SEPARATOR])
        )));
    }
    Ok(())
}

/// Why `text` looks like a URL this tool does not take, if it does: a scheme it knows in the
/// wrong case or with one slash, or a scheme of its own (`https://`).
fn mistyped_url(text: &str) -> Option<String> {
    let (scheme, rest) = text.split_once(':')?;
    let looks_like_scheme = scheme.len() >= 2
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !looks_like_scheme {
        return None;
    }
    let lower = scheme.to_ascii_lowercase();
    let supported = ["file", "s3", "s3a", "az", "azure", "abfs", "abfss", "gs"];
    if supported.contains(&lower.as_str()) {
        let body = rest.trim_start_matches('/');
        let fixed = if lower == "file" {
            format!("file:///{body}")
        } else {
            format!("{lower}://{body}")
        };
        return Some(if scheme != lower {
            format!("URL schemes are lower case: did you mean {fixed}?")
        } else {
            format!("not a well-formed URL: did you mean {fixed}?")
        });
    }
    if rest.starts_with("//") {
        return Some(match lower.as_str() {
            "http" | "https" => "an http(s) URL is not a destination; for an S3-compatible \
                                 server, -o s3://bucket/prefix with AWS_ENDPOINT_URL set to it"
                .to_owned(),
            other => format!("`{other}://` is not a destination this tool writes to"),
        });
    }
    None
}

/// The folder a file is in (`.` for a bare name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// The file name of a path, for naming files beside it.
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into())
}

/// Makes a rename in `dir` durable (best effort; not every platform can open a folder).
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// A failed write. A closed stdout (`| head`) is not a failure: it ends the program quietly.
pub fn write_error(e: &io::Error, dest: Option<&Path>) -> CliError {
    if e.kind() == io::ErrorKind::BrokenPipe && dest.is_none() {
        return CliError::new(Exit::Ok, "");
    }
    match dest {
        Some(d) => CliError::io(format!("cannot write {}", d.display()), e),
        None => CliError::io("cannot write to stdout", e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::{Activity, Api};

    #[test]
    fn mistyped_urls_are_told_apart_from_files() {
        for (text, says) in [
            ("s3:/bucket", "did you mean s3://bucket?"),
            ("S3://bucket/p", "lower case: did you mean s3://bucket/p?"),
            ("gs:bucket", "did you mean gs://bucket?"),
            ("file:/tmp/x", "did you mean file:///tmp/x?"),
            ("https://example.com/x", "AWS_ENDPOINT_URL"),
            ("ftp://host/x", "`ftp://` is not a destination"),
        ] {
            let why = mistyped_url(text).unwrap_or_else(|| panic!("{text} is a mistyped URL"));
            assert!(why.contains(says), "{text}: {why}");
        }
        for file in [
            "out.ndjson",
            "C:/logs/out.ndjson",
            "dir/a:b.csv",
            "2025-03-01T00:00.csv",
        ] {
            assert_eq!(mistyped_url(file), None, "{file} is a file name");
        }
    }

    #[test]
    fn tables_fit_their_width() {
        for width in [60, 80, 100, 132, 200] {
            let l = layout(Api::COLUMNS, width);
            let used: usize = l.iter().map(|(_, w)| w).sum::<usize>() + 2 * (l.len() - 1);
            assert!(used <= width, "{width}: {used}");
            assert_eq!(l[0].0, 0, "the time is always shown");
        }
        assert_eq!(layout(Api::COLUMNS, 300).len(), Api::COLUMNS.len());
    }

    #[test]
    fn cells_are_cut_and_cleaned() {
        let mut s = String::new();
        fit("abcdef", 4, true, &mut s);
        assert_eq!(s, "abc…");
        s.clear();
        fit("a\nb", 5, true, &mut s);
        assert_eq!(s, "a b  ");
    }

    #[test]
    fn a_resumed_json_array_stays_one_valid_array() {
        let log: lago_audit_client::types::ActivityLogObject =
            serde_json::from_value(serde_json::json!({
                "activity_id": "1a901a90-1a90-1a90-1a90-1a901a901a90",
                "activity_type": "plan.updated", "activity_source": "front",
                "resource_id": "1a901a90-1a90-1a90-1a90-1a901a901a90", "resource_type": "Plan",
                "logged_at": "2025-03-31T12:31:44Z", "created_at": "2025-03-31T12:31:44Z"
            }))
            .unwrap();
        for format in [Format::Json, Format::Csv, Format::Table, Format::Ndjson] {
            let mut whole = Vec::new();
            let mut e = Emitter::<Activity>::new(format, 80);
            for _ in 0..3 {
                e.record(&mut whole, &log).unwrap();
            }
            e.end(&mut whole).unwrap();
            // The same output written in two runs: two records, a checkpoint, then a resume.
            let mut first = Vec::new();
            let mut e = Emitter::<Activity>::new(format, 80);
            e.record(&mut first, &log).unwrap();
            e.record(&mut first, &log).unwrap();
            let mut e = Emitter::<Activity>::resumed(format, 80, e.records(), e.started());
            e.record(&mut first, &log).unwrap();
            e.end(&mut first).unwrap();
            assert_eq!(
                String::from_utf8(first).unwrap(),
                String::from_utf8(whole.clone()).unwrap()
            );
            if format == Format::Json {
                let back: Vec<serde_json::Value> = serde_json::from_slice(&whole).unwrap();
                assert_eq!(back.len(), 3);
            }
        }
        let mut empty = Vec::new();
        Emitter::<Activity>::new(Format::Json, 80)
            .end(&mut empty)
            .unwrap();
        assert_eq!(empty, b"[]\n");
    }

    #[test]
    fn csv_quotes_what_it_must() {
        assert_eq!(
            csv_line(&["a", "b,c", "say \"hi\"", "x\ny"]),
            "a,\"b,c\",\"say \"\"hi\"\"\",\"x\ny\"\n"
        );
    }
}
