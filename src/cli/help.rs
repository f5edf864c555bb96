//! The usage text and `tend help COMMAND`, written from the tables.

use super::table::CLIENT;
use super::{COMMANDS, CommandSpec, Flag, OPTIONS, Operands, find_command, option_spec};

/// The usage text: every command of the table with its summary, then the options.
pub fn usage() -> String {
    let mut lines: Vec<(String, &str)> = COMMANDS
        .iter()
        .map(|c| (synopsis(c, false), c.summary))
        .collect();
    if let Some(last) = lines.last_mut() {
        last.0.push_str(" | --help | --version");
    }
    let width = lines
        .iter()
        .map(|(s, _)| s.len())
        .max()
        .unwrap_or(0)
        .min(32);
    let mut out =
        String::from("tend: keep a set of services running from one JSON file\n\nusage:\n");
    for (synopsis, summary) in &lines {
        out.push_str(&pad_row(synopsis, summary, width));
    }
    out.push_str(
        "\nEvery command that talks to a running tend also takes -s PATH and -c FILE.\n\
         'tend help COMMAND' or 'tend COMMAND --help' tells more.\n\noptions:\n",
    );
    out.push_str(&option_rows(OPTIONS.iter().map(|o| o.flag)));
    out.push_str(
        "\nexit codes: 0 success; 1 runtime failure (no such service, tend not reachable,\n\
         an action that did not reach its state); 2 usage or config error; run exits with\n\
         a failed critical service's code (128+N when killed by signal N).\n",
    );
    out
}

/// `tend help NAME`: the full synopsis, what it does, and its options.
pub fn command_help(spec: &CommandSpec) -> String {
    let mut out = format!(
        "usage: {}\n\n{}\n\noptions:\n",
        synopsis(spec, true),
        spec.help
    );
    let flags = spec.options.iter().copied().chain([Flag::Help]);
    out.push_str(&option_rows(flags));
    out
}

/// `tend help` or `tend help NAME`.
pub fn help(command: Option<&str>) -> String {
    match command.and_then(find_command) {
        Some(spec) => command_help(spec),
        None => usage(),
    }
}

/// `tend status [NAME...] [--json]`; with `full`, also `-s`/`-c` of clients.
fn synopsis(spec: &CommandSpec, full: bool) -> String {
    let mut out = String::from("tend ");
    out.push_str(if spec.name == "run" && !full {
        "[run]"
    } else {
        spec.name
    });
    match &spec.operands {
        Operands::None => {}
        Operands::Names(0) => out.push_str(" [NAME...]"),
        Operands::Names(_) => out.push_str(" NAME..."),
        Operands::Exact(words) => {
            for w in *words {
                out.push(' ');
                out.push_str(w);
            }
        }
        Operands::OneOf(choices) => {
            out.push(' ');
            out.push_str(&choices.join("|"));
        }
        Operands::Optional(what) => out.push_str(&format!(" [{what}]")),
    }
    for flag in spec.options {
        if spec.client && !full && CLIENT.contains(flag) {
            continue;
        }
        if let Some(o) = option_spec(*flag) {
            let name = match o.short {
                Some(c) => format!("-{c}"),
                None => format!("--{}", o.long),
            };
            match o.value {
                Some(v) => out.push_str(&format!(" [{name} {v}]")),
                None => out.push_str(&format!(" [{name}]")),
            }
        }
    }
    out
}

fn option_rows(flags: impl Iterator<Item = Flag>) -> String {
    let rows: Vec<(String, &str)> = flags
        .filter_map(option_spec)
        .map(|o| {
            let short = o.short.map_or("    ".to_string(), |c| format!("-{c}, "));
            let value = o.value.map_or(String::new(), |v| format!(" {v}"));
            (format!("{short}--{}{value}", o.long), o.help)
        })
        .collect();
    let width = rows.iter().map(|(s, _)| s.len()).max().unwrap_or(0);
    rows.iter().map(|(s, h)| pad_row(s, h, width)).collect()
}

fn pad_row(left: &str, right: &str, width: usize) -> String {
    if left.len() > width {
        format!("  {left}\n  {:width$}  {right}\n", "")
    } else {
        format!("  {left:width$}  {right}\n")
    }
}
