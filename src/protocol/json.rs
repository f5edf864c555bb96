//! The control protocol's types to and from JSON, by hand.
//!
//! Why not `#[derive(Serialize, Deserialize)]`: the derived code was the
//! largest single cost of the 1 MiB binary that tend could drop. An internally
//! tagged enum ([`Request`]) buffers every field in serde's `Content` first, and
//! each struct gets its own visitor per input type: about 41 KB of the shipped
//! binary deserialized these five types (15 KB `Request`, 10 KB the list of
//! [`ServiceStatus`], 3 KB `from_str::<Reply>`, ...), plus their serializers
//! inlined into the server and the client. Here parsing goes through the JSON
//! value tree the config loader links anyway ([`crate::config::raw::Value`], one
//! serde visitor for all) and a few small getters; writing goes through
//! [`crate::codec::json::Writer`]. The shipped binary went from 1,108,304 to
//! 1,055,056 bytes.
//!
//! The wire format is exactly what the derives read and wrote (the unit tests
//! in `tests_json.rs` compare with serde_json byte for byte, and the
//! integration tests talk to the real binary): the same key order, the same
//! fields left out when empty, every field of a [`ServiceStatus`] written even
//! when null, fields that newer versions added defaulted when absent, unknown
//! fields of a request refused and of a reply ignored (a newer tend may add
//! some), a key given twice refused.
//!
//! Must not: panic on any input line; grow beyond these five types (anything
//! else tend writes as JSON uses the writer directly).

use std::cell::Cell;

use super::{LogLine, ProbeStatus, Reply, Request, ServiceStatus};
use crate::codec::json::Writer;
use crate::config::raw::{Number, Value};

/// The entries of a JSON object, read by getters that cannot fail: a getter
/// that finds a problem notes it (the first one is kept) and returns a default,
/// and [`Fields::finish`] turns a noted problem into the error.
///
/// Why not `Result` and `?` after each field: an early return from the middle
/// of a struct literal drops every field read so far, and with twenty fields
/// those drop ladders were 6 KB of code for [`ServiceStatus`] alone.
struct Fields<'a> {
    entries: &'a [(String, Value)],
    problem: Cell<Option<String>>,
}

/// Parse `text` (one JSON value, surrounding whitespace allowed) as an object.
fn parse_object(text: &str) -> Result<Vec<(String, Value)>, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(entries)) => Ok(entries),
        Ok(other) => Err(format!("expected a JSON object, got {}", other.kind())),
        Err(e) => Err(e.to_string()),
    }
}

/// The entries of `value`, which must be an object (`what` names it in errors).
fn fields_of<'a>(what: &str, value: &'a Value) -> Result<Fields<'a>, String> {
    match value {
        Value::Object(entries) => Ok(Fields::new(entries)),
        other => Err(format!("{what} must be an object, got {}", other.show())),
    }
}

fn wrong(key: &str, expected: &str, got: &Value) -> String {
    format!("`{key}` must be {expected}, got {}", got.show())
}

fn as_string(key: &str, v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(wrong(key, "a string", other)),
    }
}

fn as_bool(key: &str, v: &Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        other => Err(wrong(key, "true or false", other)),
    }
}

/// Whole numbers only, as serde read them: `3` but not `3.0` or `-1`.
fn as_u64(key: &str, v: &Value) -> Result<u64, String> {
    match v {
        Value::Number(Number::Unsigned(n)) => Ok(*n),
        Value::Number(Number::Signed(n)) if *n >= 0 => Ok(*n as u64),
        other => Err(wrong(key, "a whole number, 0 or more", other)),
    }
}

fn as_i32(key: &str, v: &Value) -> Result<i32, String> {
    let n = match v {
        Value::Number(Number::Unsigned(n)) => i32::try_from(*n).ok(),
        Value::Number(Number::Signed(n)) => i32::try_from(*n).ok(),
        _ => None,
    };
    n.ok_or_else(|| wrong(key, "a 32-bit whole number", v))
}

fn as_f64(key: &str, v: &Value) -> Result<f64, String> {
    match v {
        Value::Number(n) => Ok(n.as_f64()),
        other => Err(wrong(key, "a number", other)),
    }
}

fn as_strings(key: &str, v: &Value) -> Result<Vec<String>, String> {
    let Value::Array(items) = v else {
        return Err(wrong(key, "a list of strings", v));
    };
    items
        .iter()
        .map(|item| match item {
            Value::String(s) => Ok(s.clone()),
            other => Err(wrong(key, "a list of strings", other)),
        })
        .collect()
}

impl<'a> Fields<'a> {
    fn new(entries: &'a [(String, Value)]) -> Fields<'a> {
        Fields {
            entries,
            problem: Cell::new(None),
        }
    }

    /// Remember `problem` unless an earlier one is remembered already.
    fn note(&self, problem: String) {
        let first = self.problem.take();
        self.problem.set(Some(first.unwrap_or(problem)));
    }

    /// `value`, or the first problem noted while reading it.
    fn finish<T>(self, value: T) -> Result<T, String> {
        match self.problem.into_inner() {
            Some(problem) => Err(problem),
            None => Ok(value),
        }
    }

    /// The value of a conversion, or (the problem noted) the type's default.
    fn check<T: Default>(&self, converted: Result<T, String>) -> T {
        converted.unwrap_or_else(|problem| {
            self.note(problem);
            T::default()
        })
    }

    /// The value of `key` (null included), None when absent; a key given
    /// twice is an error, as it was for serde.
    fn lookup(&self, key: &str) -> Result<Option<&'a Value>, String> {
        let mut found = None;
        for (k, v) in self.entries {
            if k == key {
                if found.is_some() {
                    return Err(format!("duplicate field `{key}`"));
                }
                found = Some(v);
            }
        }
        Ok(found)
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.check(self.lookup(key).map(Some)).flatten()
    }

    fn required(&self, key: &str) -> Option<&'a Value> {
        let value = self.get(key);
        if value.is_none() {
            self.note(format!("missing field `{key}`"));
        }
        value
    }

    /// An `Option` field: absent and null are both None.
    fn optional(&self, key: &str) -> Option<&'a Value> {
        self.get(key).filter(|v| !matches!(v, Value::Null))
    }

    fn string(&self, key: &str) -> String {
        self.required(key)
            .map(|v| self.check(as_string(key, v)))
            .unwrap_or_default()
    }

    fn string_or_empty(&self, key: &str) -> String {
        self.get(key)
            .map(|v| self.check(as_string(key, v)))
            .unwrap_or_default()
    }

    fn opt_string(&self, key: &str) -> Option<String> {
        self.optional(key).map(|v| self.check(as_string(key, v)))
    }

    fn bool(&self, key: &str) -> bool {
        self.required(key)
            .is_some_and(|v| self.check(as_bool(key, v)))
    }

    fn bool_or_false(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| self.check(as_bool(key, v)))
    }

    fn u64(&self, key: &str) -> u64 {
        self.required(key).map_or(0, |v| self.check(as_u64(key, v)))
    }

    fn u64_or_zero(&self, key: &str) -> u64 {
        self.get(key).map_or(0, |v| self.check(as_u64(key, v)))
    }

    fn opt_u64(&self, key: &str) -> Option<u64> {
        self.optional(key).map(|v| self.check(as_u64(key, v)))
    }

    fn opt_i32(&self, key: &str) -> Option<i32> {
        self.optional(key).map(|v| self.check(as_i32(key, v)))
    }

    fn opt_f64(&self, key: &str) -> Option<f64> {
        self.optional(key).map(|v| self.check(as_f64(key, v)))
    }

    fn strings(&self, key: &str) -> Vec<String> {
        self.required(key)
            .map(|v| self.check(as_strings(key, v)))
            .unwrap_or_default()
    }

    fn strings_or_empty(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|v| self.check(as_strings(key, v)))
            .unwrap_or_default()
    }

    /// An optional list of objects, each read by `item`.
    fn list<T>(&self, key: &str, item: fn(&Value) -> Result<T, String>) -> Option<Vec<T>> {
        let items = match self.optional(key)? {
            Value::Array(items) => items,
            other => {
                self.note(wrong(key, "a list", other));
                return None;
            }
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, v) in items.iter().enumerate() {
            match item(v) {
                Ok(x) => out.push(x),
                Err(problem) => {
                    self.note(format!("{key}[{i}]: {problem}"));
                    return None;
                }
            }
        }
        Some(out)
    }

    /// Refuse any key but `cmd` and `known`: a typo must not do something else.
    fn only(&self, cmd: &str, known: &[&str]) -> Result<(), String> {
        let Some((key, _)) = self
            .entries
            .iter()
            .find(|(k, _)| k != "cmd" && !known.contains(&k.as_str()))
        else {
            return Ok(());
        };
        let key: String = key.chars().take(40).collect();
        Err(if known.is_empty() {
            format!("unknown field `{key}`: `{cmd}` takes no fields")
        } else {
            format!("unknown field `{key}`: `{cmd}` takes {}", known.join(", "))
        })
    }
}

const COMMANDS: &str = "status, start, stop, restart, signal, reload, shutdown, reexec, logs";

impl Request {
    /// One request line (without its newline) → a request, or what is wrong
    /// with it: not JSON, an unknown command, an unknown or missing field, a
    /// field of the wrong type.
    pub fn parse(line: &str) -> Result<Request, String> {
        let entries = parse_object(line)?;
        let f = Fields::new(&entries);
        let cmd = match f.lookup("cmd")? {
            Some(Value::String(s)) => s.as_str(),
            Some(other) => return Err(wrong("cmd", "a string", other)),
            None => return Err("missing field `cmd`".into()),
        };
        let request = match cmd {
            "status" => {
                f.only(cmd, &["names"])?;
                Request::Status {
                    names: f.strings_or_empty("names"),
                }
            }
            "start" | "stop" | "restart" => {
                f.only(cmd, &["names", "wait"])?;
                let (names, wait) = (f.strings("names"), f.bool_or_false("wait"));
                match cmd {
                    "start" => Request::Start { names, wait },
                    "stop" => Request::Stop { names, wait },
                    _ => Request::Restart { names, wait },
                }
            }
            "signal" => {
                f.only(cmd, &["name", "signal"])?;
                Request::Signal {
                    name: f.string("name"),
                    signal: f.string("signal"),
                }
            }
            "reload" | "shutdown" | "reexec" => {
                f.only(cmd, &[])?;
                match cmd {
                    "reload" => Request::Reload {},
                    "shutdown" => Request::Shutdown {},
                    _ => Request::Reexec {},
                }
            }
            "logs" => {
                f.only(cmd, &["names", "name", "lines", "since_ms", "follow"])?;
                Request::Logs {
                    names: f.strings_or_empty("names"),
                    name: f.opt_string("name"),
                    lines: f
                        .opt_u64("lines")
                        .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
                    since_ms: f.opt_u64("since_ms"),
                    follow: f.bool_or_false("follow"),
                }
            }
            _ => {
                let shown = Value::String(cmd.to_string()).show();
                return Err(format!(
                    "unknown command {shown}; expected one of {COMMANDS}"
                ));
            }
        };
        f.finish(request)
    }

    /// The request as one line of JSON (without the newline):
    /// `{"cmd":"start","names":["web"],"wait":false}`.
    pub fn to_json(&self) -> Vec<u8> {
        let mut w = Writer::compact();
        w.begin_object();
        w.key("cmd");
        match self {
            Request::Status { names } => {
                w.string("status");
                w.field_strings("names", names);
            }
            Request::Start { names, wait }
            | Request::Stop { names, wait }
            | Request::Restart { names, wait } => {
                w.string(match self {
                    Request::Start { .. } => "start",
                    Request::Stop { .. } => "stop",
                    _ => "restart",
                });
                w.field_strings("names", names);
                w.field_bool("wait", *wait);
            }
            Request::Signal { name, signal } => {
                w.string("signal");
                w.field_str("name", Some(name));
                w.field_str("signal", Some(signal));
            }
            Request::Reload {} => w.string("reload"),
            Request::Shutdown {} => w.string("shutdown"),
            Request::Reexec {} => w.string("reexec"),
            Request::Logs {
                names,
                name,
                lines,
                since_ms,
                follow,
            } => {
                w.string("logs");
                if !names.is_empty() {
                    w.field_strings("names", names);
                }
                if let Some(name) = name {
                    w.field_str("name", Some(name));
                }
                if let Some(n) = lines {
                    w.field_u64("lines", Some(*n as u64));
                }
                if let Some(ms) = since_ms {
                    w.field_u64("since_ms", Some(*ms));
                }
                w.field_bool("follow", *follow);
            }
        }
        w.end_object();
        w.into_bytes()
    }
}

impl Reply {
    /// One reply line → the reply. Fields it does not know are ignored: a
    /// newer tend may send more.
    pub fn parse(line: &str) -> Result<Reply, String> {
        let entries = parse_object(line)?;
        let f = Fields::new(&entries);
        let reply = Reply {
            ok: f.bool("ok"),
            error: f.opt_string("error"),
            message: f.opt_string("message"),
            problems: f.strings_or_empty("problems"),
            services: f.list("services", ServiceStatus::from_value),
            lines: f.list("lines", LogLine::from_value),
        };
        f.finish(reply)
    }

    /// The reply as one line of JSON (without the newline); `ok` always, the
    /// other fields only when they hold something.
    pub fn to_json(&self) -> Vec<u8> {
        let mut w = Writer::compact();
        w.begin_object();
        w.field_bool("ok", self.ok);
        if let Some(error) = &self.error {
            w.field_str("error", Some(error));
        }
        if let Some(message) = &self.message {
            w.field_str("message", Some(message));
        }
        if !self.problems.is_empty() {
            w.field_strings("problems", &self.problems);
        }
        if let Some(services) = &self.services {
            w.key("services");
            write_statuses(&mut w, services);
        }
        if let Some(lines) = &self.lines {
            w.key("lines");
            w.begin_array();
            for line in lines {
                w.element();
                line.write_json(&mut w);
            }
            w.end_array();
        }
        w.end_object();
        w.into_bytes()
    }
}

impl LogLine {
    /// One line of a `logs -f` stream → the log line.
    pub fn parse(line: &str) -> Result<LogLine, String> {
        LogLine::from_value(&Value::Object(parse_object(line)?))
    }

    fn from_value(v: &Value) -> Result<LogLine, String> {
        let f = fields_of("a log line", v)?;
        let line = LogLine {
            ts: f.string_or_empty("ts"),
            seq: f.u64_or_zero("seq"),
            service: f.string_or_empty("service"),
            stream: f.string("stream"),
            line: f.string("line"),
        };
        f.finish(line)
    }

    /// `{"ts":…,"seq":…,"service":…,"stream":…,"line":…}`.
    pub fn write_json(&self, w: &mut Writer) {
        w.begin_object();
        w.field_str("ts", Some(&self.ts));
        w.field_u64("seq", Some(self.seq));
        w.field_str("service", Some(&self.service));
        w.field_str("stream", Some(&self.stream));
        w.field_str("line", Some(&self.line));
        w.end_object();
    }
}

impl ServiceStatus {
    /// One service's status object (as `tend status --json` prints each).
    pub fn parse(text: &str) -> Result<ServiceStatus, String> {
        ServiceStatus::from_value(&Value::Object(parse_object(text)?))
    }

    fn from_value(v: &Value) -> Result<ServiceStatus, String> {
        let f = fields_of("a service status", v)?;
        let probe = f.optional("probe").and_then(|p| {
            ProbeStatus::from_value(p)
                .map_err(|problem| f.note(format!("probe: {problem}")))
                .ok()
        });
        let status = ServiceStatus {
            name: f.string("name"),
            state: f.string("state"),
            service_type: f.string("type"),
            enabled: f.bool("enabled"),
            pid: f.opt_i32("pid"),
            uptime_secs: f.opt_f64("uptime_secs"),
            restarts: f.u64("restarts"),
            last_exit_code: f.opt_i32("last_exit_code"),
            last_signal: f.opt_string("last_signal"),
            last_error: f.opt_string("last_error"),
            completed: f.bool("completed"),
            next_start_in_secs: f.opt_f64("next_start_in_secs"),
            waiting_for: f.opt_string("waiting_for"),
            status_text: f.opt_string("status_text"),
            since: f.opt_string("since"),
            ready: f.bool_or_false("ready"),
            probe,
            cpu_secs: f.opt_f64("cpu_secs"),
            memory_bytes: f.opt_u64("memory_bytes"),
            usage_at: f.opt_string("usage_at"),
            cgroup: f.opt_string("cgroup"),
        };
        f.finish(status)
    }

    /// Every field, nulls included, in the order of the struct.
    fn write_json(&self, w: &mut Writer) {
        w.begin_object();
        w.field_str("name", Some(&self.name));
        w.field_str("state", Some(&self.state));
        w.field_str("type", Some(&self.service_type));
        w.field_bool("enabled", self.enabled);
        w.field_i64("pid", self.pid.map(i64::from));
        w.field_f64("uptime_secs", self.uptime_secs);
        w.field_u64("restarts", Some(self.restarts));
        w.field_i64("last_exit_code", self.last_exit_code.map(i64::from));
        w.field_str("last_signal", self.last_signal.as_deref());
        w.field_str("last_error", self.last_error.as_deref());
        w.field_bool("completed", self.completed);
        w.field_f64("next_start_in_secs", self.next_start_in_secs);
        w.field_str("waiting_for", self.waiting_for.as_deref());
        w.field_str("status_text", self.status_text.as_deref());
        w.field_str("since", self.since.as_deref());
        w.field_bool("ready", self.ready);
        w.key("probe");
        match &self.probe {
            Some(p) => p.write_json(w),
            None => w.null(),
        }
        w.field_f64("cpu_secs", self.cpu_secs);
        w.field_u64("memory_bytes", self.memory_bytes);
        w.field_str("usage_at", self.usage_at.as_deref());
        w.field_str("cgroup", self.cgroup.as_deref());
        w.end_object();
    }
}

impl ProbeStatus {
    fn from_value(v: &Value) -> Result<ProbeStatus, String> {
        let f = fields_of("a probe status", v)?;
        let failures = f.u64("failures_in_row");
        let probe = ProbeStatus {
            ok: f.bool("ok"),
            at: f.string("at"),
            message: f.opt_string("message"),
            failures_in_row: f.check(u32::try_from(failures).map_err(|_| {
                format!("`failures_in_row` must be a 32-bit whole number, got {failures}")
            })),
        };
        f.finish(probe)
    }

    fn write_json(&self, w: &mut Writer) {
        w.begin_object();
        w.field_bool("ok", self.ok);
        w.field_str("at", Some(&self.at));
        w.field_str("message", self.message.as_deref());
        w.field_u64("failures_in_row", Some(u64::from(self.failures_in_row)));
        w.end_object();
    }
}

fn write_statuses(w: &mut Writer, services: &[ServiceStatus]) {
    w.begin_array();
    for s in services {
        w.element();
        s.write_json(w);
    }
    w.end_array();
}

/// What `tend status --json` prints: the list, indented as serde_json's
/// `to_string_pretty` indents it (no newline at the end).
pub fn statuses_pretty(services: &[ServiceStatus]) -> String {
    let mut w = Writer::pretty();
    write_statuses(&mut w, services);
    String::from_utf8(w.into_bytes()).unwrap_or_default()
}
