//! Start order, restart policies, backoff, retry budget, spawn failures,
//! critical services and exit_when_idle.

use serde_json::json;

use crate::support::*;

#[test]
fn respawns_after_sigkill_with_a_new_pid() {
    let dir = TestDir::new("respawn");
    let tend = Tend::start(
        &dir,
        json!({"services": [{"name": "s", "command": ["/bin/sleep", "1000"], "retry_delay": "50ms"}]}),
    );
    let first = tend.wait_for("s running", |t| {
        (t.state("s") == "running")
            .then(|| t.service_pid("s"))
            .flatten()
    });
    // SAFETY: a pid tend reported for a child it owns.
    unsafe { libc::kill(first as i32, libc::SIGKILL) };
    let second = tend.wait_for("s running with a new pid", |t| {
        let pid = t.service_pid("s")?;
        (t.state("s") == "running" && pid != first).then_some(pid)
    });
    assert_ne!(first, second);
    let s = tend.service("s");
    assert_eq!(s["restarts"], 1);
    assert_eq!(s["last_signal"], "SIGKILL");
    assert!(tend.log().contains("s: running -> restarting"));
}

#[test]
fn restart_policies_decide_by_exit_code() {
    let dir = TestDir::new("policies");
    let ok = dir.script("ok", "echo run >> \"$DIR/ok.runs\"; exit 0");
    let bad = dir.script("bad", "echo run >> \"$DIR/bad.runs\"; exit 3");
    let svc = |name: &str, cmd: &str, policy: &str| {
        json!({"name": name, "command": [cmd], "restart_policy": policy,
               "retry_delay": "10ms", "max_retries": 2})
    };
    let tend = Tend::start(
        &dir,
        json!({"services": [
            svc("always_ok", &ok, "always"),
            svc("onfail_ok", &ok, "on-failure"),
            svc("onfail_bad", &bad, "on-failure"),
            svc("never_bad", &bad, "never"),
            svc("never_ok", &ok, "never"),
        ]}),
    );
    // always: restarts even after success, until the budget is spent.
    let s = tend.wait_state("always_ok", "failed");
    assert_eq!(s["restarts"], 2);
    // on-failure: a success stays stopped; a failure is retried, then gives up.
    let s = tend.wait_state("onfail_ok", "stopped");
    assert_eq!(s["restarts"], 0);
    assert_eq!(s["last_exit_code"], 0);
    let s = tend.wait_state("onfail_bad", "failed");
    assert_eq!(s["restarts"], 2);
    assert_eq!(s["last_exit_code"], 3);
    // never: failure is failed, success is stopped, neither restarts.
    let s = tend.wait_state("never_bad", "failed");
    assert_eq!(s["restarts"], 0);
    let err = s["last_error"].as_str().unwrap_or("");
    assert!(err.starts_with("exited with code 3 after "), "{s}");
    let s = tend.wait_state("never_ok", "stopped");
    assert_eq!(s["restarts"], 0);
}

#[test]
fn success_exit_codes_count_as_success() {
    let dir = TestDir::new("successcodes");
    let three = dir.script("three", "exit 3");
    let tend = Tend::start(
        &dir,
        json!({"services": [{"name": "s", "command": [three], "restart_policy": "on-failure",
                             "success_exit_codes": [0, 3]}]}),
    );
    let s = tend.wait_state("s", "stopped");
    assert_eq!(s["last_exit_code"], 3);
    assert_eq!(s["restarts"], 0);
}

/// The delays in `restarting in X` log lines, in order, in milliseconds.
fn backoff_delays(log: &str, name: &str) -> Vec<f64> {
    log.lines()
        .filter(|l| l.contains(&format!("{name}: ")) && l.contains("-> restarting"))
        .filter_map(|l| {
            let after = l.split("restarting in ").nth(1)?;
            let word = after.split(' ').next()?;
            if let Some(ms) = word.strip_suffix("ms") {
                ms.parse().ok()
            } else if let Some(s) = word.strip_suffix('s') {
                s.parse::<f64>().ok().map(|s| s * 1000.0)
            } else {
                None
            }
        })
        .collect()
}

#[test]
fn backoff_grows_then_gives_up_after_max_retries() {
    let dir = TestDir::new("backoff");
    let crash = dir.script("crash", "echo run >> \"$DIR/runs\"; exit 1");
    let tend = Tend::start(
        &dir,
        json!({"services": [{"name": "c", "command": [crash], "retry_delay": "50ms",
                             "max_retry_delay": "10s", "max_retries": 4, "retry_window": "1h"}]}),
    );
    let s = tend.wait_state("c", "failed");
    assert_eq!(s["restarts"], 4);
    assert!(
        s["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("giving up after 4 restarts"),
        "{s}"
    );
    assert_eq!(
        dir.read("runs").lines().count(),
        5,
        "first run and four restarts"
    );
    let delays = backoff_delays(&tend.log(), "c");
    assert_eq!(delays.len(), 4, "{delays:?}");
    for pair in delays.windows(2) {
        assert!(pair[1] > pair[0], "backoff must grow: {delays:?}");
    }
    // 50ms doubled three times, ±10%.
    assert!(delays[0] >= 45.0 && delays[0] <= 55.0, "{delays:?}");
    assert!(delays[3] >= 360.0 && delays[3] <= 440.0, "{delays:?}");
}

#[test]
fn status_shows_the_next_start_while_restarting() {
    let dir = TestDir::new("nextstart");
    let crash = dir.script("crash", "exit 1");
    let tend = Tend::start(
        &dir,
        json!({"services": [{"name": "c", "command": [crash], "retry_delay": "1h",
                             "max_retry_delay": "2h"}]}),
    );
    let s = tend.wait_state("c", "restarting");
    let next = s["next_start_in_secs"].as_f64().unwrap_or(0.0);
    assert!(next > 3000.0, "{s}");
    assert_eq!(s["last_exit_code"], 1);
    assert!(s["pid"].is_null());
}

#[test]
fn missing_command_fails_and_others_keep_running() {
    let dir = TestDir::new("spawnfail");
    let tend = Tend::start(
        &dir,
        json!({"services": [
            {"name": "missing", "command": ["/nonexistent/binary"]},
            {"name": "noexec", "command": [dir.write("plain", "not a script").display().to_string()]},
            {"name": "good", "command": ["/bin/sleep", "1000"]},
        ]}),
    );
    let s = tend.wait_state("missing", "failed");
    assert_eq!(
        s["last_error"],
        "spawn failed: No such file or directory (os error 2)"
    );
    let s = tend.wait_state("noexec", "failed");
    assert!(
        s["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("Permission denied"),
        "{s}"
    );
    tend.wait_state("good", "running");
    // tend is still serving.
    let (code, _, _) = tend.client(&["status"]);
    assert_eq!(code, 1, "status exits 1 while a service is failed");
}

#[test]
fn failures_in_the_child_are_reported_with_their_step() {
    // A missing working_dir is found by the child after the clone; tend learns
    // it from the report pipe, not from an exit code.
    let dir = TestDir::new("forkfail");
    dir.script("run", "exec sleep 1000");
    let tend = Tend::start(
        &dir,
        json!({"services": [
            {"name": "nodir", "command": ["/bin/sleep", "1000"],
             "working_dir": dir.join("missing").display().to_string()},
            {"name": "path", "command": ["sleep", "1000"]},
            {"name": "relative", "command": ["./run"], "working_dir": dir.join("").display().to_string()},
        ]}),
    );
    let s = tend.wait_state("nodir", "failed");
    assert_eq!(
        s["last_error"],
        "spawn failed: working_dir: No such file or directory (os error 2)"
    );
    assert!(s["last_exit_code"].is_null(), "{s}");
    tend.wait_state("path", "running");
    let _ = tend.wait_state("relative", "running");
}

#[test]
fn dependencies_start_in_order() {
    let dir = TestDir::new("deporder");
    let log_start = |name: &str| {
        dir.script(
            name,
            &format!("echo {name} >> \"$DIR/order\"; exec sleep 1000"),
        )
    };
    let job = dir.script("job", "sleep 0.2; echo job >> \"$DIR/order\"; exit 0");
    let tend = Tend::start(
        &dir,
        json!({"services": [
            {"name": "web", "command": [log_start("web")],
             "dependencies": ["db", {"service": "migrate", "condition": "completed"}]},
            {"name": "migrate", "type": "oneshot", "command": [job], "dependencies": ["db"]},
            {"name": "db", "command": [log_start("db")]},
        ]}),
    );
    tend.wait_state("web", "running");
    // `running` comes with the exec; web's own line may follow a moment later.
    poll_until("web wrote its line", PATIENCE, || {
        dir.read("order").lines().count() >= 3
    });
    let order: Vec<String> = dir.read("order").lines().map(String::from).collect();
    assert_eq!(order, ["db", "job", "web"]);
    let m = tend.service("migrate");
    assert_eq!(m["state"], "stopped");
    assert_eq!(m["completed"], true);
}

#[test]
fn failed_dependency_keeps_dependent_pending() {
    let dir = TestDir::new("depfailed");
    let tend = Tend::start(
        &dir,
        json!({"services": [
            {"name": "db", "command": ["/nonexistent"]},
            {"name": "web", "command": ["/bin/sleep", "1000"], "dependencies": ["db"]},
        ]}),
    );
    tend.wait_state("db", "failed");
    let web = tend.wait_state("web", "pending");
    assert_eq!(web["waiting_for"], "db");
    assert!(web["pid"].is_null());
}

#[test]
fn critical_failure_exits_with_its_code() {
    let dir = TestDir::new("critical");
    let die = dir.script("die", "sleep 0.1; exit 7");
    let mut tend = Tend::start(
        &dir,
        json!({"services": [
            {"name": "core", "command": [die], "critical": true, "max_retries": 0},
            {"name": "other", "command": ["/bin/sleep", "1000"]},
        ]}),
    );
    let status = tend.wait_exit();
    assert_eq!(status.code(), Some(7), "{}", tend.log());
}

#[test]
fn critical_killed_by_signal_exits_128_plus_n() {
    let dir = TestDir::new("critsig");
    let die = dir.script("die", "kill -9 $$");
    let mut tend = Tend::start(
        &dir,
        json!({"services": [{"name": "core", "command": [die], "critical": true,
                             "restart_policy": "never"}]}),
    );
    assert_eq!(tend.wait_exit().code(), Some(137));
}

#[test]
fn exit_when_idle_exits_once_jobs_are_done() {
    let dir = TestDir::new("idle");
    let ok = dir.script("ok", "exit 0");
    let bad = dir.script("bad", "exit 4");
    let mut tend = Tend::start(
        &dir,
        json!({"exit_when_idle": true, "services": [
            {"name": "a", "type": "oneshot", "command": [ok.clone()]},
            {"name": "b", "type": "oneshot", "command": [ok], "dependencies": ["a"]},
        ]}),
    );
    assert_eq!(tend.wait_exit().code(), Some(0), "{}", tend.log());
    let dir2 = TestDir::new("idlefail");
    let mut tend = Tend::start(
        &dir2,
        json!({"exit_when_idle": true, "services": [
            {"name": "a", "type": "oneshot", "command": [bad], "restart_policy": "never"},
        ]}),
    );
    assert_eq!(tend.wait_exit().code(), Some(4));
}

#[test]
fn readiness_from_a_log_line_gates_dependents() {
    let dir = TestDir::new("logready");
    let db = dir.script(
        "db",
        "sleep 0.3; echo 'db: listening on 5432'; exec sleep 1000",
    );
    let tend = Tend::start(
        &dir,
        json!({"services": [
            {"name": "db", "command": [db], "readiness": {"type": "log", "pattern": "listening on"}},
            {"name": "web", "command": ["/bin/sleep", "1000"], "dependencies": ["db"]},
        ]}),
    );
    tend.wait_state("web", "running");
    let log = tend.log();
    let ready = log
        .find("db: starting -> running")
        .expect("db became ready");
    let web = log.find("web: pending -> running").expect("web started");
    assert!(ready < web, "{log}");
}

#[test]
fn readiness_timeout_counts_as_a_failed_start() {
    let dir = TestDir::new("readytimeout");
    let tend = Tend::start(
        &dir,
        json!({"services": [{"name": "s", "command": ["/bin/sleep", "1000"],
                             "readiness": {"type": "log", "pattern": "never printed"},
                             "timeout_start": "200ms", "max_retries": 1, "retry_delay": "10ms"}]}),
    );
    let s = tend.wait_state("s", "failed");
    assert!(
        s["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("not ready within"),
        "{s}"
    );
    assert_eq!(s["restarts"], 1);
}

/// `env_file` (SPEC §2): its pairs reach the service, `environment` overrides
/// them, a reload reads the file again for the next start, and a file that
/// cannot be read fails that service alone, naming the file.
#[test]
fn env_files_reach_the_service_and_are_read_again_at_reload() {
    let dir = TestDir::new("envfile");
    let env = dir.write("app.env", "# comment\nA=from-file\nB=\"quoted b\"\n");
    let show = json!({"name": "show", "env_file": env,
        "environment": {"A": "from-config"},
        "command": ["sh", "-c", "echo \"A=$A B=$B\"; exec sleep 1000"]});
    let broken = json!({"name": "broken", "env_file": dir.join("missing.env"),
        "command": ["sh", "-c", "exec sleep 1000"]});
    let tend = Tend::start(&dir, json!({"services": [show, broken]}));
    tend.wait_log("show | A=from-config B=quoted b");
    let failed = tend.wait_state("broken", "failed");
    let error = failed["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("missing.env"), "{failed}");
    // The file changes; a reload (config unchanged) reads it for the next start.
    dir.write("app.env", "A=ignored\nB=new b\n");
    let (code, out, err) = tend.client(&["reload"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = tend.client(&["restart", "show"]);
    assert_eq!(code, 0, "{out}{err}");
    tend.wait_log("show | A=from-config B=new b");
}
