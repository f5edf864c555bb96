//! Whole-import tests: supervisord options → tend fields through [`import_with`],
//! the errors that name their line, and a fuzz loop over mutated real inputs.

use std::path::Path;

use serde_json::{Value, json};

use super::*;

fn host() -> Host {
    let env = [("HOME", "/home/me"), ("SECRET", "s3cret"), ("PRIO", "5")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Host {
        env,
        hostname: Some("box".into()),
    }
}

fn conf(text: &str) -> Result<Imported, ImportError> {
    import_with(text, Path::new("/etc/supervisor/supervisord.conf"), &host())
}

fn ok(text: &str) -> Imported {
    match conf(text) {
        Ok(imported) => imported,
        Err(e) => panic!("{e}\n{text}"),
    }
}

fn services(imported: &Imported) -> Vec<Value> {
    imported.config["services"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn service(imported: &Imported, name: &str) -> Value {
    services(imported)
        .into_iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no service {name} in {}", imported.text))
}

fn has_warning(imported: &Imported, part: &str) -> bool {
    imported.warnings.iter().any(|w| w.contains(part))
}

#[test]
fn supervisord_defaults_that_differ_from_tends_are_written_out() {
    let imported = ok("[program:a]\ncommand=/bin/a\n");
    assert_eq!(
        imported.config,
        json!({"services": [{
            "name": "a",
            "command": ["/bin/a"],
            "restart_policy": "on-failure",
            "max_retries": 3,
            "min_uptime": "1s",
        }]})
    );
    assert!(imported.warnings.is_empty(), "{:?}", imported.warnings);
    assert_eq!(imported.format, Format::Supervisord);
    let reparsed: Value = serde_json::from_str(&imported.text).unwrap();
    assert_eq!(reparsed, imported.config);
    assert!(
        imported
            .text
            .starts_with("{\n  \"services\": [\n    {\n      \"name\": \"a\",\n      \"command\"")
    );
}

#[test]
fn program_options_map_to_fields() {
    let imported = ok(
        "[program:a]\ncommand = /bin/a --x \"two words\"\ndirectory=/srv\n\
         user=app\nautostart=false\nautorestart=true\nstartsecs=0\nstartretries=7\n\
         stopsignal=quit\nstopwaitsecs=30\nexitcodes=0,2\n",
    );
    assert_eq!(
        service(&imported, "a"),
        json!({
            "name": "a",
            "command": ["/bin/a", "--x", "two words"],
            "enabled": false,
            "working_dir": "/srv",
            "restart_policy": "always",
            "success_exit_codes": [0, 2],
            "max_retries": 7,
            "min_uptime": "0s",
            "stop_signal": "SIGQUIT",
            "timeout_stop": "30s",
            "user": "app",
        })
    );
    for (value, policy) in [
        ("false", "never"),
        ("unexpected", "on-failure"),
        ("On", "always"),
    ] {
        let imported = ok(&format!("[program:a]\ncommand=a\nautorestart={value}\n"));
        assert_eq!(service(&imported, "a")["restart_policy"], policy);
    }
    let imported = ok("[program:a]\ncommand=a\nstopsignal=10\n");
    assert_eq!(service(&imported, "a")["stop_signal"], "SIGUSR1");
}

#[test]
fn process_names_and_expansions() {
    let imported = ok(
        "[program:w]\ncommand=/bin/w --n %(process_num)d --of %(numprocs)d \
         --here %(here)s --group %(group_name)s --host %(host_node_name)s\n\
         process_name=%(program_name)s-%(process_num)02d\nnumprocs=2\nnumprocs_start=5\n",
    );
    let names: Vec<Value> = services(&imported)
        .iter()
        .map(|s| s["name"].clone())
        .collect();
    assert_eq!(names, [json!("w-05"), json!("w-06")]);
    assert_eq!(
        service(&imported, "w-06")["command"],
        json!([
            "/bin/w",
            "--n",
            "6",
            "--of",
            "2",
            "--here",
            "/etc/supervisor",
            "--group",
            "w",
            "--host",
            "box"
        ])
    );
    assert!(has_warning(&imported, "numprocs=2"));
    assert!(has_warning(&imported, "host_node_name"));
    // A literal percent sign is written %%.
    let imported = ok("[program:d]\ncommand=date +%%s\n");
    assert_eq!(service(&imported, "d")["command"], json!(["date", "+%s"]));
}

#[test]
fn environment_values_keep_env_references_for_tend() {
    let imported = ok("[program:a]\ncommand=a\n\
         environment=A=\"x,y\",B=%(ENV_HOME)s/x,C=\"$5\",D=\"%(ENV_NOPE)s\",E=%(program_name)s\n");
    assert_eq!(
        service(&imported, "a")["environment"],
        json!({"A": "x,y", "B": "${HOME}/x", "C": "$$5", "D": "${NOPE}", "E": "a"})
    );
    // What supervisord drops is a warning.
    let imported = ok("[program:a]\ncommand=a\nenvironment=A=x y\n");
    assert_eq!(service(&imported, "a")["environment"], json!({"A": "x"}));
    assert!(has_warning(&imported, "\"y\" after A= is dropped"));
}

#[test]
fn supervisord_section_environment_is_expanded_twice_as_supervisord_does() {
    let imported = ok("[supervisord]\nenvironment=P=\"100%%%%\"\n[program:a]\ncommand=a\n");
    assert_eq!(service(&imported, "a")["environment"], json!({"P": "100%"}));
    let e = conf("[supervisord]\nenvironment=P=\"100%%\"\n").unwrap_err();
    assert_eq!(e.line, Some(2));
    let imported = ok("[program:a]\ncommand=a\nenvironment=P=\"100%%\"\n");
    assert_eq!(service(&imported, "a")["environment"], json!({"P": "100%"}));
}

#[test]
fn env_in_command_is_left_to_the_shell_unless_the_file_sets_it() {
    let imported = ok("[supervisord]\nenvironment=G=\"1\",H=\"%(ENV_HOME)s\"\n\
         [program:a]\ncommand=/bin/app --token %(ENV_SECRET)s --g=%(ENV_G)s --l %(ENV_L)s\n\
         environment=L=\"two words\"\n\
         [program:b]\ncommand=/bin/b %(ENV_H)s\nenvironment=X=\"%(ENV_H)s\",G=2\n");
    let a = service(&imported, "a");
    assert_eq!(
        a["command"],
        json!([
            "/bin/sh",
            "-c",
            "exec /bin/app --token \"${SECRET}\" --g=1 --l two words"
        ])
    );
    assert_eq!(
        a["environment"],
        json!({"G": "1", "H": "${HOME}", "L": "two words"})
    );
    let b = service(&imported, "b");
    assert_eq!(
        b["command"],
        json!(["/bin/sh", "-c", "exec /bin/b \"${H}\""])
    );
    assert_eq!(
        b["environment"],
        json!({"G": "2", "H": "${HOME}", "X": "${HOME}"})
    );
    assert!(has_warning(&imported, "%(ENV_SECRET)s is left to /bin/sh"));
    // The secret's value is in neither the config nor a warning.
    assert!(!imported.text.contains("s3cret"));
    assert!(!imported.warnings.iter().any(|w| w.contains("s3cret")));
}

#[test]
fn env_elsewhere_is_read_at_import() {
    let imported =
        ok("[program:a]\ncommand=a\ndirectory=%(ENV_HOME)s/app\npriority=%(ENV_PRIO)s\n");
    assert_eq!(service(&imported, "a")["working_dir"], "/home/me/app");
    assert!(has_warning(
        &imported,
        "taken from this environment at import (\"/home/me\")"
    ));
    let e = conf("[program:a]\ncommand=a\n\ndirectory=%(ENV_NOPE)s\n").unwrap_err();
    assert_eq!(e.line, Some(4));
    assert!(e.message.contains("NOPE is not set"), "{e}");
}

#[test]
fn defaults_section_applies_to_every_program() {
    let imported = ok(
        "[DEFAULT]\nautostart=false\n[program:a]\ncommand=a\n[program:b]\ncommand=b\nautostart=true\n",
    );
    assert_eq!(service(&imported, "a")["enabled"], false);
    assert!(service(&imported, "b").get("enabled").is_none());
}

#[test]
fn priority_becomes_started_dependencies_between_levels() {
    let imported = ok(
        "[program:a]\ncommand=a\npriority=1\n[program:b]\ncommand=b\npriority=2\n\
         [program:c]\ncommand=c\npriority=2\n[program:d]\ncommand=d\npriority=3\n\
         [program:e]\ncommand=e\npriority=0\nautostart=false\n[program:f]\ncommand=f\n",
    );
    let deps = |name: &str| service(&imported, name)["dependencies"].clone();
    let started = |names: &[&str]| {
        let list: Vec<Value> = names
            .iter()
            .map(|n| json!({"service": n, "condition": "started"}))
            .collect();
        Value::Array(list)
    };
    assert_eq!(deps("a"), Value::Null);
    assert_eq!(deps("b"), started(&["a"]));
    assert_eq!(deps("c"), started(&["a"]));
    assert_eq!(deps("d"), started(&["b", "c"]));
    assert_eq!(deps("e"), Value::Null);
    assert_eq!(deps("f"), started(&["d"]));
    assert!(has_warning(&imported, "priority: kept as start order"));
    // One level: no dependencies, no warning.
    let imported = ok("[program:a]\ncommand=a\n[program:b]\ncommand=b\n");
    assert!(imported.warnings.is_empty());
}

#[test]
fn groups_order_by_their_own_priority_first() {
    let imported = ok(
        "[group:g]\nprograms=x\npriority=1\n[program:x]\ncommand=x\npriority=50\n\
         [program:y]\ncommand=y\npriority=10\n",
    );
    assert_eq!(
        service(&imported, "y")["dependencies"],
        json!([{"service": "x", "condition": "started"}])
    );
    assert!(has_warning(
        &imported,
        "[group:g]: tend has no process groups"
    ));
}

#[test]
fn log_destinations() {
    let logs = |options: &str| {
        let imported = ok(&format!("[program:a]\ncommand=a\n{options}"));
        let a = service(&imported, "a");
        (
            a["log_file"].clone(),
            a["output"].clone(),
            imported.warnings,
        )
    };
    let (file, output, warnings) = logs("stdout_logfile=/var/log/a.log\nredirect_stderr=true\n");
    assert_eq!((file, output), (json!("/var/log/a.log"), Value::Null));
    assert!(warnings.is_empty(), "{warnings:?}");
    let (file, _, warnings) = logs("stdout_logfile=/var/log/a.log\n");
    assert_eq!(file, "/var/log/a.log");
    assert!(
        warnings[0].starts_with("[program:a] stderr goes to log_file"),
        "{warnings:?}"
    );
    let (file, _, warnings) = logs("stderr_logfile=/var/log/err.log\n");
    assert_eq!(file, "/var/log/err.log");
    assert!(
        warnings[0].starts_with("[program:a] stdout goes to log_file"),
        "{warnings:?}"
    );
    let (_, output, warnings) = logs("stdout_logfile=NONE\nredirect_stderr=true\n");
    assert_eq!(output, "null");
    assert!(warnings.is_empty(), "{warnings:?}");
    let (file, output, warnings) = logs(
        "stdout_logfile=/dev/stdout\nstdout_logfile_maxbytes=0\nstderr_logfile=/dev/stderr\n\
         stderr_logfile_maxbytes=0\n",
    );
    assert_eq!((file, output), (Value::Null, Value::Null));
    assert!(warnings.is_empty(), "{warnings:?}");
    let (_, _, warnings) =
        logs("stdout_logfile=AUTO\nstdout_logfile_maxbytes=5MB\nstdout_syslog=true\n");
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    let (_, _, warnings) = logs("stdout_logfile=/a\nstderr_logfile=/b\n");
    assert!(warnings[0].contains("stderr_logfile=/b"), "{warnings:?}");
}

#[test]
fn shell_syntax_in_a_command_is_passed_as_words_with_a_warning() {
    let imported = ok("[program:a]\ncommand=/bin/app > /tmp/log 2>&1\n");
    assert_eq!(
        service(&imported, "a")["command"],
        json!(["/bin/app", ">", "/tmp/log", "2>&1"])
    );
    assert!(has_warning(&imported, "look like shell syntax"));
    let imported = ok("[program:a]\ncommand=/bin/sh -c \"exec app > /tmp/log 2>&1 $X\"\n");
    assert!(imported.warnings.is_empty(), "{:?}", imported.warnings);
}

#[test]
fn everything_without_an_equivalent_is_a_warning() {
    let imported = ok(
        "[unix_http_server]\nfile=/tmp/s.sock\n[supervisord]\nnodaemon=true\n\
         loglevel=blather\nfrobnicate=1\n[program:a]\ncommand=a\numask=022\ncolour=red\n\
         [eventlistener:e]\ncommand=e\n[program]\nx=1\n[fcgi-program:f]\ncommand=f\n\
         [include]\nfiles=conf.d/*.conf\n",
    );
    assert_eq!(imported.config["log_level"], "trace");
    for part in [
        "[unix_http_server]:",
        "[supervisord] frobnicate=1: unknown option",
        "[program:a] umask=022",
        "[program:a] colour=red: unknown option",
        "[eventlistener:e]: not imported",
        "[program]: unknown section",
        "[fcgi-program:f]",
        "[include]: files \"conf.d/*.conf\" not read",
    ] {
        assert!(
            has_warning(&imported, part),
            "{part}: {:?}",
            imported.warnings
        );
    }
    assert!(!has_warning(&imported, "nodaemon"));
    assert_eq!(services(&imported).len(), 1);
}

#[test]
fn names_are_made_valid_and_unique() {
    let imported = ok(
        "[program:a.b]\ncommand=a\n[group:g]\nprograms=x\n[program:x]\ncommand=x\n\
         process_name=a.b\n[program:q]\ncommand=q\nprocess_name=q@%(program_name)s\n",
    );
    let names: Vec<Value> = services(&imported)
        .iter()
        .map(|s| s["name"].clone())
        .collect();
    assert_eq!(names, [json!("a.b"), json!("a.b-2"), json!("q_q")]);
    assert_eq!(
        imported
            .warnings
            .iter()
            .filter(|w| w.contains("not a valid unique"))
            .count(),
        2
    );
}

#[test]
fn inputs_supervisord_refuses_are_errors_naming_the_line() {
    let cases: &[(&str, usize, &str)] = &[
        ("[program:a]\nautostart=true\n", 1, "has no command"),
        (
            "[program:a]\ncommand=bash -c 'foo ; bar'\n",
            2,
            "No closing quotation",
        ),
        ("[program:a]\ncommand=date +%s\n", 2, "a lone %"),
        ("[program:a]\ncommand=a\npriority=high\n", 3, "whole number"),
        ("[program:a]\ncommand=a\nstopsignal=NOPE\n", 3, "stopsignal"),
        ("[program:a]\ncommand=a\nexitcodes=0,300\n", 3, "exit code"),
        (
            "[program:a]\ncommand=a\nautostart=maybe\n",
            3,
            "true or false",
        ),
        ("[program:a]\ncommand=a\nnumprocs=2\n", 3, "process_num"),
        ("[program:a]\ncommand=a\nuser=\n", 3, "empty"),
        ("[program:a]\ncommand=''\n", 2, "empty"),
        ("[program:a b]\ncommand=a\n", 1, "invalid program name"),
        (
            "[program:a]\ncommand=a\nenvironment=A=b=c\n",
            3,
            "environment",
        ),
        ("[program:a]\ncommand=a\nstartsecs=-1\n", 3, "below 0"),
        ("[program:a]\ncommand=%(nope)s\n", 2, "cannot be expanded"),
        (
            "[program:a]\ncommand=a\nnumprocs=100000\nprocess_name=%(process_num)d\n",
            3,
            "at most",
        ),
        (
            "[program:a]\ncommand=a\nstopasgroup=true\nkillasgroup=false\n",
            4,
            "killasgroup",
        ),
        ("[supervisord]\nloglevel=loud\n", 2, "loglevel"),
        ("[program:a]\ncommand=a\njust words\n", 3, "key = value"),
        ("[program:a]\ncommand=a \0\n", 2, "NUL"),
    ];
    for (text, line, part) in cases {
        match conf(text) {
            Err(e) => {
                assert_eq!(e.line, Some(*line), "{text}: {e}");
                assert!(e.to_string().contains(part), "{text}: {e}");
                assert!(e.to_string().starts_with(&format!("line {line}: ")), "{e}");
            }
            Ok(imported) => panic!("{text}: imported {}", imported.text),
        }
    }
}

#[test]
fn detection_by_content_then_file_name() {
    let d = |text: &str, name: &str| detect(text, Path::new(name));
    assert_eq!(d("; c\n[program:a]\n", "Procfile"), Ok(Format::Supervisord));
    assert_eq!(d("# c\n\nweb: x\n", "x.conf"), Ok(Format::Procfile));
    assert_eq!(d("", "Procfile"), Ok(Format::Procfile));
    assert_eq!(d("", "supervisord.conf"), Ok(Format::Supervisord));
    assert_eq!(d("  junk\n", "Procfile.dev"), Ok(Format::Procfile));
    assert_eq!(
        d("junk here\n", "app.ini").map_err(|_| ()),
        Ok(Format::Supervisord)
    );
    let e = d("\n\njunk here\n", "notes.txt").unwrap_err();
    assert_eq!(e.line, Some(3));
    // The folder of the file is a Procfile's working_dir.
    let imported = import_with("web: x\n", Path::new("/srv/app/Procfile"), &host()).unwrap();
    assert_eq!(imported.format, Format::Procfile);
    assert_eq!(service(&imported, "web")["working_dir"], "/srv/app");
}

// --- fuzzing --------------------------------------------------------------

const SEEDS: &[&str] = &[
    include_str!("../../tests/golden/import/supervisord-sample.conf"),
    include_str!("../../tests/golden/import/supervisord-docs.conf"),
    include_str!("../../tests/golden/import/supervisord-docker.conf"),
    include_str!("../../tests/golden/import/Procfile.heroku"),
    include_str!("../../tests/golden/import/Procfile.honcho"),
];

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Characters that mean something to one of the parsers.
const ALPHABET: &[char] = &[
    '%', '(', ')', '[', ']', '=', ':', ';', '#', '"', '\'', '\\', '\n', ' ', '\t', '$', ',', '{',
    '}', '_', '0', '2', '9', 'd', 's', 'x', 'E', 'N', 'V', '-', '/', '.', '\r', 'é', '\u{e000}',
    '\u{feff}', '\0',
];

fn mutate(rng: &mut XorShift, text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for _ in 0..=rng.below(6) {
        let at = rng.below(chars.len() + 1);
        match rng.below(6) {
            0 | 1 => chars.insert(at, ALPHABET[rng.below(ALPHABET.len())]),
            2 => {
                let end = (at + rng.below(20)).min(chars.len());
                chars.drain(at..end);
            }
            3 => {
                let end = (at + rng.below(40)).min(chars.len());
                let piece: Vec<char> = chars[at..end].to_vec();
                let to = rng.below(chars.len() + 1);
                chars.splice(to..to, piece);
            }
            4 => {
                for token in [
                    "%(process_num)02d",
                    "%(ENV_HOME)s",
                    "numprocs=3",
                    "\n  ",
                    "=\"a,b\"",
                ] {
                    if rng.below(5) == 0 {
                        chars.splice(at..at, token.chars());
                    }
                }
            }
            _ => {
                if let Some(c) = chars.get_mut(at) {
                    *c = ALPHABET[rng.below(ALPHABET.len())];
                }
            }
        }
    }
    chars.into_iter().collect()
}

#[test]
fn fuzzed_inputs_never_panic_and_every_import_is_a_valid_config() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let names = ["supervisord.conf", "Procfile", "x.txt"];
    let mut imported_ok = 0;
    for round in 0..3000 {
        let seed = SEEDS[round % SEEDS.len()];
        let text = if round % 50 == 0 {
            (0..rng.below(200))
                .map(|_| ALPHABET[rng.below(ALPHABET.len())])
                .collect()
        } else {
            mutate(&mut rng, seed)
        };
        let name = names[rng.below(names.len())];
        let Ok(imported) = import_with(&text, &Path::new("/srv").join(name), &host()) else {
            continue;
        };
        imported_ok += 1;
        let reparsed: Value = serde_json::from_str(&imported.text)
            .unwrap_or_else(|e| panic!("{e}: {}\n--- from ---\n{text}", imported.text));
        assert_eq!(reparsed, imported.config);
        if let Err(errors) = crate::config::parse(&imported.text, None) {
            panic!(
                "{errors}\n--- config ---\n{}\n--- from ---\n{text}",
                imported.text
            );
        }
        for w in &imported.warnings {
            assert!(!w.contains(['\n', '\r']), "multi-line warning: {w:?}");
        }
    }
    assert!(
        imported_ok > 800,
        "only {imported_ok} mutated inputs imported"
    );
}
