//! `tend import`: real Procfiles and supervisord configs against golden output, the
//! imported configs accepted by tend's own validation, and the binary's streams
//! and exit codes.
//!
//! tests/golden/import/ holds each input next to its expected `.json` (stdout) and
//! `.warnings` (stderr). The inputs are supervisord's own sample config
//! (`echo_supervisord_conf` of supervisor 4.3.0 with its commented sample sections
//! switched on, except `[group:thegroupname]` that names programs it lacks),
//! program sections from supervisord's documentation, a typical Docker image's
//! supervisord.conf, a Heroku-style Procfile and a honcho/foreman one.
//! `TEND_BLESS=1 cargo test --test integration import::` rewrites the expected files.

use std::path::{Path, PathBuf};
use std::process::Command;

use tend::import::{self, Format, Host, Imported};

use crate::support::*;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/import")
}

/// The golden inputs (every file that is not an expected output).
fn inputs() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .expect("golden dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            !p.extension()
                .is_some_and(|e| e == "json" || e == "warnings")
        })
        .collect();
    files.sort();
    files
}

/// Where the golden imports pretend their input lives: `%(here)s` and a
/// Procfile's working_dir come from it, so they must not depend on the checkout.
fn pretend_path(input: &Path) -> PathBuf {
    let name = input.file_name().expect("file name");
    if name.to_string_lossy().starts_with("Procfile") {
        Path::new("/srv/app").join(name)
    } else {
        Path::new("/etc/supervisor").join(name)
    }
}

fn warnings_text(imported: &Imported) -> String {
    imported
        .warnings
        .iter()
        .map(|w| format!("warning: {w}\n"))
        .collect()
}

#[test]
fn golden_imports_and_tend_accepts_them() {
    let bless = std::env::var_os("TEND_BLESS").is_some();
    let inputs = inputs();
    assert!(inputs.len() >= 5, "golden inputs: {inputs:?}");
    for input in inputs {
        let text = std::fs::read_to_string(&input).expect("read input");
        let imported = import::import_with(&text, &pretend_path(&input), &Host::default())
            .unwrap_or_else(|e| panic!("{}: {e}", input.display()));
        let json = PathBuf::from(format!("{}.json", input.display()));
        let warnings = PathBuf::from(format!("{}.warnings", input.display()));
        if bless {
            std::fs::write(&json, &imported.text).expect("write json");
            std::fs::write(&warnings, warnings_text(&imported)).expect("write warnings");
        }
        let want_json = std::fs::read_to_string(&json).expect("expected .json");
        let want_warnings = std::fs::read_to_string(&warnings).expect("expected .warnings");
        assert_eq!(imported.text, want_json, "{}", input.display());
        assert_eq!(
            warnings_text(&imported),
            want_warnings,
            "{}",
            input.display()
        );
        match tend::config::parse(&imported.text, None) {
            Ok(config) => assert_eq!(
                config.services.len(),
                imported.config["services"].as_array().map_or(0, Vec::len)
            ),
            // A Procfile import uses neither pending field: it must be valid as it is.
            Err(errors) if imported.format == Format::Procfile => {
                panic!("{}: {errors}", input.display())
            }
            Err(errors) => panic!("{}: {errors}", input.display()),
        }
    }
}

fn run_import(file: &Path) -> (i32, String, String) {
    let out = Command::new(TEND)
        .arg("import")
        .arg(file)
        .output()
        .expect("run tend import");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn binary_prints_the_config_on_stdout_and_each_warning_on_stderr() {
    for input in inputs() {
        let (code, stdout, stderr) = run_import(&input);
        assert_eq!(code, 0, "{}: {stderr}", input.display());
        // The binary reads the real environment and the real path: compare with
        // the library given the same.
        let text = std::fs::read_to_string(&input).expect("read input");
        let imported = import::import(&text, &input).expect("import");
        assert_eq!(stdout, imported.text, "{}", input.display());
        assert_eq!(stderr, warnings_text(&imported), "{}", input.display());
        assert!(
            stderr.lines().all(|l| l.starts_with("warning: ")),
            "{stderr}"
        );
    }
}

#[test]
fn a_procfile_import_passes_tend_check() {
    let dir = TestDir::new("import-check");
    let procfile = dir.write(
        "Procfile",
        "# dev\nweb: python -m http.server $PORT\nworker: ./worker.sh --queue default\n",
    );
    let (code, stdout, _) = run_import(&procfile);
    assert_eq!(code, 0);
    let config = dir.write("config.json", &stdout);
    let out = Command::new(TEND)
        .args(["check", "-c"])
        .arg(&config)
        .output()
        .expect("run tend check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}\n{stdout}");
    assert!(
        stdout.contains(&format!("\"working_dir\": \"{}\"", dir.path.display())),
        "{stdout}"
    );
}

#[test]
fn unreadable_or_unparseable_input_exits_2_naming_the_line() {
    let dir = TestDir::new("import-bad");
    let (code, stdout, stderr) = run_import(&dir.join("missing.conf"));
    assert_eq!(code, 2);
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("cannot read") && stderr.contains("missing.conf"),
        "{stderr}"
    );
    let bad = dir.write(
        "supervisord.conf",
        "[program:a]\ncommand=a\nautorestart=sometimes\n",
    );
    let (code, stdout, stderr) = run_import(&bad);
    assert_eq!(code, 2);
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("line 3: [program:a] autorestart"),
        "{stderr}"
    );
    let bad = dir.write("Procfile", "web: a\nweb: b\n");
    let (code, _, stderr) = run_import(&bad);
    assert_eq!(code, 2);
    assert!(stderr.contains("line 2"), "{stderr}");
    let binary = dir.write("x.conf", "");
    std::fs::write(&binary, b"[program:a]\ncommand=\xff\n").expect("write");
    assert_eq!(run_import(&binary).0, 2);
    let out = Command::new(TEND).arg("import").output().expect("run");
    assert_eq!(out.status.code(), Some(2));
}

/// A command with an `%(ENV_X)s` from the environment becomes a `/bin/sh -c`
/// script: run it to prove the quoting hands each word over intact.
#[test]
fn a_command_left_to_the_shell_runs_with_its_words_intact() {
    let text =
        "[program:p]\ncommand=printf \"[%%s]\" %(ENV_IMPORT_T)s \"two words\" 'a\"b' \\$HOME\n";
    let imported =
        import::import_with(text, Path::new("/etc/s.conf"), &Host::default()).expect("import");
    let argv: Vec<String> = imported.config["services"][0]["command"]
        .as_array()
        .expect("command")
        .iter()
        .filter_map(|w| w.as_str().map(str::to_string))
        .collect();
    assert_eq!(argv[..2], ["/bin/sh", "-c"]);
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .env("IMPORT_T", "x y $z")
        .output()
        .expect("run the command");
    // supervisord would have split the variable's value into three words; the
    // shell keeps it as one (README: "Coming from supervisord").
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "[x y $z][two words][a\"b][$HOME]"
    );
}
