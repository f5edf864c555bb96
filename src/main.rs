//! `tend`: argv → command → exit code. Everything else lives in the library.

use std::ffi::OsString;
use std::path::Path;

use tend::cli::{self, Command};
use tend::config::{self, ConfigErrors};
use tend::logging::{self, LogSink};
use tend::runtime::{Runtime, signals::Signals, sys};

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
        Ok(Command::Help) => {
            print!("{}", cli::usage());
            0
        }
        Ok(Command::Version) => {
            println!("tend {}", env!("CARGO_PKG_VERSION"));
            0
        }
        Err(e) => {
            eprintln!("tend: {e}\ntry 'tend --help'");
            2
        }
    };
    std::process::exit(code);
}

/// `tend run`: supervise until shutdown.
fn run(path: &Path) -> i32 {
    // As PID 1, a signal without a handler is simply dropped: install them first.
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

/// `tend check`: validate, then run the start-time checks (SPEC §2), and report
/// every problem (exit 2) and every warning (exit stays 0).
fn check(path: &Path) -> i32 {
    match config::load(path) {
        Ok(config) => {
            for w in &config.warnings {
                eprintln!("tend: warning: {w}");
            }
            let problems = config::preflight(&config);
            if problems.is_empty() {
                println!(
                    "{}: ok ({} services)",
                    path.display(),
                    config.services.len()
                );
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

fn print_problems(path: &Path, errors: &ConfigErrors) {
    let n = errors.0.len();
    let s = if n == 1 { "" } else { "s" };
    eprintln!("tend: {} is invalid ({n} problem{s}):", path.display());
    for e in &errors.0 {
        eprintln!("  {e}");
    }
}
