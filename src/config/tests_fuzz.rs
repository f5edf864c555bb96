//! Mangled config texts through [`parse`]: no panic, and every problem and
//! warning has a place and a message. Deterministic (xorshift), no crates.

use super::*;

/// A config using every field, with comments and trailing commas.
const RICH: &str = r#"// every field
{
  "log_level": "info", "log_format": "json", "log_file": "/tmp/config-fuzz-none/tend.log",
  "log_max_size": "1M", "log_keep": 3, "metrics_address": "127.0.0.1:9187",
  "cgroup": "auto", "control_socket": "", "shutdown_timeout": "1m30s",
  "exit_when_idle": false,
  "services": [
    /* a database */
    {"name": "db", "command": ["postgres", "-D", "/data"], "user": "postgres",
     "readiness": {"type": "tcp", "address": "127.0.0.1:5432", "interval": "250ms"},
     "liveness": {"type": "grpc", "address": "[::1]:50051", "service": "", "failures": 2},
     "timeout_stop": "30s", "stop_signal": "SIGINT", "min_uptime": "2s",},
    {"name": "web", "command": ["/app/server"], "environment": {"A": "${HOME:-/}", "B": "$$"},
     "env_file": ["a.env", "/b.env"], "dependencies": ["db", {"service": "m", "condition": "completed"}],
     "readiness": {"type": "http", "url": "http://localhost:8080/healthz?x=1", "timeout": "1s"},
     "cgroup_limits": {"memory_max": "512M", "cpu_max": "50%", "pids_max": 100},
     "isolate": {"network": true, "tmp": true, "ipc": true, "hostname": "web"},
     "nice": 5, "io_priority": {"class": "best-effort", "level": 4}, "oom_score_adj": 100,
     "cpu_affinity": [0, 1], "log_file": "web.log", "log_keep": 1,
     "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     "limits": {"nofile": 4096, "memory": "1G", "cpu": "60s"}, "critical": true},
    {"name": "m", "type": "oneshot", "command": ["/app/migrate"],
     "readiness": {"type": "notify", "watchdog": "30s"}},
    {"name": "f", "command": ["x"], "readiness": {"type": "fd", "fd": 3}},
    {"name": "l", "command": ["x"], "readiness": {"type": "log", "pattern": "up"},
     "liveness": {"type": "exec", "command": ["check"]}},
  ],
}
"#;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % (n.max(1) as u64)) as usize
    }
}

const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b",",
    b":",
    b"-1",
    b"1e999",
    b"null",
    b"\"x\"",
    b"\\u0000",
    b"//c\n",
    b"/* c */",
    b"/*",
    b"*/",
    b"${",
    b"$$",
    b"\"${X\"",
    b"\xff",
    b"\"stderr_level\": 1,",
    b"\"type\": \"grpc\",",
    b"\"restart_polcy\": 1,",
    b"\"1h2m\"",
    b"99999999999999999999",
];

fn mutate(rng: &mut XorShift, seed: &[u8]) -> Vec<u8> {
    let mut text = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(text.len() + 1);
        match rng.below(5) {
            0 => text.truncate(at),
            1 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                text.splice(at..at, t.iter().copied());
            }
            2 if at < text.len() => {
                text.remove(at);
            }
            3 if at < text.len() => text[at] ^= 1 << rng.below(8),
            _ => {
                let t = TOKENS[rng.below(TOKENS.len())];
                text.extend_from_slice(t);
            }
        }
    }
    text
}

fn assert_placed(errors: &[ConfigError], text: &str) {
    for e in errors {
        assert!(
            !e.path.is_empty() && !e.problem.is_empty(),
            "{e:?} from:\n{text}"
        );
    }
}

#[test]
fn the_rich_config_is_valid() {
    match super::tests::parse_test(RICH) {
        Ok(c) => assert_eq!(c.services.len(), 5),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn mangled_configs_never_panic_and_every_problem_is_placed() {
    let demo = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.json"))
        .expect("demo config");
    let seeds: [&[u8]; 2] = [demo.as_bytes(), RICH.as_bytes()];
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut invalid = 0;
    for round in 0..3000 {
        let text = mutate(&mut rng, seeds[round % seeds.len()]);
        let text = String::from_utf8_lossy(&text);
        match parse(&text, None) {
            Ok(c) => assert_placed(&c.warnings, &text),
            Err(e) => {
                assert!(!e.0.is_empty(), "an error without problems from:\n{text}");
                assert_placed(&e.0, &text);
                invalid += 1;
            }
        }
    }
    assert!(
        invalid > 1000,
        "mutations should mostly break the config: {invalid}"
    );
}
