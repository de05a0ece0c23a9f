//! The tool as a person sees it, in a real pseudo-terminal (tmux, 80×24): the export's progress
//! bar, and tables that fit 80 columns. Skipped (with a note) where tmux is not installed.

use std::process::Command;
use std::time::{Duration, Instant};

struct Tmux {
    socket: String,
}

impl Tmux {
    /// A shell in `dir`, with the binary's folder first on its PATH.
    fn start(dir: &std::path::Path) -> Option<Tmux> {
        let ok = Command::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            eprintln!("tmux is not installed: skipping the terminal test");
            return None;
        }
        let t = Tmux {
            socket: format!("lago-audit-test-{}", std::process::id()),
        };
        let status = Command::new("tmux")
            .args([
                "-L",
                &t.socket,
                "new-session",
                "-d",
                "-x",
                "80",
                "-y",
                "24",
                "-s",
                "t",
                "-c",
            ])
            .arg(dir)
            .args([
                "env",
                "-u",
                "LAGO_API_KEY",
                "-u",
                "LAGO_API_URL",
                "-u",
                "LAGO_REGION",
                "TERM=xterm",
            ])
            .arg(format!("PATH={}:/usr/bin:/bin", bin_dir().display()))
            .args(["PS1=$ ", "bash", "--norc", "--noprofile"])
            .status()
            .unwrap();
        assert!(status.success());
        Some(t)
    }

    fn keys(&self, keys: &[&str]) {
        let status = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", "t"])
            .args(keys)
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn run(&self, line: &str) {
        self.keys(&["clear", "Enter"]);
        std::thread::sleep(Duration::from_millis(200));
        self.keys(&[line, "Enter"]);
    }

    /// The screen; `-J` joins lines the terminal wrapped, so a line longer than 80 shows as such.
    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-J", "-t", "t"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait_for(&self, what: impl Fn(&str) -> bool, label: &str) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if what(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "waited for {label}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

fn bin_dir() -> std::path::PathBuf {
    let bin = assert_cmd::cargo::cargo_bin("lago-audit");
    bin.parent().unwrap().to_owned()
}

fn show(title: &str, screen: &str) {
    println!("----- {title} (80×24) -----\n{}\n-----", screen.trim_end());
}

fn fits_80(screen: &str) {
    // The command lines typed at the prompt are the test's, not the program's output.
    for line in screen.lines().filter(|l| !l.starts_with("$ ")) {
        assert!(
            line.chars().count() <= 80,
            "{} columns: {line}",
            line.chars().count()
        );
    }
}

#[test]
fn progress_bar_and_tables_in_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let Some(tmux) = Tmux::start(dir.path()) else {
        return;
    };

    // A slow export (a low request rate), so the bar is seen moving.
    tmux.run("lago-audit --demo --demo-records 30000 --rate-limit 10 activity-logs export --max-per-page 300 -o trail.ndjson");
    let screen = tmux.wait_for(
        |s| s.contains("/30,000 records [=") && s.contains(" req ") && s.contains("ETA"),
        "the progress bar",
    );
    show("export with its progress bar", &screen);
    fits_80(&screen);
    // Ctrl-C keeps the checkpoint and says how to go on.
    tmux.keys(&["C-c"]);
    let screen = tmux.wait_for(
        |s| s.contains("--resume to continue"),
        "the interruption message",
    );
    show("after Ctrl-C", &screen);
    assert!(
        screen
            .lines()
            .any(|l| l.starts_with("error: interrupted: ")),
        "{screen}"
    );

    // To the end: the bar goes, a summary stays.
    tmux.run(
        "lago-audit --demo --demo-records 30000 activity-logs export --resume -o trail.ndjson",
    );
    let screen = tmux.wait_for(|s| s.contains("exported "), "the summary");
    show("export resumed to the end", &screen);
    assert!(
        !screen.contains("records ["),
        "the bar is cleared:\n{screen}"
    );
    fits_80(&screen);

    for kind in ["activity-logs", "api-logs", "security-logs"] {
        tmux.run(&format!("lago-audit --demo -q {kind} list --per-page 15"));
        let screen = tmux.wait_for(
            |s| {
                s.contains("LOGGED AT (UTC)")
                    && s.lines().filter(|l| l.starts_with("20")).count() >= 15
            },
            "the table",
        );
        show(&format!("{kind} list"), &screen);
        fits_80(&screen);
    }
}
