//! Signals: the mask, the dispositions, and the two kinds of handler tend
//! installs (which signals get which is `runtime::signals`' choice).
//!
//! - [`count_signal`]: signal-hook's handler, for the signals tend acts on: it
//!   adds one to a counter; the caller also registers signal-hook's wake-up pipe
//!   (a safe call).
//! - [`catch`]: tend's own `SA_SIGINFO` handler, for every other signal that
//!   would end tend. It notes the signal and who sent it ([`take_caught`]),
//!   wakes the loop through the fd given to [`set_wake`], and otherwise ignores
//!   it. For the fault signals ([`FAULTS`]) it first tells a real fault from one
//!   sent with `kill`: a fault the kernel raised (`si_code > 0`: a bad address or
//!   instruction) or that tend raised itself (`abort`) gets the default action
//!   back and the handler returns, so the fault recurs (or `abort` raises again)
//!   and ends tend as it would have without a handler.
//!
//! The [`catch`] handler touches only atomics and makes only async-signal-safe
//! calls (`getpid`, `send`, `rt_sigaction`), saving and restoring `errno`. It is
//! also harmless in a spawn child between its unmask and its exec, which shares
//! tend's memory: there `getpid` is not tend's pid, and it returns at once. So a
//! spawn needs to reset only the other dispositions ([`reset_in_child`]), which
//! keeps the dozens of caught signals off the restart path.

use std::io;
use std::ops::RangeInclusive;
use std::os::fd::{IntoRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicUsize, Ordering};

use libc::c_int;

use super::check;

/// The signals a fault raises. Sent with `kill`, they are caught and ignored
/// like the others; raised by a fault, they end tend.
pub const FAULTS: [c_int; 5] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGABRT,
];

/// The real-time signals libc lets programs use (it keeps the first few).
pub fn realtime() -> RangeInclusive<c_int> {
    libc::SIGRTMIN()..=libc::SIGRTMAX()
}

/// Count `signal` in `counter` (signal-hook's handler). `signal` must not be one
/// signal-hook refuses (SIGKILL, SIGSTOP, SIGILL, SIGFPE, SIGSEGV).
pub fn count_signal(signal: c_int, counter: Arc<AtomicUsize>) -> io::Result<()> {
    // SAFETY: the action only adds to an atomic, which is async-signal-safe.
    unsafe {
        signal_hook::low_level::register(signal, move || {
            counter.fetch_add(1, Ordering::SeqCst);
        })?;
    }
    Ok(())
}

/// One caught signal's record: how many arrived since the last take, and the
/// last sender (0: the kernel).
struct Slot {
    count: AtomicU32,
    sender: AtomicI32,
}

/// Records by signal number (1..=64; 0 unused).
static CAUGHT: [Slot; 65] = [const {
    Slot {
        count: AtomicU32::new(0),
        sender: AtomicI32::new(0),
    }
}; 65];
/// Where the handler writes a byte to wake the loop; -1 until [`set_wake`].
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);
/// tend's pid, to tell its own signals and a spawn child's handler runs apart.
static TEND_PID: AtomicI32 = AtomicI32::new(0);

/// Hand the [`catch`] handler the socket it wakes the loop with (a byte, sent
/// with `MSG_DONTWAIT`). It stays open for good; a second call is ignored.
pub fn set_wake(fd: OwnedFd) {
    let raw = fd.into_raw_fd();
    if WAKE_FD
        .compare_exchange(-1, raw, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        // SAFETY: `raw` came from an OwnedFd just now and nothing else has it.
        drop(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) });
    }
}

/// Catch `signal` with tend's handler (see the module doc): noted, then ignored,
/// unless it is a real fault.
pub fn catch(signal: c_int) -> io::Result<()> {
    TEND_PID.store(std::process::id() as i32, Ordering::SeqCst);
    // SAFETY: sigaction is plain old data; all zeroes is a valid value.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = on_caught as *const () as libc::sighandler_t;
    action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
    if FAULTS.contains(&signal) {
        // A stack overflow is a fault too, and its handler needs the alternate
        // stack (Rust's runtime sets a small one up for the main thread).
        action.sa_flags |= libc::SA_ONSTACK;
    }
    // SAFETY: `action` and its mask are valid; no old action is asked for. The
    // full mask: while the handler runs, every other signal waits, so a burst
    // of signals runs one handler after another instead of nesting dozens of
    // frames (which would overflow the small alternate stack).
    unsafe {
        libc::sigfillset(&mut action.sa_mask);
        check(libc::sigaction(signal, &action, std::ptr::null_mut()))?;
    }
    Ok(())
}

/// A caught signal since the last [`take_caught`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caught {
    pub signal: c_int,
    /// How many arrived (standard signals arriving together count once).
    pub count: u32,
    /// The pid of the last sender; `None` when the kernel raised it.
    pub sender: Option<i32>,
}

/// The signals caught since the last call, in signal order.
pub fn take_caught() -> Vec<Caught> {
    CAUGHT
        .iter()
        .enumerate()
        .filter_map(|(signal, slot)| {
            let count = slot.count.swap(0, Ordering::Acquire);
            let sender = slot.sender.load(Ordering::Relaxed);
            (count > 0).then_some(Caught {
                signal: signal as c_int,
                count,
                sender: (sender != 0).then_some(sender),
            })
        })
        .collect()
}

/// The handler of [`catch`]. Async-signal-safe: atomics and three system calls.
extern "C" fn on_caught(signal: c_int, info: *mut libc::siginfo_t, _context: *mut libc::c_void) {
    if info.is_null() {
        return;
    }
    // SAFETY: with SA_SIGINFO the kernel passes a valid siginfo_t. `si_pid` is
    // meaningful only when a process sent the signal (`si_code <= 0`), and is
    // used only then.
    let (code, sender) = unsafe { ((*info).si_code, (*info).si_pid()) };
    let tend = TEND_PID.load(Ordering::Relaxed);
    let from_process = code <= 0;
    if FAULTS.contains(&signal) && (!from_process || sender == tend) {
        // A real fault (or tend's own abort): default action back, and return
        // into the fault, which happens again and now ends tend.
        let default_action = [0u64; 4]; // the kernel's struct sigaction: SIG_DFL
        // SAFETY: rt_sigaction with a valid action and no old one; errno is kept.
        unsafe {
            let errno = libc::__errno_location();
            let saved = *errno;
            libc::syscall(
                libc::SYS_rt_sigaction,
                signal,
                default_action.as_ptr(),
                std::ptr::null::<u64>(),
                8usize,
            );
            *errno = saved;
        }
        return;
    }
    // SAFETY: getpid takes nothing and cannot fail.
    if unsafe { libc::getpid() } != tend {
        return; // a spawn child about to exec: nothing of tend's to note
    }
    if from_process && sender == tend {
        return; // tend's own: SIGPIPE or SIGXFSZ of a failed write, which says so itself
    }
    let Some(slot) = CAUGHT.get(signal as usize) else {
        return;
    };
    slot.sender
        .store(if from_process { sender } else { 0 }, Ordering::Relaxed);
    slot.count.fetch_add(1, Ordering::Release);
    let fd = WAKE_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = 1u8;
        // SAFETY: `send` is async-signal-safe and gets a valid one-byte buffer;
        // errno is saved and restored around it.
        unsafe {
            let errno = libc::__errno_location();
            let saved = *errno;
            libc::send(
                fd,
                (&byte as *const u8).cast(),
                1,
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            );
            *errno = saved;
        }
    }
}

/// Clear tend's signal mask: a parent that blocked SIGCHLD or SIGTERM must not
/// blind it. Call after the handlers are installed, so that what is pending goes
/// to them. Then block libc's reserved signals (see [`reserved`]).
pub fn unblock_all() -> io::Result<()> {
    // The kernel's sigset: one bit per signal, signal N at bit N-1. Raw, because
    // glibc's sigprocmask quietly drops its reserved signals from a set.
    let reserved: u64 = reserved().fold(0, |bits, signal| bits | 1 << (signal - 1));
    for (how, set) in [(libc::SIG_SETMASK, 0u64), (libc::SIG_BLOCK, reserved)] {
        // SAFETY: rt_sigprocmask with a valid 8-byte set and no old set.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_rt_sigprocmask,
                how,
                &set as *const u64,
                std::ptr::null_mut::<u64>(),
                8usize,
            )
        };
        if ret == -1 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The signals libc keeps for itself between the standard ones and
/// `SIGRTMIN` (32 and 33 in glibc, 32 to 34 in musl): their default action
/// ends a process, and libc refuses handlers for them. tend is single-threaded,
/// so libc never uses them in it; tend keeps them blocked, so that one sent with
/// `kill` stays pending instead of ending tend. A spawn child empties its mask
/// before exec, so services get them unblocked.
pub fn reserved() -> std::ops::Range<c_int> {
    32..libc::SIGRTMIN()
}

/// Put every signal that is ignored (`SIG_IGN`, as a parent can hand it down)
/// back to its default action. Call after installing the handlers, so that only
/// the signals tend does not handle are touched. Returns those reset. libc's
/// reserved signals are left alone (`sigaction` refuses them).
pub fn reset_ignored() -> Vec<c_int> {
    let mut reset = Vec::new();
    for signal in 1..=libc::SIGRTMAX() {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        // SAFETY: sigaction is plain old data; all zeroes is a valid value.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: a NULL new action only queries; `old` is a valid out-pointer.
        if unsafe { libc::sigaction(signal, std::ptr::null(), &mut old) } != 0 {
            continue;
        }
        if old.sa_sigaction != libc::SIG_IGN {
            continue;
        }
        // SAFETY: as above.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = libc::SIG_DFL;
        // SAFETY: valid pointers; SIG_DFL for a signal libc accepted above.
        let ok = unsafe {
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut()) == 0
        };
        if ok {
            reset.push(signal);
        }
    }
    reset
}

/// The signals a spawn child must set back to `SIG_DFL` before it unblocks
/// signals: every one whose disposition in tend is neither the default nor the
/// [`catch`] handler (which is harmless in a child). Asks the kernel directly,
/// because libc hides the signals it reserves for itself, which can arrive
/// ignored from tend's parent or carry libc's own handlers.
pub fn reset_in_child() -> Vec<c_int> {
    (1..=64)
        .filter(|&signal| match kernel_handler(signal) {
            None => false,
            Some(handler) => handler != libc::SIG_DFL && handler != on_caught as *const () as usize,
        })
        .collect()
}

/// The handler address of `signal` as the kernel has it, or `None` for a signal
/// that cannot have one (SIGKILL, SIGSTOP, a number out of range).
fn kernel_handler(signal: c_int) -> Option<usize> {
    if signal == libc::SIGKILL || signal == libc::SIGSTOP {
        return None;
    }
    // The kernel's `struct sigaction`: handler, flags, (restorer,) mask (8 bytes).
    let mut old = [0u64; 4];
    // SAFETY: a NULL new action only queries; `old` is large enough.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            signal,
            std::ptr::null::<u64>(),
            old.as_mut_ptr(),
            8usize,
        )
    };
    (ret == 0).then_some(old[0] as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;
    use std::time::{Duration, Instant};

    #[test]
    fn caught_signals_need_no_reset_in_a_child() {
        catch(libc::SIGUSR1).expect("catch");
        let reset = reset_in_child();
        assert!(!reset.contains(&libc::SIGUSR1), "{reset:?}");
        assert!(!reset.contains(&libc::SIGKILL));
        assert!(realtime().contains(&libc::SIGRTMAX()));
        assert!(!realtime().contains(&32), "libc keeps 32 for itself");
    }

    /// Run in a child process (the test binary again): catch the fault signals,
    /// then touch memory that faults. The process must die of SIGSEGV, not
    /// ignore the fault (which would repeat it forever).
    #[test]
    fn a_real_fault_still_ends_the_process() {
        if std::env::var_os("TEND_TEST_REAL_FAULT").is_some() {
            for signal in FAULTS {
                catch(signal).expect("catch");
            }
            // SAFETY: a fresh inaccessible page; reading it faults (that is the test).
            unsafe {
                let page = libc::mmap(
                    std::ptr::null_mut(),
                    4096,
                    libc::PROT_NONE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                );
                assert_ne!(page, libc::MAP_FAILED);
                std::ptr::read_volatile(page as *const u8);
            }
            std::process::exit(0); // not reached
        }
        let exe = std::env::current_exe().expect("test binary");
        let mut child = std::process::Command::new(exe)
            .args([
                "--exact",
                "sys::signal::tests::a_real_fault_still_ends_the_process",
            ])
            .env("TEND_TEST_REAL_FAULT", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the faulting process did not end");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(status.signal(), Some(libc::SIGSEGV), "{status:?}");
    }
}
