//! One `[program:x]` section → one tend service per process.
//!
//! Owns: each program option's tend equivalent (the table is in the README section
//! "Coming from supervisord"), the warnings for the options without one, and the
//! supervisord defaults that differ from tend's, written out so the service behaves
//! as it did: `autorestart=unexpected` → `restart_policy: "on-failure"`,
//! `startsecs=1` → `min_uptime: "1s"`, `startretries=3` → `max_retries: 3`.
//! Must not: order services or settle names (that needs every program:
//! [`super::supervisord`]).
//!
//! Commands: supervisord splits `command` as `shlex.split` does and execs the words
//! without a shell, so `>`, `|`, `$HOME` reach the program as they are. The import
//! does the same (a warning points at such words), except for an `%(ENV_X)s` from
//! the environment, which only a shell can read at spawn: then the command becomes
//! `/bin/sh -c 'exec WORDS'` with `"${X}"` in place.

use super::ini::{Ini, Opt, Section};
use super::lex;
use super::logs::{Dest, logs};
use super::supervisord::{self, EnvVar, Group, Mode, Names, Piece, Process, Ref, Refs};
use super::{ImportError, Service};
use crate::config::Signal;

/// One process of a program, before names are settled and start order is added.
pub struct Proc {
    pub service: Service,
    /// (group priority, priority): supervisord starts in this order.
    pub priority: (i64, i64),
    /// `[program:x]`, for warnings.
    pub origin: String,
}

/// `numprocs` above this is refused: each process becomes a service.
const MAX_PROCS: i64 = 1000;

/// Options that are read below, so the unknown ones can be reported.
const KNOWN: &[&str] = &[
    "command",
    "process_name",
    "numprocs",
    "numprocs_start",
    "directory",
    "priority",
    "autostart",
    "autorestart",
    "startsecs",
    "startretries",
    "stopsignal",
    "stopwaitsecs",
    "exitcodes",
    "user",
    "redirect_stderr",
    "stdout_logfile",
    "stderr_logfile",
    "environment",
    "stopasgroup",
    "killasgroup",
    "umask",
    "serverurl",
    "stdout_logfile_maxbytes",
    "stdout_logfile_backups",
    "stderr_logfile_maxbytes",
    "stderr_logfile_backups",
    "stdout_capture_maxbytes",
    "stderr_capture_maxbytes",
    "stdout_events_enabled",
    "stderr_events_enabled",
    "stdout_syslog",
    "stderr_syslog",
];

/// Import `[program:x]`; `group` is the `[group:y]` that lists it.
pub fn import(
    ini: &Ini,
    section: &Section,
    group: Option<&Group>,
    names: &Names,
    warnings: &mut Vec<String>,
) -> Result<Vec<Proc>, ImportError> {
    let program = section.name.strip_prefix("program:").unwrap_or("").trim();
    if program.is_empty() || program.contains([' ', ':', '/']) {
        return Err(ImportError::at(
            section.line,
            format!(
                "[{}]: invalid program name (supervisord refuses a space, : or /)",
                section.name
            ),
        ));
    }
    let origin = format!("[program:{program}]");
    let opts = ini.options(section);
    let get = |key: &str| opts.iter().find(|o| o.key == key);
    let process = Process {
        program,
        group: group.map_or(program, |g| g.name.as_str()),
        num: 0,
        numprocs: 1,
    };
    let first = Names {
        process: Some(process),
        ..*names
    };
    // One value of the program, read now (see supervisord::Mode::Bake).
    let bake =
        |key: &str, warnings: &mut Vec<String>| -> Result<Option<(String, &Opt)>, ImportError> {
            let Some(opt) = get(key) else { return Ok(None) };
            let value = first.expand(opt, &origin, Mode::Bake, &mut Refs::default(), warnings)?;
            Ok(Some((value, opt)))
        };
    let int = |key: &str, default: i64, min: i64, warnings: &mut Vec<String>| match bake(
        key, warnings,
    )? {
        Some((value, opt)) => {
            let n = integer(&value, opt, &origin)?;
            if n < min {
                return Err(ImportError::at(
                    opt.line,
                    format!("{origin} {key}: {n} is below {min}"),
                ));
            }
            Ok(n)
        }
        None => Ok(default),
    };
    let flag = |key: &str, default: bool, warnings: &mut Vec<String>| match bake(key, warnings)? {
        Some((value, opt)) => boolean(&value, opt, &origin),
        None => Ok(default),
    };
    let numprocs = int("numprocs", 1, i64::MIN, warnings)?;
    let numprocs_start = int("numprocs_start", 0, 0, warnings)?;
    let priority = int("priority", 999, i64::MIN, warnings)?;
    let min_uptime = int("startsecs", 1, 0, warnings)?;
    let max_retries = int("startretries", 3, 0, warnings)?;
    if max_retries > i64::from(u32::MAX) {
        let line = get("startretries").map_or(section.line, |o| o.line);
        return Err(ImportError::at(
            line,
            format!("{origin} startretries: {max_retries} is too large"),
        ));
    }
    let timeout_stop = match get("stopwaitsecs") {
        Some(_) => Some(int("stopwaitsecs", 10, 0, warnings)?),
        None => None,
    };
    let autostart = flag("autostart", true, warnings)?;
    let redirect_stderr = flag("redirect_stderr", false, warnings)?;
    let stopasgroup = flag("stopasgroup", false, warnings)?;
    let killasgroup = flag("killasgroup", stopasgroup, warnings)?;
    if stopasgroup && !killasgroup {
        let line = get("killasgroup").map_or(section.line, |o| o.line);
        return Err(ImportError::at(
            line,
            format!(
                "{origin}: stopasgroup=true with killasgroup=false (supervisord refuses this too)"
            ),
        ));
    }
    let restart_policy = match bake("autorestart", warnings)? {
        Some((value, opt)) => match value.to_lowercase().as_str() {
            "yes" | "true" | "on" | "1" => "always",
            "no" | "false" | "off" | "0" => "never",
            "unexpected" => "on-failure",
            _ => {
                return Err(ImportError::at(
                    opt.line,
                    format!(
                        "{origin} autorestart: expected true, false or unexpected, got {value:?}"
                    ),
                ));
            }
        },
        None => "on-failure",
    };
    let stop_signal = match bake("stopsignal", warnings)? {
        Some((value, opt)) => Some(
            signal(&value)
                .map_err(|e| ImportError::at(opt.line, format!("{origin} stopsignal: {e}")))?,
        ),
        None => None,
    };
    let success_exit_codes = match bake("exitcodes", warnings)? {
        Some((value, opt)) => Some(exit_codes(&value, opt, &origin)?),
        None => None,
    };
    if numprocs > MAX_PROCS {
        let line = get("numprocs").map_or(section.line, |o| o.line);
        return Err(ImportError::at(
            line,
            format!(
                "{origin} numprocs={numprocs}: import makes one service per process, at most {MAX_PROCS}"
            ),
        ));
    }
    let process_name = get("process_name").map_or("%(program_name)s", |o| o.value.as_str());
    if numprocs > 1 && !process_name.contains("%(process_num)") {
        let line = get("numprocs").map_or(section.line, |o| o.line);
        return Err(ImportError::at(
            line,
            format!(
                "{origin}: numprocs > 1 needs %(process_num) in process_name (supervisord refuses this too)"
            ),
        ));
    }
    option_warnings(&opts, &origin, numprocs, redirect_stderr, warnings);
    let mut procs = Vec::new();
    for num in numprocs_start..numprocs_start.saturating_add(numprocs.max(0)) {
        let names = Names {
            process: Some(Process {
                num,
                numprocs,
                ..process
            }),
            ..*names
        };
        let mut service = one_process(&opts, &origin, section, &names, redirect_stderr, warnings)?;
        service.enabled = (!autostart).then_some(false);
        service.restart_policy = Some(restart_policy);
        service.success_exit_codes = success_exit_codes.clone();
        service.max_retries = Some(max_retries);
        service.min_uptime = Some(min_uptime);
        service.stop_signal = stop_signal.clone();
        service.timeout_stop = timeout_stop;
        procs.push(Proc {
            service,
            priority: group.map_or((priority, priority), |g| (g.priority, priority)),
            origin: origin.clone(),
        });
    }
    Ok(procs)
}

/// What differs between the processes of a program: its name, environment,
/// command, folder, user and log files.
fn one_process(
    opts: &[Opt],
    origin: &str,
    section: &Section,
    names: &Names,
    redirect_stderr: bool,
    warnings: &mut Vec<String>,
) -> Result<Service, ImportError> {
    let get = |key: &str| opts.iter().find(|o| o.key == key);
    let mut environment: Vec<EnvVar> = names.global_env.to_vec();
    if let Some(opt) = get("environment") {
        for var in supervisord::environment(opt, origin, names, 1, warnings)? {
            match environment.iter_mut().find(|v| v.key == var.key) {
                Some(old) => *old = var,
                None => environment.push(var),
            }
        }
    }
    let names = Names {
        program_env: &environment,
        ..*names
    };
    let mut bake = |key: &str| -> Result<Option<String>, ImportError> {
        match get(key) {
            Some(opt) => names
                .expand(opt, origin, Mode::Bake, &mut Refs::default(), warnings)
                .map(Some),
            None => Ok(None),
        }
    };
    let name = match get("process_name") {
        Some(_) => bake("process_name")?.unwrap_or_default(),
        None => names
            .process
            .map(|p| p.program.to_string())
            .unwrap_or_default(),
    };
    // supervisord refuses an empty folder, user or log path, and so does tend.
    let mut path = |key: &str| match bake(key)? {
        Some(v) if v.is_empty() => Err(ImportError::at(
            get(key).map_or(section.line, |o| o.line),
            format!("{origin} {key} is empty"),
        )),
        other => Ok(other),
    };
    let working_dir = path("directory")?;
    let user = path("user")?;
    let stdout = Dest::of(path("stdout_logfile")?);
    let stderr = Dest::of(path("stderr_logfile")?);
    let Some(opt) = get("command") else {
        return Err(ImportError::at(
            section.line,
            format!("{origin} has no command (supervisord refuses this too)"),
        ));
    };
    let command = command(opt, origin, &names, warnings)?;
    let (log_file, output) = logs(stdout, stderr, redirect_stderr, origin, warnings);
    Ok(Service {
        name,
        command,
        working_dir,
        environment: environment.into_iter().map(|v| (v.key, v.value)).collect(),
        output,
        log_file,
        user,
        ..Service::default()
    })
}

/// `command=` → argv, as supervisord would exec it.
fn command(
    opt: &Opt,
    origin: &str,
    names: &Names,
    warnings: &mut Vec<String>,
) -> Result<Vec<String>, ImportError> {
    let mut refs = Refs::default();
    let text = names.expand(opt, origin, Mode::Command, &mut refs, warnings)?;
    let words = lex::split_command(&text).map_err(|e| {
        ImportError::at(
            opt.line,
            format!("{origin} command: {e}, so supervisord cannot start it either"),
        )
    })?;
    if words.first().is_none_or(String::is_empty) {
        return Err(ImportError::at(
            opt.line,
            format!("{origin} command is empty"),
        ));
    }
    if refs.0.is_empty() {
        shell_syntax(&words, origin, warnings);
        return Ok(words);
    }
    let script: Vec<String> = words
        .iter()
        .map(|word| {
            let pieces = refs.pieces(word);
            if pieces.is_empty() {
                return "''".to_string();
            }
            pieces
                .into_iter()
                .map(|piece| match piece {
                    Piece::Text(t) => lex::sh_quote(t),
                    Piece::Ref(Ref::Var(x)) => format!("\"${{{x}}}\""),
                    Piece::Ref(Ref::Raw(raw)) => lex::sh_quote(raw),
                })
                .collect()
        })
        .collect();
    Ok(vec![
        "/bin/sh".into(),
        "-c".into(),
        format!("exec {}", script.join(" ")),
    ])
}

/// Warn about words a shell would have interpreted, when no shell runs them.
fn shell_syntax(words: &[String], origin: &str, warnings: &mut Vec<String>) {
    let shells = ["sh", "bash", "dash", "zsh", "ash", "ksh"];
    let program = words
        .first()
        .and_then(|w| w.rsplit('/').next())
        .unwrap_or("");
    if shells.contains(&program) && words.iter().any(|w| w == "-c") {
        return;
    }
    let looks_like_shell = |w: &&String| {
        let operators = ["|", "||", "&", "&&", ";", "2>&1", "1>&2"];
        operators.contains(&w.as_str())
            || w.starts_with(['>', '<', '~'])
            || w.starts_with("2>")
            || w.starts_with("&>")
            || w.contains("$(")
            || w.contains('`')
            || w.match_indices('$').any(|(i, _)| {
                w[i + 1..].starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == '{')
            })
    };
    let found: Vec<String> = words
        .iter()
        .skip(1)
        .filter(looks_like_shell)
        .map(|w| format!("{w:?}"))
        .collect();
    if !found.is_empty() {
        warnings.push(format!(
            "{origin} command: {} look like shell syntax, but supervisord runs the command \
             without a shell and so does tend (the words are passed as they are); use \
             [\"/bin/sh\", \"-c\", \"...\"] if a shell was meant",
            found.join(", ")
        ));
    }
}

/// The warnings that depend on an option alone.
fn option_warnings(
    opts: &[Opt],
    origin: &str,
    numprocs: i64,
    redirect_stderr: bool,
    warnings: &mut Vec<String>,
) {
    let value_of = |key: &str| {
        opts.iter()
            .find(|o| o.key == key)
            .map(|o| o.value.to_lowercase())
    };
    for opt in opts {
        let key = opt.key.as_str();
        let value = opt.value.to_lowercase();
        let off = matches!(value.as_str(), "no" | "false" | "off" | "0");
        // A size of 0 ("0", "0MB"): no rotation, no capture.
        let digits: String = value.chars().take_while(char::is_ascii_digit).collect();
        let zero = !digits.is_empty() && digits.chars().all(|c| c == '0');
        let why = match key {
            _ if !KNOWN.contains(&key) => {
                "unknown option, ignored (supervisord ignores it too)".to_string()
            }
            "numprocs" if numprocs > 1 => {
                format!("tend has no numprocs; imported as {numprocs} services, one per process")
            }
            "numprocs" if numprocs < 1 => {
                "supervisord starts no process of this program; none imported".to_string()
            }
            "umask" => "no per-service equivalent; services inherit tend's umask".to_string(),
            "serverurl" if value != "auto" => {
                "no equivalent (it is for supervisor's childutils)".to_string()
            }
            "stopasgroup" | "killasgroup" if off => {
                "tend always signals the service's whole process group".to_string()
            }
            "stdout_capture_maxbytes" | "stderr_capture_maxbytes" if !zero => {
                "no equivalent (capture mode is for event listeners)".to_string()
            }
            "stdout_events_enabled"
            | "stderr_events_enabled"
            | "stdout_syslog"
            | "stderr_syslog"
                if !off =>
            {
                "no equivalent in tend".to_string()
            }
            "stdout_logfile_maxbytes"
            | "stdout_logfile_backups"
            | "stderr_logfile_maxbytes"
            | "stderr_logfile_backups" => {
                let stream = if key.starts_with("stdout") {
                    "stdout"
                } else {
                    "stderr"
                };
                let dest = if stream == "stderr" && redirect_stderr {
                    None
                } else {
                    Some(Dest::of(value_of(&format!("{stream}_logfile"))))
                };
                let rotate = if key.ends_with("maxbytes") {
                    "log_max_size"
                } else {
                    "log_keep"
                };
                match dest {
                    Some(Dest::File(_)) => {
                        format!("no per-service equivalent; tend rotates by {rotate}")
                    }
                    None | Some(Dest::Discard | Dest::Std) if zero => continue,
                    None => {
                        "ignored, as supervisord ignores it with redirect_stderr=true".to_string()
                    }
                    _ => format!("ignored: {stream} is not written to a file of its own"),
                }
            }
            _ => continue,
        };
        warnings.push(format!("{origin} {key}={}: {why}", opt.value));
    }
}

/// Python's `int(text)`: optional sign, digits (single `_` between them allowed).
pub fn integer(text: &str, opt: &Opt, origin: &str) -> Result<i64, ImportError> {
    let t = text.trim();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    let ok = !digits.is_empty()
        && !digits.starts_with('_')
        && !digits.ends_with('_')
        && !digits.contains("__")
        && digits.chars().all(|c| c.is_ascii_digit() || c == '_');
    let n = if ok {
        t.replace('_', "").parse::<i64>().ok()
    } else {
        None
    };
    n.ok_or_else(|| {
        ImportError::at(
            opt.line,
            format!(
                "{origin} {}: expected a whole number, got {text:?}",
                opt.key
            ),
        )
    })
}

/// supervisord's `boolean`: yes/true/on/1 or no/false/off/0, any case.
pub fn boolean(text: &str, opt: &Opt, origin: &str) -> Result<bool, ImportError> {
    match text.to_lowercase().as_str() {
        "yes" | "true" | "on" | "1" => Ok(true),
        "no" | "false" | "off" | "0" => Ok(false),
        _ => Err(ImportError::at(
            opt.line,
            format!("{origin} {}: expected true or false, got {text:?}", opt.key),
        )),
    }
}

/// `exitcodes=0,2` → `[0, 2]`, each 0 to 255.
fn exit_codes(text: &str, opt: &Opt, origin: &str) -> Result<Vec<i64>, ImportError> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|code| match integer(code, opt, origin) {
            Ok(n) if (0..=255).contains(&n) => Ok(n),
            _ => Err(ImportError::at(
                opt.line,
                format!("{origin} exitcodes: {code:?} is not an exit code 0-255"),
            )),
        })
        .collect()
}

/// supervisord's `signal_number` → tend's name for it (`QUIT` → `SIGQUIT`).
fn signal(text: &str) -> Result<String, String> {
    let signal = Signal::parse(text)?;
    Ok(match signal.name() {
        Some(name) => format!("SIG{name}"),
        None => signal.0.to_string(),
    })
}
