//! Procfile → tend services, as foreman and honcho run them.
//!
//! Owns: the `name: command` lines (foreman's and honcho's own pattern,
//! `^([A-Za-z0-9_-]+):\s*(.+)$`; blank and `#` lines ignored) and what those tools
//! do with them:
//! - each command runs through a shell (`sh -c`, so `&&`, `$VAR`, redirections
//!   work): the service's command is `["/bin/sh", "-c", COMMAND]`, verbatim;
//! - in the Procfile's folder: that folder is the `working_dir`;
//! - with `PORT` = 5000 + 100 × the entry's position: set in `environment` when
//!   the command mentions `$PORT` (with a warning, since a deployment may want
//!   another port);
//! - `release:` is Heroku's release phase, run before the app starts: a oneshot
//!   every other service waits for (`completed`).
//!
//! Must not: read `.env` (the importer reads no file); a warning says how to add it.

use super::{ImportError, Service, Top, settle_names};

/// `name: command` as foreman matches it (the name starts the line); the command
/// may come back empty, which those tools ignore.
pub fn entry(line: &str) -> Option<(&str, &str)> {
    let end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(line.len());
    if end == 0 {
        return None;
    }
    let command = line[end..].strip_prefix(':')?;
    Some((&line[..end], command.trim()))
}

/// Base of foreman's and honcho's `PORT`; each further entry gets 100 more.
const BASE_PORT: usize = 5000;

/// Import a Procfile whose folder is `folder` (empty: unknown).
pub fn import(text: &str, folder: &str) -> Result<(Top, Vec<String>), ImportError> {
    let mut warnings = Vec::new();
    // (name, command, line)
    let mut entries: Vec<(String, String, usize)> = Vec::new();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (i, line) in text.split('\n').enumerate() {
        let number = i + 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match entry(line) {
            None => warnings.push(format!(
                "line {number}: not a `name: command` line, ignored (as foreman and honcho do): {}",
                excerpt(trimmed)
            )),
            Some((name, "")) => warnings.push(format!(
                "line {number}: {name} has no command, ignored (as foreman and honcho do)"
            )),
            Some((name, command)) => {
                if let Some((_, _, first)) = entries.iter().find(|(n, _, _)| n == name) {
                    return Err(ImportError::at(
                        number,
                        format!(
                            "process type {name:?} is already defined on line {first} \
                             (honcho refuses this too)"
                        ),
                    ));
                }
                entries.push((name.to_string(), command.to_string(), number));
            }
        }
    }
    let mut services = Vec::new();
    let mut variables: Vec<String> = Vec::new();
    for (index, (name, command, line)) in entries.iter().enumerate() {
        let mut service = Service {
            name: name.clone(),
            command: vec!["/bin/sh".into(), "-c".into(), command.clone()],
            working_dir: (!folder.is_empty()).then(|| folder.to_string()),
            ..Service::default()
        };
        for var in variables_used(command) {
            if var == "PORT" {
                let port = BASE_PORT + 100 * index;
                service.environment.push(("PORT".into(), port.to_string()));
                warnings.push(format!(
                    "{name} (line {line}): PORT={port}, as foreman and honcho set it \
                     (5000 + 100 x its position); its command uses $PORT"
                ));
            } else if !variables.contains(&var) {
                variables.push(var);
            }
        }
        if name == "release" {
            service.oneshot = true;
            warnings.push(format!(
                "release (line {line}): Heroku runs it before the other process types start; \
                 imported as a oneshot they wait for (condition completed), where foreman \
                 and honcho run it alongside them"
            ));
        }
        services.push(service);
    }
    if services.iter().any(|s| s.name == "release") {
        for service in services.iter_mut().filter(|s| s.name != "release") {
            service
                .dependencies
                .push(("release".to_string(), "completed"));
        }
    }
    if !variables.is_empty() {
        let env_file = if folder.is_empty() {
            ".env".to_string()
        } else {
            format!("{}/.env", folder.trim_end_matches('/'))
        };
        warnings.push(format!(
            "the commands use {}: foreman and honcho also read variables from .env next to \
             the Procfile; if you keep one, add \"env_file\": {env_file:?} to the services",
            variables.join(", ")
        ));
    }
    let origins: Vec<String> = entries
        .iter()
        .map(|(_, _, line)| format!("line {line}"))
        .collect();
    let mut names: Vec<String> = services.iter().map(|s| s.name.clone()).collect();
    settle_names(&mut names, &origins, &mut warnings);
    for (service, name) in services.iter_mut().zip(names) {
        service.name = name;
    }
    let top = Top {
        services,
        ..Top::default()
    };
    Ok((top, warnings))
}

/// The variables a shell command refers to as `$NAME` or `${NAME...}`, in order,
/// each once.
fn variables_used(command: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = command;
    while let Some(at) = rest.find('$') {
        let after = &rest[at + 1..];
        let body = after.strip_prefix('{').unwrap_or(after);
        let len = body
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(body.len());
        let name = &body[..len];
        if name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && !out.iter().any(|n| n == name)
        {
            out.push(name.to_string());
        }
        rest = after;
    }
    out
}

fn excerpt(line: &str) -> String {
    let short: String = line.chars().take(60).collect();
    format!("{short:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_as_foreman_matches_them() {
        assert_eq!(
            entry("web: bundle exec rails s"),
            Some(("web", "bundle exec rails s"))
        );
        assert_eq!(entry("my_worker-2:cmd"), Some(("my_worker-2", "cmd")));
        assert_eq!(entry("web:"), Some(("web", "")));
        assert_eq!(entry(" web: x"), None);
        assert_eq!(entry("web x: y"), None);
        assert_eq!(entry("#web: x"), None);
        assert_eq!(entry(": x"), None);
    }

    #[test]
    fn shell_commands_ports_and_working_dir() {
        let text = "# comment\n\nweb: bundle exec rails server -p $PORT\r\nworker: bundle exec sidekiq\n\
                    api: ./api --port=${PORT:-3000}\n";
        let (top, warnings) = import(text, "/srv/app").unwrap();
        let names: Vec<&str> = top.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["web", "worker", "api"]);
        let web = &top.services[0];
        assert_eq!(
            web.command,
            ["/bin/sh", "-c", "bundle exec rails server -p $PORT"]
        );
        assert_eq!(web.working_dir.as_deref(), Some("/srv/app"));
        assert_eq!(web.environment, [("PORT".to_string(), "5000".to_string())]);
        assert!(top.services[1].environment.is_empty());
        // The port follows the entry's position, as foreman's port_for does.
        assert_eq!(top.services[2].environment[0].1, "5200");
        assert_eq!(warnings.len(), 2, "{warnings:?}");
    }

    #[test]
    fn release_runs_first_and_variables_point_at_env_file() {
        let text = "release: rake db:migrate\nweb: node server.js --env $NODE_ENV\n";
        let (top, warnings) = import(text, "/srv/app").unwrap();
        assert!(top.services[0].oneshot);
        assert_eq!(
            top.services[1].dependencies,
            [("release".to_string(), "completed")]
        );
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("NODE_ENV") && w.contains("/srv/app/.env"))
        );
    }

    #[test]
    fn odd_lines_are_warnings_and_duplicates_are_errors() {
        let (top, warnings) = import("web: a\n  indented: b\nempty:   \n", "").unwrap();
        assert_eq!(top.services.len(), 1);
        assert!(top.services[0].working_dir.is_none());
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].starts_with("line 2:"));
        let e = import("web: a\nweb: b\n", "").unwrap_err();
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn long_names_are_shortened() {
        let long = "w".repeat(80);
        let (top, warnings) = import(&format!("{long}: x\n"), "").unwrap();
        assert_eq!(top.services[0].name.len(), 64);
        assert_eq!(warnings.len(), 1);
    }

    #[test]
    fn variables() {
        assert_eq!(
            variables_used("a $A ${B:-x} $1 $$ ${C} $A"),
            ["A", "B", "C"]
        );
    }
}
