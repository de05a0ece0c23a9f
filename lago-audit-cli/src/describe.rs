//! `lago-audit completions SHELL` and `lago-audit man`: generated from the same clap definition
//! that parses the command line (`cli::command()`), so they cannot drift from it.

use crate::cli;
use crate::error::Exit;
use std::io::Write;
use std::path::Path;

/// The completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cli::command(), "lago-audit", &mut out);
    out
}

/// The main man page, `lago-audit.1`, in roff.
pub fn man_page() -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cli::command()).render(&mut out)?;
    Ok(out)
}

/// Writes `lago-audit.1` and one page per subcommand into `dir` (created if missing).
pub fn man_pages(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    clap_mangen::generate_to(cli::command(), dir)
}

/// Runs `completions` or `man`; the exit code and, on failure, the message.
pub fn run(command: cli::Command) -> (Exit, Option<String>) {
    let text = match command {
        cli::Command::Read(_) | cli::Command::Verify(_) | cli::Command::Keygen { .. } => {
            unreachable!("reading, verify and keygen are run by main")
        }
        cli::Command::Completions { shell } => Ok(completions(shell)),
        cli::Command::Man { dir: None } => man_page(),
        cli::Command::Man { dir: Some(dir) } => {
            return match man_pages(&dir) {
                Ok(()) => (Exit::Ok, None),
                Err(e) => (
                    Exit::Failure,
                    Some(format!(
                        "error: cannot write the man pages into {}: {e}",
                        dir.display()
                    )),
                ),
            }
        }
    };
    let written = text.and_then(|bytes| {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(&bytes)?;
        stdout.flush()
    });
    match written {
        // A reader that stops early (`| head`) is not a failure.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => (
            Exit::Failure,
            Some(format!("error: cannot write to stdout: {e}")),
        ),
        _ => (Exit::Ok, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_completes_the_subcommands_and_flags() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
            clap_complete::Shell::PowerShell,
            clap_complete::Shell::Elvish,
        ] {
            let text = String::from_utf8(completions(shell)).unwrap();
            // Flags without their dashes: fish writes `-l demo`.
            for word in ["activity-logs", "security-logs", "export", "demo", "from"] {
                assert!(text.contains(word), "{shell:?} completions lack {word}");
            }
        }
    }

    #[test]
    fn the_man_pages_cover_every_command() {
        let main = String::from_utf8(man_page().unwrap()).unwrap();
        assert!(
            main.starts_with(".ie") || main.contains(".TH lago-audit"),
            "{main}"
        );
        assert!(main.contains("activity\\-logs") && main.contains("Exit codes"));
        let dir = tempfile::tempdir().unwrap();
        man_pages(dir.path()).unwrap();
        for page in [
            "lago-audit.1",
            "lago-audit-api-logs-export.1",
            "lago-audit-man.1",
        ] {
            assert!(dir.path().join(page).is_file(), "no {page}");
        }
    }
}
