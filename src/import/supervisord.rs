//! supervisord config → tend config: sections, the `[supervisord]` options, groups,
//! start order, and the `%(name)s` names every value may use.
//!
//! Owns: which section becomes what ([`import`]), and [`Names`]: what each
//! expansion name stands for and when an `%(ENV_X)s` is read.
//! Must not: read the file system or the real environment (the [`Host`] brings
//! both); one `[program:x]` is [`super::program`]'s.
//!
//! `%(ENV_X)s` is read when supervisord starts. tend has the same moment only in
//! `environment` values (`${X}`, expanded when tend loads its config), so:
//! - in `environment`, it becomes `${X}`;
//! - in `command`, it is left to `/bin/sh` at spawn (`"${X}"`), never written into
//!   the config: it is often a secret (`--token %(ENV_TOKEN)s`);
//! - elsewhere (`directory`, `user`, log files, numbers), tend expands nothing: it
//!   is taken from the importing environment, with a warning.
//!
//! A variable the file itself sets (`[supervisord]` or the program's own
//! `environment`) is known and written as its value. Each kept `%(ENV_X)s` is held
//! in the expanded text as a mark (U+E000, its index, U+E001) until the value has
//! been split into words or pairs, then written out by [`Refs`].
//!
//! Start order: supervisord starts processes by ascending `priority` (a program in
//! a `[group:x]` by the group's priority first), without waiting for one to be up
//! before the next. So each service with a higher priority depends on every
//! autostarted service of the next lower priority with condition `started`.

use super::expand::{self, Spec, Value};
use super::ini::{self, Ini, Opt, Section};
use super::lex;
use super::program::{self, Proc};
use super::{Host, ImportError, Top, settle_names};

/// A variable from an `environment=` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    pub key: String,
    /// As written to tend's `environment` (a literal `$` doubled, `${X}` kept).
    pub value: String,
    /// The value when it holds no kept `%(ENV_X)s`.
    pub literal: Option<String>,
}

/// What a kept `%(ENV_X)s` is written as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ref {
    /// `${X}` in `environment`, `"${X}"` in a `/bin/sh` command.
    Var(String),
    /// Text already in tend's `environment` syntax (a `[supervisord]` variable
    /// that itself holds `${X}`).
    Raw(String),
}

/// More processes than this are refused (each becomes a service, and each level
/// of start order depends on every service of the level below).
const MAX_SERVICES: usize = 1000;

const MARK_OPEN: char = '\u{e000}';
const MARK_CLOSE: char = '\u{e001}';

/// The kept `%(ENV_X)s` of one value, by index.
#[derive(Debug, Default)]
pub struct Refs(pub Vec<Ref>);

/// A piece of expanded text: literal, or a kept reference.
pub enum Piece<'a> {
    Text(&'a str),
    Ref(&'a Ref),
}

impl Refs {
    fn mark(&mut self, r: Ref) -> String {
        self.0.push(r);
        format!("{MARK_OPEN}{}{MARK_CLOSE}", self.0.len() - 1)
    }

    /// `text` cut into literal pieces and references.
    pub fn pieces<'a>(&'a self, text: &'a str) -> Vec<Piece<'a>> {
        let mut out = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find(MARK_OPEN) {
            let after = &rest[open + MARK_OPEN.len_utf8()..];
            let Some(close) = after.find(MARK_CLOSE) else {
                break;
            };
            let Some(r) = after[..close]
                .parse::<usize>()
                .ok()
                .and_then(|i| self.0.get(i))
            else {
                break;
            };
            if open > 0 {
                out.push(Piece::Text(&rest[..open]));
            }
            out.push(Piece::Ref(r));
            rest = &after[close + MARK_CLOSE.len_utf8()..];
        }
        if !rest.is_empty() {
            out.push(Piece::Text(rest));
        }
        out
    }

    /// `text` in tend's `environment` syntax.
    pub fn env_value(&self, text: &str) -> EnvValue {
        let mut value = String::new();
        let mut literal = Some(String::new());
        for piece in self.pieces(text) {
            match piece {
                Piece::Text(t) => {
                    value.push_str(&t.replace('$', "$$"));
                    if let Some(l) = &mut literal {
                        l.push_str(t);
                    }
                }
                Piece::Ref(Ref::Var(x)) => {
                    value.push_str(&format!("${{{x}}}"));
                    literal = None;
                }
                Piece::Ref(Ref::Raw(raw)) => {
                    value.push_str(raw);
                    literal = None;
                }
            }
        }
        EnvValue { value, literal }
    }
}

/// [`Refs::env_value`]'s result.
pub struct EnvValue {
    pub value: String,
    pub literal: Option<String>,
}

/// How a value's `%(ENV_X)s` are read (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// From the importing environment, now.
    Bake,
    /// Left to `/bin/sh` at spawn.
    Command,
    /// Left to tend, as `${X}`.
    Env,
}

/// The per-process names: `program_name`, `group_name`, `process_num`, `numprocs`.
#[derive(Debug, Clone, Copy)]
pub struct Process<'a> {
    pub program: &'a str,
    pub group: &'a str,
    pub num: i64,
    pub numprocs: i64,
}

/// Everything an expansion name can stand for at one place in the file.
pub struct Names<'a> {
    pub here: &'a str,
    pub host: &'a Host,
    pub global_env: &'a [EnvVar],
    pub program_env: &'a [EnvVar],
    pub process: Option<Process<'a>>,
}

impl Names<'_> {
    /// Expand `opt`'s value, read as `mode`. `origin` (`[program:x]`) prefixes the
    /// warnings; `refs` receives the kept `%(ENV_X)s`.
    pub fn expand(
        &self,
        opt: &Opt,
        origin: &str,
        mode: Mode,
        refs: &mut Refs,
        warnings: &mut Vec<String>,
    ) -> Result<String, ImportError> {
        let place = format!("{origin} {}", opt.key);
        expand::expand(&opt.value, &mut |name, spec| {
            self.lookup(name, spec, mode, refs, &place, warnings)
        })
        .map_err(|e| ImportError::at(opt.line, format!("{place}: {e}")))
    }

    fn lookup(
        &self,
        name: &str,
        spec: &Spec,
        mode: Mode,
        refs: &mut Refs,
        place: &str,
        warnings: &mut Vec<String>,
    ) -> Result<String, String> {
        let p = self.process;
        let value = match (name, p) {
            ("here", _) => Value::Str(self.here.to_string()),
            ("host_node_name", _) => {
                let host = self
                    .host
                    .hostname
                    .clone()
                    .ok_or("the host name is unknown")?;
                warnings.push(format!(
                    "{place}: %(host_node_name)s is this machine's name at import ({host:?})"
                ));
                Value::Str(host)
            }
            ("program_name", Some(p)) => Value::Str(p.program.to_string()),
            ("group_name", Some(p)) => Value::Str(p.group.to_string()),
            ("process_num", Some(p)) => Value::Int(p.num),
            ("numprocs", Some(p)) => Value::Int(p.numprocs),
            _ => match name.strip_prefix("ENV_") {
                Some(var) => return self.env(var, spec, mode, refs, place, warnings),
                None => return Err(format!("%({name})s cannot be expanded here")),
            },
        };
        expand::format(&value, spec)
    }

    fn env(
        &self,
        var: &str,
        spec: &Spec,
        mode: Mode,
        refs: &mut Refs,
        place: &str,
        warnings: &mut Vec<String>,
    ) -> Result<String, String> {
        let known = self
            .program_env
            .iter()
            .chain(self.global_env)
            .find(|v| v.key == var);
        let keep = spec.is_plain() && is_identifier(var);
        if let Some(v) = known {
            if let Some(literal) = &v.literal {
                return expand::format(&Value::Str(literal.clone()), spec);
            }
            return match mode {
                Mode::Env if spec.is_plain() => Ok(refs.mark(Ref::Raw(v.value.clone()))),
                Mode::Command if keep => Ok(refs.mark(Ref::Var(var.to_string()))),
                _ => Err(format!(
                    "%(ENV_{var})s holds a variable of tend's environment and cannot be \
                     used here"
                )),
            };
        }
        match mode {
            Mode::Env if keep => Ok(refs.mark(Ref::Var(var.to_string()))),
            Mode::Command if keep => {
                warnings.push(format!(
                    "{place}: %(ENV_{var})s is left to /bin/sh when the service starts \
                     (tend does not expand command; supervisord expanded it once at its start)"
                ));
                Ok(refs.mark(Ref::Var(var.to_string())))
            }
            _ => {
                let value = self.host.env.get(var).ok_or_else(|| {
                    format!(
                        "%(ENV_{var})s: {var} is not set in this environment \
                         (supervisord would refuse this file too); set it and import again"
                    )
                })?;
                warnings.push(format!(
                    "{place}: %(ENV_{var})s taken from this environment at import ({value:?})"
                ));
                expand::format(&Value::Str(value.clone()), spec)
            }
        }
    }
}

/// An `environment=` value → its variables, in order (a repeated key keeps its
/// first place and its last value, as a Python dict does). `passes`: how often
/// supervisord expands it: once in a program, twice in `[supervisord]` (its
/// option reader expands every value, then the environment code again, so `%%`
/// there must be written `%%%%`).
pub fn environment(
    opt: &Opt,
    origin: &str,
    names: &Names,
    passes: usize,
    warnings: &mut Vec<String>,
) -> Result<Vec<EnvVar>, ImportError> {
    let mut refs = Refs::default();
    let mut text = opt.value.clone();
    for _ in 0..passes {
        let again = Opt {
            value: text,
            ..opt.clone()
        };
        text = names.expand(&again, origin, Mode::Env, &mut refs, warnings)?;
    }
    let pairs = lex::env_pairs(&text).map_err(|e| {
        ImportError::at(
            opt.line,
            format!("{origin} environment: {e} (supervisord refuses this too)"),
        )
    })?;
    let mut vars: Vec<EnvVar> = Vec::new();
    for pair in pairs {
        let key = refs.env_value(&pair.key).literal.unwrap_or_default();
        if let Some(skipped) = &pair.skipped {
            warnings.push(format!(
                "{origin} environment: {:?} after {key}= is dropped, as supervisord drops it \
                 (separate pairs with commas, quote values with spaces)",
                refs.env_value(skipped).value
            ));
        }
        if key.is_empty() || key.contains(['=', '\0']) {
            warnings.push(format!(
                "{origin} environment: {key:?} is not a valid variable name; left out"
            ));
            continue;
        }
        let value = refs.env_value(&pair.value);
        let var = EnvVar {
            key,
            value: value.value,
            literal: value.literal,
        };
        match vars.iter_mut().find(|v| v.key == var.key) {
            Some(old) => *old = var,
            None => vars.push(var),
        }
    }
    Ok(vars)
}

/// A name `/bin/sh` and tend's `${X}` accept.
fn is_identifier(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A `[group:x]` section.
pub struct Group {
    pub name: String,
    pub priority: i64,
    pub programs: Vec<String>,
}

/// Import a supervisord config whose folder (`%(here)s`) is `here`.
pub fn import(text: &str, here: &str, host: &Host) -> Result<(Top, Vec<String>), ImportError> {
    if let Some((i, _)) = text
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains([MARK_OPEN, MARK_CLOSE]))
    {
        return Err(ImportError::at(
            i + 1,
            "holds U+E000 or U+E001, which the importer uses as marks",
        ));
    }
    let ini = ini::parse(text)?;
    let mut warnings = Vec::new();
    let mut top = Top::default();
    let mut global_env = Vec::new();
    if let Some(section) = ini.sections.iter().find(|s| s.name == "supervisord") {
        global_env = super::daemon::import(&ini, section, here, host, &mut top, &mut warnings)?;
    }
    let names = Names {
        here,
        host,
        global_env: &global_env,
        program_env: &[],
        process: None,
    };
    let groups = groups(&ini, &names, &mut warnings)?;
    let mut procs: Vec<Proc> = Vec::new();
    for section in &ini.sections {
        let kind = section.name.split(':').next().unwrap_or("");
        match kind {
            "program" if section.name.contains(':') => {
                let group = groups.iter().find(|g| {
                    g.programs
                        .iter()
                        .any(|p| section.name.strip_prefix("program:") == Some(p.as_str()))
                });
                procs.extend(program::import(
                    &ini,
                    section,
                    group,
                    &names,
                    &mut warnings,
                )?);
            }
            "supervisord" | "group" => {}
            _ => warnings.push(section_warning(section)),
        }
    }
    if procs.len() > MAX_SERVICES {
        return Err(ImportError {
            line: None,
            message: format!(
                "{} processes: import makes one service per process, at most {MAX_SERVICES}",
                procs.len()
            ),
        });
    }
    let mut service_names: Vec<String> = procs.iter().map(|p| p.service.name.clone()).collect();
    let origins: Vec<String> = procs.iter().map(|p| p.origin.clone()).collect();
    settle_names(&mut service_names, &origins, &mut warnings);
    for (proc, name) in procs.iter_mut().zip(service_names) {
        proc.service.name = name;
    }
    if start_order(&mut procs) > 1 {
        warnings.push(
            "priority: kept as start order, each priority level depending on the next lower \
             one with condition started (stop order is the reverse, as in supervisord); \
             unlike supervisord, a program that never gets started (failed) holds back the \
             levels above it"
                .to_string(),
        );
    }
    top.services = procs.into_iter().map(|p| p.service).collect();
    let mut seen = Vec::new();
    warnings.retain(|w| {
        let new = !seen.contains(w);
        seen.push(w.clone());
        new
    });
    Ok((top, warnings))
}

/// Each enabled service depends (`started`) on every enabled service of the next
/// lower priority; disabled services take no part (supervisord orders only the
/// processes it autostarts). Returns the number of priority levels.
fn start_order(procs: &mut [Proc]) -> usize {
    let mut keys: Vec<(i64, i64)> = procs
        .iter()
        .filter(|p| p.service.enabled != Some(false))
        .map(|p| p.priority)
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let before: Vec<Vec<String>> = procs
        .iter()
        .map(|p| {
            if p.service.enabled == Some(false) {
                return Vec::new();
            }
            let Some(i) = keys.iter().position(|k| *k == p.priority) else {
                return Vec::new();
            };
            let Some(previous) = i.checked_sub(1).and_then(|j| keys.get(j)) else {
                return Vec::new();
            };
            procs
                .iter()
                .filter(|q| q.service.enabled != Some(false) && q.priority == *previous)
                .map(|q| q.service.name.clone())
                .collect()
        })
        .collect();
    for (proc, deps) in procs.iter_mut().zip(before) {
        proc.service
            .dependencies
            .extend(deps.into_iter().map(|d| (d, "started")));
    }
    keys.len()
}

fn groups(ini: &Ini, names: &Names, warnings: &mut Vec<String>) -> Result<Vec<Group>, ImportError> {
    let mut out = Vec::new();
    for section in ini.sections.iter().filter(|s| s.name.starts_with("group:")) {
        let name = section.name["group:".len()..].trim().to_string();
        let origin = format!("[{}]", section.name);
        let opts = ini.options(section);
        let mut refs = Refs::default();
        let mut programs = Vec::new();
        let mut priority = 999;
        for opt in &opts {
            match opt.key.as_str() {
                "programs" => {
                    let text = names.expand(opt, &origin, Mode::Bake, &mut refs, warnings)?;
                    programs = text
                        .split(',')
                        .map(|p| p.trim().to_string())
                        .filter(|p| !p.is_empty())
                        .collect();
                }
                "priority" => {
                    let text = names.expand(opt, &origin, Mode::Bake, &mut refs, warnings)?;
                    priority = program::integer(&text, opt, &origin)?;
                }
                _ => warnings.push(format!(
                    "{origin} {}: unknown option, ignored (supervisord ignores it too)",
                    opt.key
                )),
            }
        }
        for p in &programs {
            let known = ini
                .sections
                .iter()
                .any(|s| s.name == format!("program:{p}"));
            if !known {
                warnings.push(format!(
                    "{origin} programs: no [program:{p}] in this file (an [include]d file?)"
                ));
            }
        }
        warnings.push(format!(
            "{origin}: tend has no process groups; its programs ({}) are imported as \
             services of their own, started in the group's priority order",
            programs.join(", ")
        ));
        out.push(Group {
            name,
            priority,
            programs,
        });
    }
    Ok(out)
}

/// The warning for a section that is not imported.
fn section_warning(section: &Section) -> String {
    let name = &section.name;
    let kind = name.split(':').next().unwrap_or("");
    let why = match kind {
        "include" => {
            let files = section
                .options
                .iter()
                .find(|o| o.key == "files")
                .map(|o| o.value.split_whitespace().collect::<Vec<_>>().join(" "))
                .unwrap_or_default();
            format!(
                "files {files:?} not read; import each included file too and merge their \
                 services"
            )
        }
        "unix_http_server" => "no equivalent; tend's control socket is control_socket, \
                               for tend's own client (supervisorctl cannot talk to it)"
            .into(),
        "inet_http_server" => "no equivalent; tend has no HTTP control interface \
                               (metrics_address serves Prometheus metrics only)"
            .into(),
        "supervisorctl" => "no equivalent; tend's client finds the control socket by -s, \
                            $TEND_SOCKET or control_socket"
            .into(),
        "rpcinterface" => "no equivalent; tend has no XML-RPC interface".into(),
        "ctlplugin" => "no equivalent; tend's client has no plugins".into(),
        "eventlistener" => "not imported: tend has no event listeners (it exports \
                            Prometheus metrics, see metrics_address)"
            .into(),
        "fcgi-program" => "not imported: tend cannot hand one shared socket to its \
                           processes"
            .into(),
        _ => "unknown section, ignored (supervisord ignores it too)".into(),
    };
    format!("[{name}]: {why}")
}
