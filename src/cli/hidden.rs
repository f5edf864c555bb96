//! The command forms only tend itself uses, kept out of the tables (so out of
//! the help and the completions): `tend reexec-check`, which the old tend runs
//! to ask a new binary which snapshot version it reads, and `tend run -c FILE
//! --resume FD`, which the old tend execs with its state in `FD` (SPEC §8).
//! Both are matched exactly, word for word, as tend writes them.

use std::ffi::OsString;
use std::path::PathBuf;

use super::Command;

/// The hidden command `args` (without argv[0]) is, if it is one.
pub fn parse(args: &[OsString]) -> Option<Command> {
    let words: Vec<&str> = args.iter().map(|a| a.to_str()).collect::<Option<_>>()?;
    match words.as_slice() {
        ["reexec-check"] => Some(Command::ReexecCheck),
        ["run", "-c", config, "--resume", fd] => Some(Command::Resume {
            config: PathBuf::from(config),
            fd: fd.to_string(),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn only_the_exact_forms_match() {
        assert_eq!(parse(&words(&["reexec-check"])), Some(Command::ReexecCheck));
        assert_eq!(
            parse(&words(&["run", "-c", "/etc/tend.json", "--resume", "7"])),
            Some(Command::Resume {
                config: "/etc/tend.json".into(),
                fd: "7".into()
            })
        );
        for other in [
            &["reexec-check", "x"][..],
            &["run", "--resume", "7"],
            &["run", "-c", "f", "--resume"],
            &["run", "--resume", "7", "-c", "f"],
            &["run", "-c", "f"],
            &[],
        ] {
            assert_eq!(parse(&words(other)), None, "{other:?}");
        }
    }
}
