//! `services_dir` discovery (SPEC §6): each immediate subfolder `D` holding an
//! executable regular file `D` is a service named `D`; `D/service.json` adjusts it.
//!
//! Reads the folder only; it starts nothing. Unusable subfolders are skipped.
//! Relative paths in a `service.json` are resolved against its folder.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::ServiceSpec;
use super::checker::Checker;
use super::raw;
use super::validate::{Discovered, check_service};

/// Scan `dir`; returns (path for messages, spec) in name order.
pub(super) fn scan(c: &mut Checker, dir: &Path) -> Vec<(String, ServiceSpec)> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            c.error(
                "services_dir",
                format!("cannot read {}: {e}", dir.display()),
            );
            return Vec::new();
        }
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|name| is_service_folder(dir, name))
        .collect();
    names.sort();
    names
        .into_iter()
        .filter_map(|name| discover_one(c, dir, &name))
        .collect()
}

/// A valid service name whose folder holds an executable regular file of that name.
fn is_service_folder(dir: &Path, name: &str) -> bool {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '.' | '-'));
    valid
        && std::fs::metadata(dir.join(name).join(name))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn discover_one(c: &mut Checker, dir: &Path, name: &str) -> Option<(String, ServiceSpec)> {
    let folder = dir.join(name);
    let path = format!("services_dir/{name}/service.json");
    let discovered = Discovered {
        name: name.to_string(),
        command: vec![folder.join(name).display().to_string()],
        working_dir: folder.clone(),
    };
    let text = match std::fs::read_to_string(folder.join("service.json")) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "{}".to_string(),
        Err(e) => {
            c.error(path, format!("cannot read: {e}"));
            return None;
        }
    };
    let value = match raw::parse(&text) {
        Ok(value) => value,
        Err(e) => {
            c.error(format!("{path}: {}", e.path), e.problem);
            return None;
        }
    };
    // Relative paths in a service.json are relative to its own folder.
    let mut spec = check_service(c, &path, &value, Some(discovered), Some(&folder))?;
    if spec.name != name {
        c.error(
            format!("{path}.name"),
            format!("must be {name:?}, the folder's name, or left out"),
        );
        spec.name = name.to_string();
    }
    Some((path, spec))
}
