//! Where a program's output goes: supervisord's `stdout_logfile`, `stderr_logfile`
//! and `redirect_stderr` → tend's `log_file` and `output`.
//!
//! Owns: the mapping and its warnings. tend has one `log_file` per service, which
//! gets both streams (stderr lines marked), and its log (stdout) gets every line
//! anyway; so a file named for either stream becomes the `log_file`, `NONE` for
//! both becomes `output: "null"`, `/dev/stdout` is simply tend's log, and every
//! other difference is a warning. Must not: read options (the caller expands them).

/// Where a stream's output goes in supervisord.
#[derive(Debug, Clone, PartialEq)]
pub enum Dest {
    /// `AUTO` (or not set): a file supervisord names in `childlogdir`.
    Auto {
        explicit: bool,
    },
    /// `NONE`: discarded.
    Discard,
    /// supervisord's own stdout or stderr (`/dev/stdout`), as tend's log is.
    Std,
    /// The deprecated `syslog` value.
    Syslog,
    File(String),
}

impl Dest {
    pub fn of(value: Option<String>) -> Dest {
        let Some(value) = value else {
            return Dest::Auto { explicit: false };
        };
        match value.to_lowercase().as_str() {
            "auto" => Dest::Auto { explicit: true },
            "none" | "off" => Dest::Discard,
            "syslog" => Dest::Syslog,
            "/dev/stdout" | "/dev/stderr" | "/proc/self/fd/1" | "/proc/self/fd/2" | "/dev/fd/1"
            | "/dev/fd/2" => Dest::Std,
            _ => Dest::File(value),
        }
    }
}

/// The service's `log_file` and `output` from both streams' destinations. tend has
/// one log file per service, for both streams; each difference is a warning.
pub fn logs(
    stdout: Dest,
    stderr: Dest,
    redirect: bool,
    origin: &str,
    warnings: &mut Vec<String>,
) -> (Option<String>, Option<&'static str>) {
    if redirect && let Dest::File(f) = &stderr {
        warnings.push(format!("{origin} stderr_logfile={f}: ignored, as supervisord ignores it with redirect_stderr=true"));
    }
    let stderr = if redirect { None } else { Some(stderr) };
    let file = match (&stdout, &stderr) {
        (Dest::File(f), _) | (_, Some(Dest::File(f))) => Some(f.clone()),
        _ => None,
    };
    if stdout == Dest::Discard && matches!(stderr, None | Some(Dest::Discard)) {
        return (None, Some("null"));
    }
    // "stdout goes to ...", or "goes to ..." after the stream's own name.
    let goes = |stream: &str| {
        let to = match &file {
            Some(f) => format!(
                "goes to log_file {f:?} as well (tend writes both streams of a service to its \
                 one log_file)"
            ),
            None => "goes to tend's log (see tend logs NAME)".to_string(),
        };
        format!("{stream} {to}").trim_start().to_string()
    };
    for (stream, dest) in [("stdout", Some(&stdout)), ("stderr", stderr.as_ref())] {
        let Some(dest) = dest else { continue };
        let why = match dest {
            Dest::File(f) if Some(f) == file.as_ref() => continue,
            Dest::File(f) => format!("_logfile={f}: {}", goes(stream)),
            Dest::Auto { explicit: true } => format!(
                "_logfile=AUTO: no automatic log files in tend; {}",
                goes(stream)
            ),
            Dest::Discard => format!(
                "_logfile=NONE: tend cannot discard one stream only; {}",
                goes(stream)
            ),
            Dest::Syslog => format!("_logfile=syslog: no syslog in tend; {}", goes(stream)),
            Dest::Auto { explicit: false } | Dest::Std if file.is_some() => {
                format!(" {}", goes(""))
            }
            Dest::Auto { explicit: false } | Dest::Std => continue,
        };
        warnings.push(format!("{origin} {stream}{why}"));
    }
    (file, None)
}
