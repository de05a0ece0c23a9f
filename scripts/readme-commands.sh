#!/usr/bin/env bash
# Runs every `lago-audit` command of the READMEs' shell blocks against the built-in demo, so the
# documentation cannot drift from the binary: each must exit 0 and produce output.
#
#   scripts/readme-commands.sh [BINARY]      (default: target/debug/lago-audit)
#
# Each command is taken from its line up to the first pipe, redirection or comment; `--demo` is
# added (except for completions, man and --version); an object store URL (s3://, az://, gs://,
# file:///) becomes a directory under a scratch folder, where the commands of one README run in
# order (so an export and its --resume meet the same file). `tail` runs for a few seconds and is
# stopped with Ctrl-C, as a person would. Output is: something on stdout, or a non-empty -o
# destination, or, for an export that wrote nothing, the note that says why. What an export into
# a store leaves there must appear in that README's bucket tree.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-target/debug/lago-audit}")
[ -x "$bin" ] || { echo "no binary at $bin (cargo build -p lago-audit-cli)"; exit 1; }
exec python3 - "$bin" README.md */README.md <<'PY'
import os, re, shlex, signal, subprocess, sys, tempfile, time

binary, readmes = sys.argv[1], sys.argv[2:]
STORE = re.compile(r"^(s3|s3a|az|azure|abfs|abfss|gs)://(.+)$")
STOP = {"|", "||", "&&", ";", ">", ">>", "<", "&"}
NO_DEMO = {"completions", "man", "--version", "-V", "--help", "-h"}


def commands(path):
    """The `lago-audit` lines of the shell blocks of one Markdown file, with their line numbers."""
    fence = None
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            stripped = line.strip()
            if stripped.startswith("```"):
                fence = None if fence is not None else stripped[3:].strip()
                continue
            if fence in ("sh", "bash", "shell", "console") and re.match(r"^(\$ )?lago-audit(\s|$)", stripped):
                yield number, stripped.removeprefix("$ ")


def argv_of(line, scratch):
    lexer = shlex.shlex(line, posix=True, punctuation_chars="|&;<>")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    words = []
    for word in lexer:
        if word in STOP:
            break
        words.append(word)
    args = words[1:]
    if args and args[0] not in NO_DEMO and "--demo" not in args:
        args = ["--demo"] + args
    mapped = []
    for a in args:
        m = STORE.match(a)
        if m:
            a = "file://" + os.path.join(scratch, "stores", m.group(1), m.group(2))
        elif a.startswith("file:///"):
            a = "file://" + os.path.join(scratch, a[len("file:///"):])
        mapped.append(a)
    return [binary] + mapped


def target_of(argv, cwd):
    """The -o destination as a local path (a file, or a store's directory), if any."""
    for flag, value in zip(argv, argv[1:]):
        if flag in ("-o", "--output"):
            if value.startswith("file://"):
                return value[len("file://"):]
            return os.path.join(cwd, value)
    return None


def size_of(path):
    if path is None or not os.path.exists(path):
        return 0
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def run(argv, cwd):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAGO_", "AWS_", "AZURE_", "GOOGLE_"))}
    if "tail" in argv:
        child = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(6)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
        return child.returncode, out, err
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, timeout=300)
    return done.returncode, done.stdout, done.stderr


def tree_misses(readme, store):
    """The parts of what an export left in `store` (a file:// destination) that the README's
    bucket tree does not show, digits generalised: a layout change must reach the README."""
    with open(readme, encoding="utf-8") as f:
        text = re.sub(r"[0-9]", "0", f.read())
    missing = set()
    for d, _, files in os.walk(store):
        for name in files:
            rel = os.path.relpath(os.path.join(d, name), store)
            for part in re.sub(r"[0-9]", "0", rel).split(os.sep):
                if part not in text:
                    missing.add(part)
    return sorted(missing)


failures = ran = 0
for readme in readmes:
    with tempfile.TemporaryDirectory(prefix="readme-commands-") as scratch:
        for number, line in commands(readme):
            argv = argv_of(line, scratch)
            started = time.monotonic()
            code, out, err = run(argv, scratch)
            ran += 1
            text = err.decode(errors="replace")
            produced = len(out) > 0 or size_of(target_of(argv, scratch)) > 0
            explained = " in the window " in text or " is complete: " in text
            ok = code == 0 and (produced or explained)
            shown = " ".join(shlex.quote(a) for a in ["lago-audit"] + argv[1:])
            print(f"{'ok  ' if ok else 'FAIL'} {readme}:{number} ({time.monotonic() - started:.1f} s) {shown}")
            if not ok:
                failures += 1
                why = f"exit {code}" if code != 0 else "no output, and no note saying why"
                print(f"     {why}; stderr:\n" + "".join(f"       {l}\n" for l in text.splitlines()[-8:]))
            store = target_of(argv, scratch)
            if code == 0 and "export" in argv and store and os.path.isdir(store):
                missing = tree_misses(readme, store)
                if missing:
                    failures += 1
                    print(f"FAIL {readme}: its bucket tree does not show {', '.join(missing)}, which this export wrote")
print(f"{ran} README commands run against --demo, {failures} failed")
sys.exit(1 if failures or ran == 0 else 0)
PY
