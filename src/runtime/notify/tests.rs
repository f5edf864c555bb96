use super::*;
use std::ffi::OsString;

fn env(xdg: Option<&'static str>) -> impl Fn(&str) -> Option<OsString> {
    move |k: &str| {
        (k == "XDG_RUNTIME_DIR")
            .then_some(xdg)
            .flatten()
            .map(OsString::from)
    }
}

#[test]
fn the_folder_depends_on_uid_and_runtime_dir() {
    assert_eq!(
        default_dir(&env(Some("/run/user/5")), 0, 42),
        PathBuf::from("/run/tend.42")
    );
    assert_eq!(
        default_dir(&env(Some("/run/user/5")), 5, 42),
        PathBuf::from("/run/user/5/tend.42")
    );
    assert_eq!(
        default_dir(&env(None), 5, 42),
        PathBuf::from("/tmp/tend-5/notify.42")
    );
    assert_eq!(
        default_dir(&env(Some("relative")), 5, 42),
        PathBuf::from("/tmp/tend-5/notify.42")
    );
    let long: &'static str = Box::leak(format!("/{}", "x".repeat(60)).into_boxed_str());
    assert_eq!(
        default_dir(&env(Some(long)), 5, 42),
        PathBuf::from("/tmp/tend-5/notify.42")
    );
}

#[test]
fn every_socket_path_fits_in_sun_path() {
    let name = "n".repeat(64);
    for dir in [
        default_dir(&env(None), u32::MAX, 4_194_304),
        default_dir(&env(None), 0, 4_194_304),
        default_dir(&env(Some("/run/user/4294967295")), 7, 4_194_304),
    ] {
        let path = socket_path(&dir, &name);
        assert!(path.as_os_str().len() < 108, "{}", path.display());
    }
    assert_eq!(
        socket_path(Path::new("/d"), ".."),
        PathBuf::from("/d/...sock")
    );
}

#[test]
fn barriers_are_recognised() {
    assert!(is_barrier(b"BARRIER=1"));
    assert!(is_barrier(b"BARRIER=1\0"));
    assert!(is_barrier(b"STATUS=x\nBARRIER=1\n"));
    assert!(!is_barrier(b"FDSTORE=1"));
    assert!(!is_barrier(b"BARRIER=10"));
    assert!(!is_barrier(b""));
}

#[test]
fn rejections_are_logged_once_then_counted_per_minute() {
    let mut sockets = NotifySockets::new(PathBuf::from("/nonexistent"));
    let t0 = Instant::now();
    sockets.rejected("a", Some(7), t0);
    assert_eq!(sockets.poll_deadline(), Some(t0 + REJECTION_REPORT));
    for _ in 0..1000 {
        sockets.rejected("a", Some(7), t0);
    }
    assert_eq!(sockets.rejections.get("a").map(|r| r.count), Some(1000));
    sockets.handle_deadlines(t0 + Duration::from_secs(1));
    assert_eq!(
        sockets.rejections.get("a").map(|r| r.count),
        Some(1000),
        "not due"
    );
    let t1 = t0 + REJECTION_REPORT;
    sockets.handle_deadlines(t1);
    assert_eq!(
        sockets.rejections.get("a").map(|r| r.count),
        Some(0),
        "reported"
    );
    assert_eq!(sockets.poll_deadline(), Some(t1 + REJECTION_REPORT));
    sockets.handle_deadlines(t1 + REJECTION_REPORT);
    assert!(sockets.rejections.is_empty(), "a quiet minute ends it");
    assert_eq!(sockets.poll_deadline(), None);
}

/// Sockets in a scratch folder, with a poll to register them in.
fn scratch(tag: &str) -> (NotifySockets, mio::Poll, Tokens) {
    let dir = PathBuf::from(format!("/tmp/notify-unit-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    (
        NotifySockets::new(dir),
        mio::Poll::new().expect("poll"),
        Tokens::default(),
    )
}

fn service() -> ServiceId {
    // Any id will do: the sockets only carry it.
    let settings = crate::machine::Settings {
        shutdown_timeout: Duration::from_secs(1),
        exit_when_idle: false,
    };
    let config = crate::config::parse(
        r#"{"services": [{"name": "a", "command": ["/bin/true"]}]}"#,
        None,
    )
    .expect("valid");
    let mut catalog = super::super::catalog::Catalog::default();
    let sup = crate::machine::Supervisor::new(catalog.update(&config, |_| false), settings, 1);
    sup.find("a").expect("a")
}

#[test]
fn datagrams_become_events_with_the_senders_group() {
    let (mut sockets, poll, mut tokens) = scratch("events");
    let id = service();
    let name: Arc<str> = Arc::from("a");
    sockets
        .open(poll.registry(), &mut tokens, &name, Some(id))
        .expect("open");
    let path = socket_path(sockets.dir(), "a");
    let sender = std::os::unix::net::UnixDatagram::unbound().expect("socket");
    sender
        .send_to(b"READY=1\nSTATUS=up\nMAINPID=1", &path)
        .expect("send");
    sender.send_to(b"BARRIER=1", &path).expect("send");
    sender
        .send_to(&[b'x'; MAX_DATAGRAM + 1], &path)
        .expect("send");
    let token = sockets.token_of(id).expect("token");
    let mut events = Vec::new();
    assert!(
        sockets.receive(token, 10, &|_| None, &mut events),
        "drained"
    );
    let me = std::process::id() as i32;
    let group = sys::socket::getpgid(me).ok().map(Pid);
    let init = sys::socket::getpgid(1).ok().map(Pid);
    assert_eq!(
        events,
        [Event::Notified {
            service: id,
            from: Sender {
                pid: Pid(me),
                pgid: group
            },
            notice: Notice {
                ready: true,
                status: Some("up".into()),
                main_pid: Some((Pid(1), init)),
                ..Notice::default()
            },
        }],
        "the barrier and the overlong datagram say nothing"
    );
    assert!(sockets.socket_problems_logged(token));
    sockets.close_all(poll.registry());
    assert!(!path.exists());
    assert!(!sockets.dir().exists());
}

#[test]
fn a_flood_is_read_in_bounded_turns() {
    let (mut sockets, poll, mut tokens) = scratch("flood");
    let id = service();
    let name: Arc<str> = Arc::from("a");
    sockets
        .open(poll.registry(), &mut tokens, &name, Some(id))
        .expect("open");
    let path = socket_path(sockets.dir(), "a");
    // As many as the socket queues (`net.unix.max_dgram_qlen`, often 10);
    // a sender beyond that waits, or gets `WouldBlock` as this one does.
    let sender = std::os::unix::net::UnixDatagram::unbound().expect("socket");
    sender.set_nonblocking(true).expect("nonblocking");
    let mut sent = 0;
    while sent < 1000
        && sender
            .send_to(format!("STATUS={sent}").as_bytes(), &path)
            .is_ok()
    {
        sent += 1;
    }
    assert!(sent >= 4, "queued {sent}");
    let token = sockets.token_of(id).expect("token");
    let mut events = Vec::new();
    assert!(
        !sockets.receive(token, 3, &|_| None, &mut events),
        "budget spent"
    );
    assert_eq!(events.len(), 3);
    // The loop's turn puts it back on the ready list and reads the rest.
    sockets.readable(token);
    assert!(sockets.has_ready());
    let rest = sockets.pump(&|_| None);
    assert_eq!(rest.len(), sent - 3);
    assert!(!sockets.has_ready());
    // Reopening by name keeps the socket; closing removes it.
    sockets
        .open(poll.registry(), &mut tokens, &name, Some(id))
        .expect("again");
    assert_eq!(sockets.token_of(id), Some(token));
    sockets.close(poll.registry(), "a");
    assert!(!path.exists());
    sockets.close_all(poll.registry());
}
