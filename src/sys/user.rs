//! Users and groups: `user` and `group` of a service (names or numbers) to ids,
//! supplementary groups, and the passwd fields a service's environment needs.
//!
//! These are NSS lookups (`getpwnam_r`, `getgrnam_r`, `getgrouplist`): they read
//! `/etc/passwd` and `/etc/group`, may load modules and may even ask a daemon. So
//! they are made once per service definition (see `runtime::launch`), never per
//! restart, and never in a spawned child.

use std::ffi::{CStr, CString, OsString};
use std::io;
use std::os::unix::ffi::OsStringExt;

/// A user resolved before any spawn: ids, supplementary groups and the account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub uid: Option<libc::uid_t>,
    pub gid: Option<libc::gid_t>,
    pub groups: Option<Vec<libc::gid_t>>,
    /// The account of `user`, for `HOME`, `USER`, `LOGNAME` and `SHELL`; `None`
    /// without a `user`.
    pub account: Option<Account>,
}

/// What the passwd entry of a `user` says, as the environment needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The login name; for a number without a passwd entry, the number.
    pub name: OsString,
    /// The home folder; `/` for a number without a passwd entry.
    pub home: OsString,
    /// The login shell; `None` if the entry has none (or there is no entry).
    pub shell: Option<OsString>,
}

/// Resolve `user` and `group` (names or numbers) to ids. With a user and no group,
/// the user's primary group and supplementary groups are used.
pub fn resolve_credentials(user: Option<&str>, group: Option<&str>) -> io::Result<Credentials> {
    let mut creds = Credentials::default();
    if let Some(user) = user {
        let entry = lookup_user(user)?;
        creds.uid = Some(entry.uid);
        creds.gid = Some(entry.gid);
        creds.groups = Some(match &entry.login {
            Some(login) => group_list(login, entry.gid)?,
            None => vec![entry.gid],
        });
        creds.account = Some(entry.account);
    }
    if let Some(group) = group {
        let gid = lookup_group(group)?;
        creds.gid = Some(gid);
        if creds.groups.is_none() {
            creds.groups = Some(vec![gid]);
        }
    }
    Ok(creds)
}

struct UserEntry {
    /// The name to ask `getgrouplist` with; `None` for a bare number without entry.
    login: Option<CString>,
    uid: libc::uid_t,
    gid: libc::gid_t,
    account: Account,
}

fn not_found(what: &str, name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("no such {what}: {name}"))
}

/// The buffer the `_r` lookups write strings into: 16 KiB, doubled on `ERANGE`
/// up to 1 MiB (an entry with a huge member list).
fn with_buffer<T>(mut call: impl FnMut(&mut [u8]) -> Result<T, libc::c_int>) -> io::Result<T> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match call(&mut buf) {
            Ok(value) => return Ok(value),
            Err(libc::ERANGE) if buf.len() < 1 << 20 => {
                let bigger = buf.len() * 2;
                buf.resize(bigger, 0);
            }
            Err(errno) => return Err(io::Error::from_raw_os_error(errno)),
        }
    }
}

fn os_string(ptr: *const libc::c_char) -> OsString {
    if ptr.is_null() {
        return OsString::new();
    }
    // SAFETY: a non-null string of an entry getpw*_r just filled: it points into
    // the caller's buffer, which is alive, and is NUL-terminated.
    OsString::from_vec(unsafe { CStr::from_ptr(ptr) }.to_bytes().to_vec())
}

fn lookup_user(user: &str) -> io::Result<UserEntry> {
    let by_id = user.parse::<libc::uid_t>().ok();
    let cname = CString::new(user).map_err(|_| not_found("user", user))?;
    let found = with_buffer(|buf| {
        // SAFETY: passwd is plain old data; all zeroes is a valid value.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; the strings the entry
        // points to live in `buf`, which outlives their use below.
        let ret = unsafe {
            match by_id {
                Some(uid) => libc::getpwuid_r(
                    uid,
                    &mut pwd,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    &mut result,
                ),
                None => libc::getpwnam_r(
                    cname.as_ptr(),
                    &mut pwd,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    &mut result,
                ),
            }
        };
        match (result.is_null(), ret) {
            (false, _) => Ok(Some(UserEntry {
                login: Some(CString::from(
                    // SAFETY: as for `os_string`: a filled, NUL-terminated name.
                    unsafe { CStr::from_ptr(pwd.pw_name) },
                )),
                uid: pwd.pw_uid,
                gid: pwd.pw_gid,
                account: Account {
                    name: os_string(pwd.pw_name),
                    home: os_string(pwd.pw_dir),
                    shell: Some(os_string(pwd.pw_shell)).filter(|s| !s.is_empty()),
                },
            })),
            (true, 0) => Ok(None),
            // glibc reports "no such entry" as ENOENT from some NSS modules.
            (true, libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM) => Ok(None),
            (true, errno) => Err(errno),
        }
    });
    match (found, by_id) {
        (Ok(Some(entry)), _) => Ok(entry),
        // A bare number without a passwd entry is still a valid uid.
        (Ok(None) | Err(_), Some(uid)) => Ok(UserEntry {
            login: None,
            uid,
            gid: uid,
            account: Account {
                name: OsString::from(uid.to_string()),
                home: OsString::from("/"),
                shell: None,
            },
        }),
        (Ok(None), None) => Err(not_found("user", user)),
        (Err(e), None) => Err(e),
    }
}

fn lookup_group(group: &str) -> io::Result<libc::gid_t> {
    if let Ok(gid) = group.parse::<libc::gid_t>() {
        return Ok(gid);
    }
    let cname = CString::new(group).map_err(|_| not_found("group", group))?;
    let found = with_buffer(|buf| {
        // SAFETY: group is plain old data; all zeroes is a valid value.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call.
        let ret = unsafe {
            libc::getgrnam_r(
                cname.as_ptr(),
                &mut grp,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        };
        match (result.is_null(), ret) {
            (false, _) => Ok(Some(grp.gr_gid)),
            (true, 0 | libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM) => Ok(None),
            (true, errno) => Err(errno),
        }
    })?;
    found.ok_or_else(|| not_found("group", group))
}

fn group_list(user: &CStr, gid: libc::gid_t) -> io::Result<Vec<libc::gid_t>> {
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    for _ in 0..8 {
        let mut n = groups.len() as libc::c_int;
        // SAFETY: groups has room for n entries; n is updated to the needed count.
        let ret = unsafe { libc::getgrouplist(user.as_ptr(), gid, groups.as_mut_ptr(), &mut n) };
        if ret >= 0 {
            groups.truncate(n.max(0) as usize);
            return Ok(groups);
        }
        groups.resize((n.max(0) as usize).max(groups.len() * 2), 0);
    }
    Ok(vec![gid])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_resolves_by_name_and_number() {
        let by_name = resolve_credentials(Some("root"), None).expect("root exists");
        assert_eq!(by_name.uid, Some(0));
        assert_eq!(by_name.gid, Some(0));
        let account = by_name.account.expect("an account");
        assert_eq!(account.name, "root");
        assert!(!account.home.is_empty());
        let by_number = resolve_credentials(Some("0"), None).expect("uid 0 exists");
        assert_eq!(
            by_number.account.map(|a| a.name),
            Some(OsString::from("root"))
        );
    }

    #[test]
    fn a_number_without_entry_is_its_own_name_with_home_slash() {
        // 4 000 000 000 is far above any real account.
        let creds = resolve_credentials(Some("4000000000"), None).expect("a bare uid");
        assert_eq!(creds.uid, Some(4_000_000_000));
        assert_eq!(creds.gid, Some(4_000_000_000));
        assert_eq!(creds.groups, Some(vec![4_000_000_000]));
        let account = creds.account.expect("an account");
        assert_eq!(account.name, "4000000000");
        assert_eq!(account.home, "/");
        assert_eq!(account.shell, None);
    }

    #[test]
    fn unknown_names_are_not_found() {
        let err = resolve_credentials(Some("no-such-user-tend"), None).expect_err("unknown");
        assert_eq!(err.to_string(), "no such user: no-such-user-tend");
        let err = resolve_credentials(None, Some("no-such-group-tend")).expect_err("unknown");
        assert_eq!(err.to_string(), "no such group: no-such-group-tend");
        let err = resolve_credentials(Some("nul\0name"), None).expect_err("NUL");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn a_group_alone_sets_gid_and_groups() {
        let creds = resolve_credentials(None, Some("0")).expect("gid 0");
        assert_eq!((creds.uid, creds.gid), (None, Some(0)));
        assert_eq!(creds.groups, Some(vec![0]));
        assert_eq!(creds.account, None);
    }
}
