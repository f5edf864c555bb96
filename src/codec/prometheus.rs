//! A writer for the Prometheus text exposition format, version 0.0.4
//! (<https://prometheus.io/docs/instrumenting/exposition_formats/>, "Text format
//! details"), the body of tend's `GET /metrics` (SPEC §9).
//!
//! Families come one after another, each as `# HELP`, `# TYPE`, then its samples:
//!
//! ```text
//! # HELP tend_service_restarts_total Restarts since tend started.
//! # TYPE tend_service_restarts_total counter
//! tend_service_restarts_total{service="web"} 3
//! ```
//!
//! Escaping is the format's: `\\` and `\n` in HELP text; `\\`, `\"` and `\n` in
//! label values. Values are written so Go's `strconv.ParseFloat` (what Prometheus
//! uses) reads back the same f64: `+Inf`, `-Inf`, `NaN`, integers as plain digits,
//! other numbers in the shortest form that round-trips.
//!
//! Names come from tend's code, not from users, so an invalid metric or label
//! name is a bug: it fails a `debug_assert!` and, in release builds, is repaired
//! (each invalid character becomes `_`) so a scrape still parses. Label
//! *values* may be anything (service names come from the config).
//!
//! Not here: reading the format, timestamps, histograms and summaries (their
//! samples need suffixed names; tend has none), OpenMetrics, protobuf, gzip.
//! Bounds: the output grows with what the caller writes, nothing else.

use std::fmt::Write;

/// The `Content-Type` of a scrape response.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `# TYPE` of a family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Untyped,
}

impl MetricType {
    fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Untyped => "untyped",
        }
    }
}

/// One exposition being written, family by family.
#[derive(Clone, Debug, Default)]
pub struct Exposition {
    text: String,
    /// The current family's (repaired) name: every sample is written under it.
    family: Option<String>,
    /// Names of the families written so far: a repeated family makes
    /// Prometheus reject the whole scrape, so debug builds check for it.
    #[cfg(debug_assertions)]
    written: Vec<String>,
}

impl Exposition {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a family: writes its `# HELP` and `# TYPE` lines. The samples that
    /// follow belong to it. Each name must appear once per exposition.
    pub fn family(&mut self, name: &str, help: &str, kind: MetricType) {
        debug_assert!(is_metric_name(name), "invalid metric name {name:?}");
        let name = repair(name, true);
        #[cfg(debug_assertions)]
        {
            debug_assert!(!self.written.contains(&name), "family {name} written twice");
            self.written.push(name.clone());
        }
        self.text.push_str("# HELP ");
        self.text.push_str(&name);
        if !help.is_empty() {
            self.text.push(' ');
            for c in help.chars() {
                match c {
                    '\\' => self.text.push_str("\\\\"),
                    '\n' => self.text.push_str("\\n"),
                    c => self.text.push(c),
                }
            }
        }
        let _ = writeln!(self.text, "\n# TYPE {name} {}", kind.as_str());
        self.family = Some(name);
    }

    /// Writes one sample of the current family. Label names must be unique
    /// within a sample; a repeated one is dropped (and fails a `debug_assert!`).
    /// A sample before any [`family`](Self::family) is a bug and is dropped.
    pub fn sample(&mut self, labels: &[(&str, &str)], value: f64) {
        let Some(name) = &self.family else {
            debug_assert!(false, "a sample before any family");
            return;
        };
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (label, label_value)) in labels.iter().enumerate() {
                debug_assert!(is_label_name(label), "invalid label name {label:?}");
                let repeated = labels[..i].iter().any(|(earlier, _)| earlier == label);
                debug_assert!(!repeated, "label {label:?} given twice");
                if repeated {
                    continue;
                }
                if i > 0 {
                    self.text.push(',');
                }
                self.text.push_str(&repair(label, false));
                self.text.push_str("=\"");
                for c in label_value.chars() {
                    match c {
                        '\\' => self.text.push_str("\\\\"),
                        '"' => self.text.push_str("\\\""),
                        '\n' => self.text.push_str("\\n"),
                        c => self.text.push(c),
                    }
                }
                self.text.push('"');
            }
            self.text.push('}');
        }
        self.text.push(' ');
        write_value(&mut self.text, value);
        self.text.push('\n');
    }

    /// The text so far.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The finished exposition, ready to be the response body.
    pub fn into_string(self) -> String {
        self.text
    }
}

/// Writes `value` as Prometheus (Go's `strconv.ParseFloat`) reads it back:
/// exactly the same f64, in the shortest form, never with exponent noise for
/// counts. Like Go's `%g`, plain digits for magnitudes in [1e-4, 1e21), an
/// exponent outside it (so 1e300 is not 301 characters).
fn write_value(out: &mut String, value: f64) {
    let _ = if value.is_nan() {
        out.write_str("NaN")
    } else if value.is_infinite() {
        out.write_str(if value > 0.0 { "+Inf" } else { "-Inf" })
    } else if value == 0.0 {
        out.write_str(if value.is_sign_negative() { "-0" } else { "0" })
    } else if (1e-4..1e21).contains(&value.abs()) {
        write!(out, "{value}")
    } else {
        write!(out, "{value:e}")
    };
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
fn is_metric_name(name: &str) -> bool {
    is_name(name, true)
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`
fn is_label_name(name: &str) -> bool {
    is_name(name, false)
}

fn is_name(name: &str, colon: bool) -> bool {
    !name.is_empty() && name.char_indices().all(|(i, c)| is_name_char(i, c, colon))
}

fn is_name_char(position: usize, c: char, colon: bool) -> bool {
    c.is_ascii_alphabetic()
        || c == '_'
        || (colon && c == ':')
        || (position > 0 && c.is_ascii_digit())
}

/// The name with each character that may not stand there replaced by `_`
/// (an empty name becomes `_`).
fn repair(name: &str, colon: bool) -> String {
    if name.is_empty() {
        return "_".to_string();
    }
    name.chars()
        .enumerate()
        .map(|(i, c)| if is_name_char(i, c, colon) { c } else { '_' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_value(value: f64) -> String {
        let mut out = String::new();
        write_value(&mut out, value);
        out
    }

    #[test]
    fn golden_text() {
        let mut e = Exposition::new();
        e.family(
            "tend_service_up",
            "Whether the service has a running process.",
            MetricType::Gauge,
        );
        e.sample(&[("service", "web")], 1.0);
        e.sample(&[("service", "db")], 0.0);
        e.family(
            "tend_service_restarts_total",
            "Restarts since tend started.",
            MetricType::Counter,
        );
        e.sample(&[("service", "web")], 3.0);
        e.family("tend_service_state", "", MetricType::Gauge);
        e.sample(&[("service", "web"), ("state", "running")], 1.0);
        e.family(
            "process_start_time_seconds",
            "Start time of tend since the Unix epoch.",
            MetricType::Gauge,
        );
        e.sample(&[], 1_764_680_000.25);
        e.family("odd", "", MetricType::Untyped);
        e.sample(&[], f64::INFINITY);
        e.sample(&[], f64::NEG_INFINITY);
        e.sample(&[], f64::NAN);
        assert_eq!(
            e.into_string(),
            "# HELP tend_service_up Whether the service has a running process.\n\
             # TYPE tend_service_up gauge\n\
             tend_service_up{service=\"web\"} 1\n\
             tend_service_up{service=\"db\"} 0\n\
             # HELP tend_service_restarts_total Restarts since tend started.\n\
             # TYPE tend_service_restarts_total counter\n\
             tend_service_restarts_total{service=\"web\"} 3\n\
             # HELP tend_service_state\n\
             # TYPE tend_service_state gauge\n\
             tend_service_state{service=\"web\",state=\"running\"} 1\n\
             # HELP process_start_time_seconds Start time of tend since the Unix epoch.\n\
             # TYPE process_start_time_seconds gauge\n\
             process_start_time_seconds 1764680000.25\n\
             # HELP odd\n\
             # TYPE odd untyped\n\
             odd +Inf\n\
             odd -Inf\n\
             odd NaN\n"
        );
    }

    #[test]
    fn escaping() {
        let mut e = Exposition::new();
        e.family(
            "m",
            "a \\ backslash,\na newline and \"quotes\"",
            MetricType::Gauge,
        );
        e.sample(&[("l", "back\\slash \"quoted\"\nnext line {}=,é")], 1.0);
        assert_eq!(
            e.as_str(),
            "# HELP m a \\\\ backslash,\\na newline and \"quotes\"\n\
             # TYPE m gauge\n\
             m{l=\"back\\\\slash \\\"quoted\\\"\\nnext line {}=,é\"} 1\n"
        );
    }

    #[test]
    fn values() {
        for (value, text) in [
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (-7.0, "-7"),
            (1234567.0, "1234567"),
            (9_007_199_254_740_993.0, "9007199254740992"),
            (1e20, "100000000000000000000"),
            (1e21, "1e21"),
            (1.5, "1.5"),
            (0.1, "0.1"),
            (0.0001, "0.0001"),
            (0.00001, "1e-5"),
            (1.5e-7, "1.5e-7"),
            (1e300, "1e300"),
            (-2.5e300, "-2.5e300"),
            (f64::MAX, "1.7976931348623157e308"),
            (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
            (5e-324, "5e-324"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(one_value(value), text, "{value:?}");
        }
    }

    /// Written values read back to the same f64 (Rust's parser accepts Go's
    /// spellings, including `+Inf` and `NaN`), over a spread of magnitudes.
    #[test]
    fn values_round_trip() {
        let mut state = 0x853c_49e6_748f_ea9b_u64;
        for _ in 0..100_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let value = f64::from_bits(state);
            let text = one_value(value);
            let back: f64 = text.parse().expect("parses");
            if value.is_nan() {
                assert!(back.is_nan());
            } else {
                assert_eq!(back.to_bits(), value.to_bits(), "{text}");
            }
            assert!(text.len() <= 24, "{text}");
        }
    }

    #[test]
    #[cfg(not(debug_assertions))]
    fn invalid_names_are_repaired() {
        let mut e = Exposition::new();
        e.family("9bad-name", "", MetricType::Gauge);
        e.sample(&[("a:b", "x"), ("", "y"), ("a:b", "dropped")], 1.0);
        assert_eq!(
            e.as_str(),
            "# HELP _bad_name\n# TYPE _bad_name gauge\n_bad_name{a_b=\"x\",_=\"y\"} 1\n"
        );
    }

    #[test]
    fn repair_and_name_rules() {
        assert!(is_metric_name("tend:up_2"));
        assert!(!is_metric_name("2up"));
        assert!(!is_metric_name(""));
        assert!(!is_label_name("a:b"));
        assert!(is_label_name("_x9"));
        assert_eq!(repair("9bad-name", true), "_bad_name");
        assert_eq!(repair("a:b", false), "a_b");
        assert_eq!(repair("a:b", true), "a:b");
        assert_eq!(repair("", false), "_");
        assert_eq!(repair("é", false), "_");
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "invalid metric name")]
    fn invalid_name_fails_in_debug_builds() {
        Exposition::new().family("bad name", "", MetricType::Gauge);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "written twice")]
    fn repeated_family_fails_in_debug_builds() {
        let mut e = Exposition::new();
        e.family("a", "", MetricType::Gauge);
        e.family("a", "", MetricType::Gauge);
    }

    /// A sample line as the test parser reads it back.
    #[derive(Debug, PartialEq)]
    struct Line {
        name: String,
        labels: Vec<(String, String)>,
        value: f64,
    }

    /// A tiny reader of the text format, written from the format's description
    /// (not from the writer): `name{l="v",...} value`, with unescaping.
    fn read_sample(line: &str) -> Line {
        let name_end = line.find(['{', ' ']).expect("a name");
        let name = line[..name_end].to_string();
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if let Some(after) = rest.strip_prefix('{') {
            rest = after;
            loop {
                if let Some(after) = rest.strip_prefix('}') {
                    rest = after;
                    break;
                }
                rest = rest.strip_prefix(',').unwrap_or(rest);
                let eq = rest.find("=\"").expect("label=\"");
                let label = rest[..eq].to_string();
                let mut value = String::new();
                let mut chars = rest[eq + 2..].char_indices();
                let end = loop {
                    match chars.next().expect("closing quote") {
                        (i, '"') => break i,
                        (_, '\\') => match chars.next().expect("escape").1 {
                            'n' => value.push('\n'),
                            c @ ('\\' | '"') => value.push(c),
                            c => panic!("bad escape \\{c}"),
                        },
                        (_, c) => value.push(c),
                    }
                };
                rest = &rest[eq + 2 + end + 1..];
                labels.push((label, value));
            }
        }
        let value = rest
            .strip_prefix(' ')
            .expect("space before value")
            .parse()
            .expect("a value");
        Line {
            name,
            labels,
            value,
        }
    }

    #[test]
    fn parse_back() {
        let awkward = [
            "plain",
            "",
            "with \"quotes\"",
            "back\\slash\\",
            "new\nline",
            "\\n literal",
            "}{,=\" ",
            "ünï©ødé",
        ];
        let mut e = Exposition::new();
        e.family(
            "tend_log_lines_total",
            "Lines of output.\nSecond \\ line.",
            MetricType::Counter,
        );
        let mut expected = Vec::new();
        for (i, service) in awkward.iter().enumerate() {
            let value = i as f64 * 1.25e7 + 0.5;
            e.sample(&[("service", service), ("stream", "stdout")], value);
            expected.push(Line {
                name: "tend_log_lines_total".into(),
                labels: vec![
                    ("service".into(), (*service).into()),
                    ("stream".into(), "stdout".into()),
                ],
                value,
            });
        }
        let text = e.into_string();
        assert!(text.ends_with('\n'));
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("# HELP tend_log_lines_total Lines of output.\\nSecond \\\\ line.")
        );
        assert_eq!(lines.next(), Some("# TYPE tend_log_lines_total counter"));
        let samples: Vec<Line> = lines.map(read_sample).collect();
        assert_eq!(samples, expected);
    }

    /// `promtool check metrics` (from Prometheus) parses and lints a realistic
    /// scrape. Skipped, visibly, when promtool is not installed.
    #[test]
    fn promtool_accepts_a_scrape() {
        use std::io::Write as _;
        use std::process::{Command, Stdio};
        let mut e = Exposition::new();
        e.family(
            "tend_service_up",
            "Whether the service has a running process.",
            MetricType::Gauge,
        );
        e.sample(&[("service", "web \"1\"\\\n")], 1.0);
        e.family(
            "tend_service_state",
            "1 for the current state of the service.",
            MetricType::Gauge,
        );
        for state in ["starting", "running", "stopped"] {
            e.sample(
                &[("service", "web"), ("state", state)],
                if state == "running" { 1.0 } else { 0.0 },
            );
        }
        e.family(
            "tend_service_restarts_total",
            "Restarts of the service.",
            MetricType::Counter,
        );
        e.sample(&[("service", "web")], 12.0);
        e.family(
            "tend_service_state_since_seconds",
            "When the state was entered, Unix time.",
            MetricType::Gauge,
        );
        e.sample(&[("service", "web")], 1_764_680_000.125);
        e.family(
            "tend_probe_failures_total",
            "Failed probes.",
            MetricType::Counter,
        );
        e.sample(&[("service", "web")], 0.0);
        e.family("odd_values", "Infinities \\ and NaN.", MetricType::Gauge);
        e.sample(&[("v", "inf")], f64::INFINITY);
        e.sample(&[("v", "-inf")], f64::NEG_INFINITY);
        e.sample(&[("v", "nan")], f64::NAN);
        e.sample(&[("v", "tiny")], 5e-324);
        e.sample(&[("v", "huge")], -1.7e308);
        let child = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let Ok(mut child) = child else {
            println!("SKIPPED: promtool is not installed (Debian: apt-get install prometheus)");
            return;
        };
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin
            .write_all(e.as_str().as_bytes())
            .expect("promtool reads the scrape");
        drop(stdin);
        let output = child.wait_with_output().expect("promtool exits");
        assert!(
            output.status.success() && output.stdout.is_empty() && output.stderr.is_empty(),
            "promtool check metrics: {}\nstdout: {}\nstderr: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            e.as_str()
        );
    }
}
