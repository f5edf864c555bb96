//! The terminal of `tend top`: keys read one at a time without echo
//! (non-canonical mode), and the settings put back when done.
//!
//! Must not: change anything but `ICANON`, `ECHO`, `VMIN` and `VTIME`: signals
//! from keys (`ISIG`: Ctrl-C is SIGINT) and output processing stay as they
//! were.

use std::io;
use std::os::fd::RawFd;

use super::check;

/// A terminal in non-canonical mode without echo; its settings go back to
/// what they were when this is dropped.
pub struct KeyInput {
    fd: RawFd,
    saved: libc::termios,
}

impl KeyInput {
    /// Put the terminal on `fd` into non-canonical mode without echo: each
    /// key can be read as it is typed. Fails when `fd` is not a terminal.
    pub fn enter(fd: RawFd) -> io::Result<KeyInput> {
        // SAFETY: termios is plain old data; tcgetattr fills it in.
        let mut settings: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: a valid out-pointer for the length of the call.
        check(unsafe { libc::tcgetattr(fd, &mut settings) })?;
        let saved = settings;
        settings.c_lflag &= !(libc::ICANON | libc::ECHO);
        settings.c_cc[libc::VMIN] = 1;
        settings.c_cc[libc::VTIME] = 0;
        // SAFETY: settings read from this terminal, two flags and two
        // control characters changed.
        check(unsafe { libc::tcsetattr(fd, libc::TCSANOW, &settings) })?;
        Ok(KeyInput { fd, saved })
    }
}

impl Drop for KeyInput {
    fn drop(&mut self) {
        // SAFETY: the settings this terminal had; a failure (the terminal is
        // gone) leaves nothing to restore.
        unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipe_is_not_a_terminal() {
        let (rx, _tx) = super::super::pipe().expect("pipe");
        let err = KeyInput::enter(std::os::fd::AsRawFd::as_raw_fd(&rx)).err();
        assert_eq!(err.and_then(|e| e.raw_os_error()), Some(libc::ENOTTY));
    }
}
