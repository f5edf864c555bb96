//! Service output pipes in the loop: registering them, reading them fairly,
//! and handing each block of lines to its destinations (the log, the `tend
//! logs` ring, followers, the `log` readiness watch).
//!
//! Reads are bounded per turn ([`READ_BUDGET`](super::READ_BUDGET)); a pipe
//! with data left stays on the `ready` list, and nothing is read while the log
//! is congested, so a flood neither stalls other services nor grows memory.

use std::os::fd::AsRawFd;

use log::{debug, warn};
use mio::unix::pipe::Receiver;
use mio::{Interest, Token};

use super::control::ControlServer;
use super::output::{Lines, Pipe, ReadEnd, Stream};
use super::{READ_BUDGET, Runtime, ServiceIo, sys};
use crate::logging::LogSink;
use crate::machine::{Event, RunId, ServiceId, Supervisor};

/// Requested capacity of each output pipe (the kernel may grant less).
const PIPE_SIZE: i32 = 256 * 1024;
/// Old runs' pipes kept open per service (orphans may hold them); beyond this the
/// oldest is closed.
const MAX_LINGERING_PIPES: usize = 8;

impl Runtime {
    pub(super) fn add_pipe(
        &mut self,
        service: ServiceId,
        run: RunId,
        stream: Stream,
        mut rx: Receiver,
    ) {
        // A larger pipe lets a chatty service write on while tend is busy, and
        // halves the wakeups on both sides; it only costs memory when used.
        sys::grow_pipe(rx.as_raw_fd(), PIPE_SIZE);
        if let Err(e) = rx.set_nonblocking(true) {
            warn!("cannot make an output pipe non-blocking: {e}");
            return;
        }
        let token = self.tokens.next();
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut rx, token, Interest::READABLE)
        {
            warn!("cannot watch an output pipe: {e}");
            return;
        }
        let io = self.io.entry(service).or_default();
        io.pipes.push_back(token);
        let lingering = io.pipes.len() > MAX_LINGERING_PIPES + 2;
        let oldest = if lingering {
            io.pipes.pop_front()
        } else {
            None
        };
        self.pipes
            .insert(token, Pipe::new(service, run, stream, rx));
        if let Some(old) = oldest {
            warn!("closing an output pipe of an old run held open by a leftover process");
            self.close_pipe(old);
        }
    }

    pub(super) fn close_pipe(&mut self, token: Token) {
        if let Some(mut pipe) = self.pipes.remove(&token) {
            let _ = self.poll.registry().deregister(&mut pipe.receiver);
            if let Some(io) = self.io.get_mut(&pipe.service) {
                io.pipes.retain(|t| *t != token);
            }
        }
        // A stale token left on `ready` is skipped: tokens are never reused.
    }

    /// Put a pipe with data on the `ready` list, once (a flag, not a search:
    /// constant time however many pipes are busy).
    pub(super) fn enqueue(&mut self, token: Token) {
        if let Some(pipe) = self.pipes.get_mut(&token)
            && !pipe.queued
        {
            pipe.queued = true;
            self.ready.push_back(token);
        }
    }

    /// Read the pipes known to have data, round-robin, each up to its budget,
    /// while the log can take more.
    pub(super) fn pump_output(&mut self) {
        let mut turns = self.ready.len();
        while turns > 0 && !self.log.is_congested() {
            turns -= 1;
            let Some(token) = self.ready.pop_front() else {
                break;
            };
            if let Some(pipe) = self.pipes.get_mut(&token) {
                pipe.queued = false;
            }
            if self.read_pipe(token, READ_BUDGET, false) == ReadEnd::Budget {
                self.enqueue(token);
            }
            if self.log.wants_flush() {
                self.log.flush();
            }
        }
        let events: Vec<Event> = self.pending_events.drain(..).collect();
        for event in events {
            self.feed(event);
        }
    }

    /// Read one pipe; at EOF close it. `at_exit`: reading the last output of an
    /// exited run, which must not wait for the log to drain.
    pub(super) fn read_pipe(&mut self, token: Token, budget: usize, at_exit: bool) -> ReadEnd {
        let Some(mut pipe) = self.pipes.remove(&token) else {
            return ReadEnd::Drained;
        };
        let result = {
            let mut sink = LineSink {
                sup: &self.sup,
                log: &mut self.log,
                io: self.io.get_mut(&pipe.service),
                control: &mut self.control,
                line_counter: &mut self.line_counter,
                registry: self.poll.registry(),
                events: &mut self.pending_events,
                service: pipe.service,
                run: pipe.run,
                stream: pipe.stream,
            };
            sink.log.refresh_clock();
            pipe.read(budget, &mut self.scratch, &mut |lines| sink.lines(lines))
        };
        self.pipes.insert(token, pipe);
        let end = match result {
            Ok(end) => end,
            Err(e) => {
                debug!("reading output: {e}");
                ReadEnd::Eof
            }
        };
        if end == ReadEnd::Eof {
            self.close_pipe(token);
        } else if at_exit && end == ReadEnd::Budget {
            self.enqueue(token);
        }
        end
    }
}

/// Where a service's output lines go: the log, its ring, followers, and the
/// `log` readiness watch (armed by the core while it waits for readiness).
struct LineSink<'a> {
    sup: &'a Supervisor,
    log: &'a mut LogSink,
    io: Option<&'a mut ServiceIo>,
    control: &'a mut Option<ControlServer>,
    line_counter: &'a mut super::ring::LineCounter,
    registry: &'a mio::Registry,
    events: &'a mut Vec<Event>,
    service: ServiceId,
    run: RunId,
    stream: Stream,
}

impl LineSink<'_> {
    fn lines(&mut self, lines: Lines<'_>) {
        let Some(service) = self.sup.get(self.service) else {
            return;
        };
        let Some(io) = self.io.as_deref_mut() else {
            return;
        };
        io.counters.add_lines(self.stream, lines.ends.len());
        // Records, not levels: never filtered by log_level, nor shown as an
        // error for coming from stderr (the stream is in the record).
        self.log.service_lines(service.name(), self.stream, lines);
        let first_seq = self.line_counter.take(lines.ends.len());
        let ms = super::ring::now_ms();
        io.ring.push(self.stream, lines, first_seq, ms);
        if let Some(control) = self.control.as_mut().filter(|c| c.has_followers()) {
            let name = service.name();
            control.push_lines(self.registry, name, self.stream, lines, first_seq, ms);
        }
        if let Some((run, pattern)) = &io.pattern
            && *run == self.run
            && lines.iter().any(|text| text.contains(pattern.as_str()))
        {
            io.pattern = None;
            self.events.push(Event::Ready {
                service: self.service,
                run: self.run,
            });
        }
    }
}
