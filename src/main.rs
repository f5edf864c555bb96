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
    let mut log = LogSink::install(logging::effective_level(config.log_level));
    if let Some(file) = &config.log_file
        && let Err(e) = log.set_file(Some(file))
    {
        eprintln!("tend: unable to open log_file {}: {e}", file.display());
        return 1;
    }
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

/// `tend check`: validate and report every problem.
fn check(path: &Path) -> i32 {
    match config::load(path) {
        Ok(config) => {
            println!(
                "{}: ok ({} services)",
                path.display(),
                config.services.len()
            );
            0
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
