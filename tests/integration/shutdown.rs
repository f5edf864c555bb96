//! Stopping: SIGTERM to every process group, SIGKILL after timeout_stop, reverse
//! dependency order, second signal, and no zombies left behind.

use serde_json::json;

use crate::support::*;

#[test]
fn sigterm_reaches_every_service_and_tend_exits_0() {
    let dir = TestDir::new("graceful");
    let svc = |name: &str| {
        dir.script(
            name,
            &format!("trap 'echo {name} > \"$DIR/term.{name}\"; exit 0' TERM; : > \"$DIR/up.{name}\"; while :; do sleep 0.05; done"),
        )
    };
    let mut tend = Tend::start(
        &dir,
        json!({"services": [
            {"name": "a", "command": [svc("a")]},
            {"name": "b", "command": [svc("b")]},
            {"name": "c", "command": [svc("c")]},
        ]}),
    );
    // Wait until each shell has set its trap, or SIGTERM could beat it.
    for n in ["a", "b", "c"] {
        poll_until(&format!("{n} trap set"), PATIENCE, || {
            dir.exists(&format!("up.{n}"))
        });
    }
    tend.signal(libc::SIGTERM);
    assert_eq!(tend.wait_exit().code(), Some(0), "{}", tend.log());
    for n in ["a", "b", "c"] {
        assert!(
            dir.exists(&format!("term.{n}")),
            "{n} got SIGTERM\n{}",
            tend.log()
        );
    }
}

#[test]
fn sigkill_after_timeout_stop_for_a_child_that_ignores_sigterm() {
    let dir = TestDir::new("stubborn");
    let stubborn = dir.script(
        "stubborn",
        "trap '' TERM; echo $$ > \"$DIR/pid\"; while :; do sleep 0.05; done",
    );
    let mut tend = Tend::start(
        &dir,
        json!({"services": [{"name": "s", "command": [stubborn], "timeout_stop": "300ms"}]}),
    );
    tend.wait_state("s", "running");
    let pid = dir.wait_pid("pid");
    tend.signal(libc::SIGTERM);
    assert_eq!(tend.wait_exit().code(), Some(0));
    let log = tend.log();
    assert!(log.contains("s: sending SIGKILL to process group"), "{log}");
    assert!(log.contains("killed by SIGKILL"), "{log}");
    assert!(is_dead(pid));
}

#[test]
fn grandchildren_in_the_group_get_the_stop_signal() {
    let dir = TestDir::new("grandkids");
    // The grandchild records SIGTERM; the service waits for it before exiting.
    let grandchild = dir.script(
        "grandchild",
        "trap 'echo got > \"$DIR/grandchild.term\"; exit 0' TERM\necho $$ > \"$DIR/gc.pid\"\nwhile :; do sleep 0.05; done",
    );
    let parent = dir.script(
        "parent",
        // The trap comes first: once gc.pid exists the parent is ready for SIGTERM.
        &format!("trap 'wait; exit 0' TERM\n{grandchild} &\nwhile :; do sleep 0.05; done"),
    );
    let mut tend = Tend::start(
        &dir,
        json!({"services": [{"name": "p", "command": [parent]}]}),
    );
    tend.wait_state("p", "running");
    poll_until("grandchild started", PATIENCE, || {
        !dir.read("gc.pid").trim().is_empty()
    });
    tend.signal(libc::SIGTERM);
    assert_eq!(tend.wait_exit().code(), Some(0));
    assert_eq!(dir.read("grandchild.term").trim(), "got", "{}", tend.log());
}

#[test]
fn services_stop_in_reverse_dependency_order() {
    let dir = TestDir::new("stoporder");
    let svc = |name: &str| {
        dir.script(
            name,
            &format!("trap 'sleep 0.2; echo {name} >> \"$DIR/stops\"; exit 0' TERM; : > \"$DIR/up.{name}\"; while :; do sleep 0.05; done"),
        )
    };
    let mut tend = Tend::start(
        &dir,
        json!({"services": [
            {"name": "db", "command": [svc("db")]},
            {"name": "app", "command": [svc("app")], "dependencies": ["db"]},
            {"name": "web", "command": [svc("web")], "dependencies": ["app"]},
        ]}),
    );
    for n in ["db", "app", "web"] {
        poll_until(&format!("{n} trap set"), PATIENCE, || {
            dir.exists(&format!("up.{n}"))
        });
    }
    tend.signal(libc::SIGINT);
    assert_eq!(tend.wait_exit().code(), Some(0));
    let stops: Vec<String> = dir.read("stops").lines().map(String::from).collect();
    assert_eq!(stops, ["web", "app", "db"], "{}", tend.log());
}

#[test]
fn second_sigterm_kills_what_is_left_at_once() {
    let dir = TestDir::new("secondterm");
    let stubborn = dir.script(
        "stubborn",
        "trap '' TERM; : > \"$DIR/up\"; while :; do sleep 0.05; done",
    );
    let mut tend = Tend::start(
        &dir,
        json!({"services": [{"name": "s", "command": [stubborn], "timeout_stop": "1h"}]}),
    );
    poll_until("trap set", PATIENCE, || dir.exists("up"));
    tend.signal(libc::SIGTERM);
    tend.wait_state("s", "stopping");
    tend.signal(libc::SIGTERM);
    assert_eq!(tend.wait_exit().code(), Some(0));
    assert!(tend.log().contains("second termination signal"));
}

#[test]
fn orphans_of_a_service_are_reaped() {
    let dir = TestDir::new("orphans");
    // An orphan that escapes the group (setsid) and exits later, and one that
    // stays in the group and is cleaned up when its parent exits.
    let maker = dir.script(
        "maker",
        "setsid sh -c 'echo $$ > \"$DIR/escaped.pid\"; sleep 0.3' &\n\
         sleep 1000 & echo $! > \"$DIR/ingroup.pid\"\n\
         sleep 0.1; exit 0",
    );
    let tend = Tend::start(
        &dir,
        json!({"services": [{"name": "m", "command": [maker], "restart_policy": "never"}]}),
    );
    tend.wait_state("m", "stopped");
    for file in ["escaped.pid", "ingroup.pid"] {
        let pid = dir.wait_pid(file);
        poll_until(&format!("{file} reaped, not a zombie"), PATIENCE, || {
            is_reaped(pid)
        });
    }
    // tend has no zombie children at all.
    assert_eq!(zombies_of(tend.pid()), Vec::<i32>::new());
}
