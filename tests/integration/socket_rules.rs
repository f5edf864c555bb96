//! Which tend a client talks to (SPEC §1): the private folder of the default
//! socket, servers of another uid refused, symlinks never followed, and a bad
//! config that never sends the client to another socket.
//!
//! The owner checks need a second uid, so they run tend as one with root's help
//! (`Command::uid`); they are `#[ignore = "needs root"]` (run them with
//! `cargo test -- --ignored` as root).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::json;

use crate::support::*;

/// A uid nobody uses, different per test (`k`) and per test process.
fn spare_uid(k: u32) -> u32 {
    40_000 + (std::process::id() % 5000) * 4 + k
}

/// `tend ARGS` as `uid`, without the environment variables that pick a socket.
fn tend_as(uid: u32, args: &[&str]) -> Command {
    let mut c = Command::new(TEND);
    c.args(args)
        .uid(uid)
        .gid(uid)
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("TEND_SOCKET")
        .env_remove("TEND_CONFIG")
        .stdin(Stdio::null());
    c
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `tend run` as `uid` in the background, killed with its group on drop.
struct Background {
    child: std::process::Child,
    _guard: KillGroupOnDrop,
    log: PathBuf,
}

impl Background {
    fn start(dir: &TestDir, uid: u32, config: &Path) -> Background {
        let log = dir.join("tend.log");
        let file = std::fs::File::create(&log).expect("log");
        let child = tend_as(uid, &["run", "-c"])
            .arg(config)
            .stdout(file.try_clone().expect("clone"))
            .stderr(file)
            .process_group(0)
            .spawn()
            .expect("spawn tend");
        let guard = KillGroupOnDrop(child.id() as i32);
        Background {
            child,
            _guard: guard,
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn remove_folder(path: &Path) {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        let _ = std::fs::remove_file(path);
    } else {
        let _ = std::fs::remove_dir_all(path);
    }
}

#[test]
#[ignore = "needs root"]
fn the_default_socket_folder_is_created_private_and_found_by_the_client() {
    require_root();
    let uid = spare_uid(0);
    let folder = PathBuf::from(format!("/tmp/tend-{uid}"));
    remove_folder(&folder);
    let dir = TestDir::new("defsock");
    // No control_socket: the default, which for this uid without
    // $XDG_RUNTIME_DIR is /tmp/tend-<uid>/tend.sock.
    let config = dir.write(
        "config.json",
        &json!({"services": [{"name": "a", "command": ["/bin/sleep", "1000"]}]}).to_string(),
    );
    let mut tend = Background::start(&dir, uid, &config);
    let socket = folder.join("tend.sock");
    poll_until("the default socket", PATIENCE, || socket.exists());
    let meta = std::fs::symlink_metadata(&folder).expect("folder");
    assert!(meta.is_dir());
    assert_eq!(meta.uid(), uid);
    assert_eq!(meta.mode() & 0o7777, 0o700);
    // The same uid finds it through the config, without -s.
    let config_arg = config.display().to_string();
    let out = tend_as(uid, &["status", "-c", &config_arg])
        .output()
        .expect("client");
    assert!(text(&out).contains("a "), "{}\n{}", text(&out), tend.log());
    // Root does not trust a server of another uid, even on a socket it names.
    let socket_arg = socket.display().to_string();
    let out = Command::new(TEND)
        .args(["status", "-s", &socket_arg])
        .output()
        .expect("client");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains(&format!("uid {uid}")), "{}", text(&out));
    let _ = tend.child.kill();
    let _ = tend.child.wait();
    remove_folder(&folder);
}

#[test]
#[ignore = "needs root"]
fn a_socket_folder_with_another_owner_a_loose_mode_or_a_symlink_is_refused() {
    require_root();
    let uid = spare_uid(1);
    let folder = PathBuf::from(format!("/tmp/tend-{uid}"));
    let dir = TestDir::new("badfolder");
    let config = dir.write(
        "config.json",
        &json!({"services": [{"name": "a", "command": ["/bin/sleep", "1000"]}]}).to_string(),
    );
    let config_arg = config.display().to_string();
    let refused = |why: &str| {
        let out = tend_as(uid, &["run", "-c", &config_arg])
            .output()
            .expect("tend");
        assert_eq!(out.status.code(), Some(1), "{why}: {}", text(&out));
        assert!(
            text(&out).contains(&folder.display().to_string()),
            "{why}: names the folder: {}",
            text(&out)
        );
        text(&out)
    };
    // Ours, but open to others.
    remove_folder(&folder);
    std::fs::create_dir(&folder).expect("mkdir");
    std::os::unix::fs::chown(&folder, Some(uid), Some(uid)).expect("chown");
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    assert!(refused("mode").contains("0755"));
    // Private, but someone else's.
    std::os::unix::fs::chown(&folder, Some(uid + 1), Some(uid + 1)).expect("chown");
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    assert!(refused("owner").contains(&format!("uid {}", uid + 1)));
    // A symlink to a folder that would pass.
    remove_folder(&folder);
    let real = dir.join("real");
    std::fs::create_dir(&real).expect("mkdir");
    std::os::unix::fs::chown(&real, Some(uid), Some(uid)).expect("chown");
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    std::os::unix::fs::symlink(&real, &folder).expect("symlink");
    assert!(refused("symlink").contains("symlink"));
    assert!(!real.join("tend.sock").exists());
    remove_folder(&folder);
}

#[test]
#[ignore = "needs root"]
fn a_server_of_another_uid_is_refused_and_nothing_is_sent() {
    require_root();
    let (server, other) = (spare_uid(2), spare_uid(3));
    let dir = TestDir::new("foreign");
    let own = dir.join("u");
    std::fs::create_dir(&own).expect("mkdir");
    std::os::unix::fs::chown(&own, Some(server), Some(server)).expect("chown");
    let socket = own.join("s.sock").display().to_string();
    let config = dir.write(
        "config.json",
        &json!({"control_socket": socket,
                "services": [{"name": "a", "command": ["/bin/sleep", "1000"]}]})
        .to_string(),
    );
    let tend = Background::start(&dir, server, &config);
    poll_until("socket", PATIENCE, || Path::new(&socket).exists());
    // The folder is the server's: let the other uid reach the socket at all.
    std::fs::set_permissions(&own, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    for (who, client) in [
        ("root", Command::new(TEND)),
        ("another user", tend_as(other, &[])),
    ] {
        let mut client = client;
        let out = client
            .args(["shutdown", "-s", &socket])
            .output()
            .expect("client");
        assert_eq!(out.status.code(), Some(1), "{who}: {}", text(&out));
        let said = text(&out);
        assert!(
            said.contains("refusing") && said.contains(&format!("uid {server}")),
            "{who}: {said}"
        );
    }
    // Nothing was sent: the shutdown did not happen.
    let out = tend_as(server, &["status", "-s", &socket])
        .output()
        .expect("client");
    assert_eq!(out.status.code(), Some(0), "{}\n{}", text(&out), tend.log());
}

#[test]
fn a_symlink_at_the_socket_path_is_never_followed() {
    let dir = TestDir::new("symlink");
    let target = dir.join("target.sock");
    {
        // A stale socket: replacing it would be fine, but not through a link.
        let _l = std::os::unix::net::UnixListener::bind(&target).expect("bind");
    }
    std::os::unix::fs::symlink(&target, dir.join("s.sock")).expect("symlink");
    let config = dir.write(
        "config.json",
        &json!({"control_socket": dir.socket(),
                "services": [{"name": "a", "command": ["/bin/sleep", "1000"]}]})
        .to_string(),
    );
    let out = Command::new(TEND)
        .args(["run", "-c"])
        .arg(&config)
        .output()
        .expect("tend");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("not a socket"), "{}", text(&out));
    assert!(target.exists(), "the link's target is untouched");
    assert!(
        std::fs::symlink_metadata(dir.join("s.sock")).is_ok_and(|m| m.file_type().is_symlink())
    );
}

/// A client command in `cwd` with a clean environment plus `env`.
fn client_in(cwd: &Path, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut c = Command::new(TEND);
    c.args(args)
        .current_dir(cwd)
        .env_remove("TEND_SOCKET")
        .env_remove("TEND_CONFIG")
        .env_remove("XDG_RUNTIME_DIR");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("client")
}

#[test]
fn a_bad_config_is_an_error_instead_of_another_socket() {
    let dir = TestDir::new("badconf");
    let bad = dir.write("bad.json", r#"{"services": [{"name": "a"}], "bogus": 1}"#);
    let bad_arg = bad.display().to_string();
    // -c names a file with a bad top level: its problems there, with their
    // places and suggestions as `tend check` prints them.
    let out = client_in(&dir.path, &["status", "-c", &bad_arg], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&bad_arg) && err.contains("bogus"), "{err}");
    let check = Command::new(TEND)
        .args(["check", "-c", &bad_arg])
        .output()
        .expect("check");
    let check_err = String::from_utf8_lossy(&check.stderr);
    let bogus = |t: &str| t.lines().find(|l| l.contains("bogus")).map(str::to_string);
    assert_eq!(
        bogus(&err),
        bogus(&check_err),
        "the same line as tend check"
    );
    // Problems only inside services do not hide which tend the config names:
    // the client asks it (nobody there here: exit 1, naming that socket).
    let socket = dir.join("named.sock");
    let services_only = dir.write(
        "services-only.json",
        &format!(
            r#"{{"control_socket": "{}", "services": [{{"name": "a", "bogus": 1}}]}}"#,
            socket.display()
        ),
    );
    let arg = services_only.display().to_string();
    let out = client_in(&dir.path, &["status", "-c", &arg], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&socket.display().to_string()),
        "{}",
        text(&out)
    );
    // Broken JSON anywhere, services included, is still an error.
    let broken = dir.write("broken.json", r#"{"services": [{"name": "a",}, {]}"#);
    let arg = broken.display().to_string();
    let out = client_in(&dir.path, &["status", "-c", &arg], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("line 1, column"), "{}", text(&out));
    // $TEND_CONFIG names a file that does not exist.
    let missing = dir.join("missing.json");
    let out = client_in(&dir.path, &["stop", "a"], &[("TEND_CONFIG", &missing)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("missing.json"), "{}", text(&out));
    // ./config.json exists and is invalid.
    let here = dir.join("here");
    std::fs::create_dir(&here).expect("mkdir");
    std::fs::write(here.join("config.json"), "{ nope").expect("write");
    let out = client_in(&here, &["status"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("config.json"), "{}", text(&out));
    // No ./config.json: the default socket (nobody there: exit 1, naming it).
    let empty = dir.join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let out = client_in(&empty, &["status"], &[("XDG_RUNTIME_DIR", &empty)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let default = if is_root() {
        PathBuf::from("/run/tend.sock")
    } else {
        empty.join("tend.sock")
    };
    assert!(
        text(&out).contains(&default.display().to_string()),
        "{}",
        text(&out)
    );
}

#[test]
fn an_unknown_signal_is_a_usage_error_before_connecting() {
    let dir = TestDir::new("badsig");
    let socket = dir.join("nobody.sock").display().to_string();
    let out = client_in(&dir.path, &["signal", "a", "NOSUCHSIG", "-s", &socket], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("NOSUCHSIG"), "{}", text(&out));
    assert!(!text(&out).contains("cannot reach"), "{}", text(&out));
}
