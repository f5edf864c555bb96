//! `tend`: argv → command → exit code. Everything else lives in the library.

#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::path::Path;

use tend::cli::{self, Command};
use tend::config::{self, ConfigErrors};
use tend::logging::{self, LogSink};
use tend::runtime::{Runtime, signals::Signals};
use tend::sys;

fn main() {
    // Before any fd is opened: a PID 1 started with fd 1 closed must not hand its
    // epoll fd to services as their stdout.
    sys::sanitize_std_fds();
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let env = |key: &str| std::env::var_os(key);
    let code = match cli::parse(args, &env) {
        Ok(Command::Run { config }) => run(&config),
        Ok(Command::Check { config }) => check(&config),
        Ok(Command::Client {
            socket,
            config,
            action,
        }) => tend::client::run(socket, &config, action),
        Ok(Command::Help { command }) => {
            tend::client::emit(cli::help(command));
            0
        }
        Ok(Command::Import { file }) => import(&file),
        Ok(Command::Completions { shell }) => {
            tend::client::emit(tend::completions::script(shell));
            0
        }
        Ok(Command::Version) => {
            tend::client::emit(format!("tend {}\n", env!("CARGO_PKG_VERSION")));
            0
        }
        Ok(Command::ReexecCheck) => {
            tend::client::emit(format!("{}\n", tend::runtime::reexec::check::answer_line()));
            0
        }
        Ok(Command::Resume { config: _, fd }) => resume(&fd),
        Err(e) => {
            eprintln!("tend: {e}\ntry 'tend --help'");
            2
        }
    };
    std::process::exit(code);
}

/// `tend run`: supervise until shutdown.
fn run(path: &Path) -> i32 {
    // As PID 1, a signal without a handler is simply dropped: install them first
    // (this also clears the mask and the ignored dispositions tend inherited).
    let signals = match Signals::install() {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("tend: unable to install signal handlers: {e}");
            return 1;
        }
    };
    let config = match config::load(path) {
        Ok(config) => config,
        Err(errors) => {
            print_problems(path, &errors);
            return 2;
        }
    };
    // Log files are opened by the runtime with the services; one that cannot
    // be opened is reported in the log and retried, never fatal.
    let log = LogSink::install(
        logging::effective_level(config.log_level),
        config.log_format,
    );
    sys::cloexec_inherited_fds();
    if !sys::is_pid1()
        && let Err(e) = sys::set_child_subreaper()
    {
        log::warn!(
            "cannot become child subreaper ({e}): orphans of services will not be reaped by tend"
        );
    }
    match Runtime::new(path, config, signals, log) {
        Ok(runtime) => runtime.run(),
        Err(e) => {
            eprintln!("tend: {e}");
            1
        }
    }
}

/// `tend run --resume FD`: go on from the state the tend that exec'ed this
/// one handed over (SPEC §8). Its fds are taken over before anything else
/// opens one; signals stay blocked (as the exec left them) until the
/// handlers are in place.
fn resume(fd: &str) -> i32 {
    let resumed = match tend::runtime::reexec::load(fd) {
        Ok(resumed) => resumed,
        Err(e) => {
            eprintln!("tend: cannot resume after re-exec: {e}");
            return 1;
        }
    };
    let signals = match Signals::install() {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("tend: unable to install signal handlers: {e}");
            return 1;
        }
    };
    let config = resumed.config();
    let log = LogSink::install(
        logging::effective_level(config.log_level),
        config.log_format,
    );
    // (The fds handed over are close-on-exec again: `load` did that.)
    if !sys::is_pid1() {
        let _ = sys::set_child_subreaper();
    }
    match Runtime::resume(resumed, signals, log) {
        Ok(runtime) => runtime.run_resumed(),
        Err(e) => {
            eprintln!("tend: cannot resume after re-exec: {e}");
            1
        }
    }
}

/// `tend check`: validate, then run the start-time checks (SPEC §2), and report
/// every problem (exit 2) and every warning (exit stays 0).
fn check(path: &Path) -> i32 {
    match config::load(path) {
        Ok(config) => {
            for w in &config.warnings {
                eprintln!("tend: warning: {w}");
            }
            for w in tend::runtime::cgroup::check(&config) {
                eprintln!("tend: warning: {w}");
            }
            for w in config::preflight::warnings(&config) {
                eprintln!("tend: warning: {w}");
            }
            let problems = config::preflight(&config);
            if problems.is_empty() {
                tend::client::emit(format!(
                    "{}: ok ({} services)\n",
                    path.display(),
                    config.services.len()
                ));
                return 0;
            }
            let n = problems.len();
            let s = if n == 1 { "" } else { "s" };
            eprintln!(
                "tend: {} is valid, but {n} problem{s} would fail services at start:",
                path.display()
            );
            for p in &problems {
                eprintln!("  {p}");
            }
            2
        }
        Err(errors) => {
            print_problems(path, &errors);
            2
        }
    }
}

/// `tend import FILE`: the config on stdout, each warning on stderr; exit 2 when
/// the file cannot be read or imported.
fn import(file: &Path) -> i32 {
    use std::io::Write;
    let text = match std::fs::read(file).map(String::from_utf8) {
        Ok(Ok(text)) => text,
        Ok(Err(_)) => {
            eprintln!("tend: {}: not UTF-8 text", file.display());
            return 2;
        }
        Err(e) => {
            eprintln!("tend: cannot read {}: {e}", file.display());
            return 2;
        }
    };
    // Its folder is supervisord's %(here)s and a Procfile's working_dir.
    let path = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    match tend::import::import(&text, &path) {
        Ok(imported) => {
            for warning in &imported.warnings {
                eprintln!("warning: {warning}");
            }
            match std::io::stdout().write_all(imported.text.as_bytes()) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("tend: cannot write the config: {e}");
                    1
                }
            }
        }
        Err(e) => {
            eprintln!("tend: {}: {e}", file.display());
            2
        }
    }
}

fn print_problems(path: &Path, errors: &ConfigErrors) {
    eprintln!("tend: {}", tend::client::describe_problems(path, errors));
}
