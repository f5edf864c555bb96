//! `tend check` and `tend run` on bad configs: every problem at once, exit 2,
//! nothing started. The problem lines are pinned by the golden files in
//! tests/golden/check/ (also checked, without the binary, by the config unit tests).

use std::process::Command;

use serde_json::json;

use crate::support::*;

fn check(path: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(TEND)
        .args(["check", "-c"])
        .arg(path)
        .output()
        .expect("run tend check");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn golden_bad_configs_report_every_problem() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/check");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).expect("golden dir").flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let expected = std::fs::read_to_string(path.with_extension("expected")).expect("expected");
        let (code, _, stderr) = check(&path);
        assert_eq!(code, 2, "{}", path.display());
        let got: Vec<&str> = stderr.lines().skip(1).map(str::trim_start).collect();
        let want: Vec<&str> = expected.lines().collect();
        assert_eq!(got, want, "{}", path.display());
        seen += 1;
    }
    assert!(seen >= 3, "golden files found: {seen}");
}

#[test]
fn check_accepts_the_demo_config() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config.json");
    let (code, stdout, stderr) = check(&path);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("ok"));
}

#[test]
fn run_refuses_a_bad_config_and_starts_nothing() {
    let dir = TestDir::new("badrun");
    let marker = dir.join("started");
    let config = json!({"services": [
        {"name": "a", "command": ["/bin/touch", marker.display().to_string()]},
        {"name": "b", "command": ["/bin/true"], "timeout_stop": "soon", "colour": "red"},
    ]});
    let path = dir.write("config.json", &config.to_string());
    let out = Command::new(TEND)
        .args(["run", "-c"])
        .arg(&path)
        .output()
        .expect("run tend");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("services[1] (b).timeout_stop"), "{stderr}");
    assert!(stderr.contains("services[1] (b).colour"), "{stderr}");
    assert!(!marker.exists());
}

#[test]
fn usage_errors_exit_2() {
    let out = Command::new(TEND).arg("frobnicate").output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(TEND).arg("--version").output().expect("run");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("tend "));
}

#[test]
fn check_runs_the_start_time_checks() {
    let dir = TestDir::new("preflight");
    let config = json!({"services": [
        {"name": "ok", "command": ["/bin/true"]},
        {"name": "web", "command": ["no-such-program-tend"], "user": "no-such-user-tend",
         "working_dir": "missing-dir", "env_file": "missing.env"},
    ]});
    let path = dir.write("config.json", &config.to_string());
    let (code, stdout, stderr) = check(&path);
    assert_eq!(code, 2, "{stdout}{stderr}");
    let lines: Vec<&str> = stderr.lines().skip(1).map(str::trim_start).collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    assert!(
        lines[0] == "services[1] (web).user: no such user: no-such-user-tend",
        "{stderr}"
    );
    let missing = dir.join("missing-dir").display().to_string();
    assert!(
        lines[1].starts_with(&format!("services[1] (web).working_dir: {missing}")),
        "relative to the config file's folder: {stderr}"
    );
    assert!(
        lines[2].starts_with("services[1] (web).env_file: env_file "),
        "{stderr}"
    );
    // With the folder and the file there, only the command is left.
    std::fs::create_dir(dir.join("missing-dir")).expect("mkdir");
    dir.write("missing.env", "# fine\nA=1\n");
    let config = json!({"services": [
        {"name": "web", "command": ["no-such-program-tend"],
         "working_dir": "missing-dir", "env_file": "missing.env"},
    ]});
    let path = dir.write("config.json", &config.to_string());
    let (code, _, stderr) = check(&path);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(
            "services[0] (web).command[0]: \"no-such-program-tend\" was not found in PATH"
        ),
        "{stderr}"
    );
}

#[test]
fn check_accepts_comments_relative_paths_and_prints_warnings() {
    let dir = TestDir::new("jsonc");
    std::fs::create_dir(dir.join("app")).expect("mkdir");
    std::fs::create_dir(dir.join("services")).expect("mkdir");
    dir.write("app/run", "#!/bin/sh\nexec sleep 1000\n");
    std::fs::set_permissions(
        dir.join("app/run"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    dir.write("app.env", "PATH=/bin:/usr/bin\n");
    let text = r#"// a commented config
{
  "services_dir": "services", /* empty: a warning, not an error */
  "services": [
    {"name": "app", "command": ["./run"], "working_dir": "app", "env_file": "app.env",},
  ],
}"#;
    let path = dir.write("config.json", text);
    let (code, stdout, stderr) = check(&path);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("ok (1 services)"), "{stdout}");
    assert!(
        stderr.contains("tend: warning: services_dir: ") && stderr.contains("holds no service"),
        "{stderr}"
    );
}
