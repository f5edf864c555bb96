//! The `[supervisord]` section: supervisord's own settings.
//!
//! Owns: `logfile` → top-level `log_file`, `loglevel` → `log_level`, `environment`
//! (merged under every program's own, as supervisord does), and a warning for
//! each other option. Must not: touch programs; their share of this section is the
//! environment it returns.

use super::ini::{Ini, Section};
use super::program::boolean;
use super::supervisord::{self, EnvVar, Mode, Names, Refs};
use super::{Host, ImportError, Top};

/// Read `[supervisord]` into `top`; returns its `environment`.
pub fn import(
    ini: &Ini,
    section: &Section,
    here: &str,
    host: &Host,
    top: &mut Top,
    warnings: &mut Vec<String>,
) -> Result<Vec<EnvVar>, ImportError> {
    let origin = "[supervisord]";
    let names = Names {
        here,
        host,
        global_env: &[],
        program_env: &[],
        process: None,
    };
    let mut env = Vec::new();
    for opt in ini.options(section) {
        let key = opt.key.as_str();
        if key == "environment" {
            env = supervisord::environment(&opt, origin, &names, 2, warnings)?;
            continue;
        }
        let mut refs = Refs::default();
        let value = names.expand(&opt, origin, Mode::Bake, &mut refs, warnings)?;
        let flag = || boolean(&value, &opt, origin);
        let why = match key {
            "logfile" => {
                match value.as_str() {
                    "/dev/stdout" | "/dev/stderr" | "/proc/self/fd/1" | "/proc/self/fd/2"
                    | "/dev/fd/1" | "/dev/fd/2" => {}
                    "/dev/null" => warnings.push(format!(
                        "{origin} logfile=/dev/null: tend's own messages still go to its \
                         stdout; raise log_level to see fewer"
                    )),
                    _ => {
                        top.log_file = Some(value.clone());
                        warnings.push(format!(
                            "{origin} logfile: tend's log_file {value:?} also gets the \
                             services' output lines, not only tend's own messages"
                        ));
                    }
                }
                continue;
            }
            "loglevel" => {
                top.log_level = Some(match value.to_lowercase().as_str() {
                    "critical" | "error" => "error",
                    "warn" => "warn",
                    "info" => "info",
                    "debug" => "debug",
                    "trace" | "blather" => "trace",
                    _ => {
                        return Err(ImportError::at(
                            opt.line,
                            format!(
                                "{origin} loglevel: {value:?} is not a level (critical, \
                                 error, warn, info, debug, trace, blather)"
                            ),
                        ));
                    }
                });
                continue;
            }
            "nodaemon" if flag()? => continue,
            "nodaemon" => {
                "tend never daemonizes: it runs in the foreground (start it from \
                           your init, or as a container's command)"
            }
            "silent" if !flag()? => continue,
            "silent" => "no equivalent; tend always writes its log to stdout",
            "strip_ansi" if !flag()? => continue,
            "strip_ansi" => "no equivalent; tend passes output lines on as they are",
            "nocleanup" => "no equivalent; tend makes no automatic child log files",
            "childlogdir" => {
                "no equivalent; tend makes no automatic child log files \
                              (set log_file per service)"
            }
            "logfile_maxbytes" => {
                "not carried over; tend rotates its log_file by \
                                   log_max_size (default 10M)"
            }
            "logfile_backups" => {
                "not carried over; tend keeps log_keep rotated log \
                                  files (default 5)"
            }
            "pidfile" => "no equivalent; tend writes no pid file (see tend status)",
            "minfds" => "no equivalent; set limits.nofile on the services that need it",
            "minprocs" => "no equivalent; set limits.nproc on the services that need it",
            "umask" => "no equivalent; services inherit tend's umask",
            "user" => {
                "no equivalent; tend does not drop its own privileges (set user \
                       on each service, which needs tend to run as root)"
            }
            "identifier" => "no equivalent",
            "directory" => {
                "no equivalent; tend does not change its folder (set \
                            working_dir on the services)"
            }
            _ => "unknown option, ignored (supervisord ignores it too)",
        };
        warnings.push(format!("{origin} {key}={value}: {why}"));
    }
    Ok(env)
}
