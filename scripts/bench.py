#!/usr/bin/env python3
"""Benchmarks: tend side by side with the peers installed on this machine.

Every peer runs the same workload in the same run, so the ratios (peer / tend)
mean something even on a noisy machine. Python standard library only.

    python3 scripts/bench.py            # full run (under 15 minutes with every peer)
    python3 scripts/bench.py --quick    # fewer repetitions, under 3 minutes
    python3 scripts/bench.py --smoke    # tend alone, a few seconds; CI runs this

Workloads (N services each):
  footprint   RSS and PSS of all supervisor processes with N=100 and N=1000 up
  startup     launch until all N children are alive
  restart     SIGKILL one child until its replacement exists (min/median/p99)
  idle        CPU time and voluntary context switches over 10 s with N=100 up
  shutdown    signal until all N children (which honour SIGTERM) are gone
  log         one child writes 200 MB of 100-byte lines: until the last line is
              in the supervisor's log, against `cat` as the ceiling; every line
              is checked for count and order. tend also runs it in each
              log_format (text against its format floor, plain and json against
              cat), with a per-service `plain` log_file (against supervisord's
              and Horust's per-service files, which their `log` run already
              is), and with that file rotating every 10 MB
  metrics     tend only: GET /metrics with 1000 services up, sequential scrapes
              from connect to the server's close (median and p99)
  reexec      tend only: `tend reexec` with 1000 services up, from the request
              until the new process answers `status` (median and max; goal
              50 ms); every service must keep its pid
  probes      N=100 and N=1000 services with an http liveness check every 1 s
              against one local server: CPU per 1000 checks, wakeups, RSS per
              probing service (tend and Horust; see bench_probes.py)
  isolation   tend only: restart latency with each namespace of `isolate`,
              with the scheduling settings, and with a known `sha256`, as a
              ratio to none of them (namespaces need root; bench_isolate.py)
  scale       tend only: 1,000 and 10,000 services: startup, RSS, status of
              all (server and CLI), shutdown (bench_scale.py)

    python3 scripts/bench.py --log-only      # just the log workloads
    python3 scripts/bench.py --probes-only   # just the probes workload
    python3 scripts/bench.py --isolate-only  # just the isolation workload
    python3 scripts/bench.py --scale-only    # just the scale workload
"""

import argparse
import ctypes
import json
import os
import select
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

import bench_probes
import bench_isolate  # after bench_probes, which needs this module complete first
import bench_scale

HERE = os.path.dirname(os.path.abspath(__file__))
# Every temporary folder of this run starts with this, so that the clean-up at
# the end removes this run's folders and never those of another run going on.
TMP = f"tb{os.getpid()}-"
ROOT = os.path.dirname(HERE)
LINE_BYTES = 100


# ----- /proc helpers -------------------------------------------------------

def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def cmdline(pid):
    return read(f"/proc/{pid}/cmdline").split(b"\0")[:-1]


def all_pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def children_of(pid):
    """Direct children, from /proc/PID/task/*/children."""
    out = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        out += [int(x) for x in read(f"/proc/{pid}/task/{tid}/children").split()]
    return out


def marked(binary, marker):
    """Pids of live service children: `BINARY MARKER`."""
    want = [binary.encode(), marker.encode()]
    pids = []
    for pid in all_pids():
        if cmdline(pid) == want and not zombie(pid):
            pids.append(pid)
    return pids


def zombie(pid):
    stat = read(f"/proc/{pid}/stat")
    try:
        return stat.rsplit(b")", 1)[1].split()[0] == b"Z"
    except IndexError:
        return True


def status_field(pid, name):
    for line in read(f"/proc/{pid}/status").decode(errors="replace").splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    return 0


def pss_kib(pid):
    for line in read(f"/proc/{pid}/smaps_rollup").decode(errors="replace").splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return None


def cpu_ticks(pid):
    stat = read(f"/proc/{pid}/stat")
    try:
        fields = stat.rsplit(b")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (IndexError, ValueError):
        return 0


def wait_for(predicate, timeout, poll=0.0005):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    return None


class ExecWatch:
    """The children that exec one binary, as the kernel reports them.

    Each workload's services run a private copy of /bin/sleep. fanotify reports
    every exec of that file and every exit of a process running it, with the
    pid, the moment they happen, so the benchmark waits in `select` instead of
    scanning /proc in a loop (which on 2 cores would steal the CPU from the
    supervisor it is timing). Where fanotify is refused (not root, some
    containers), it falls back to polling /proc every millisecond.
    """

    FAN_CLOEXEC, FAN_NONBLOCK = 0x1, 0x2
    FAN_OPEN_EXEC, FAN_CLOSE_NOWRITE = 0x1000, 0x10

    def __init__(self, binary, marker):
        self.binary, self.marker = binary, marker
        self.alive = set()
        self.execs = []  # pids, in the order they exec'ed
        self.fd = self._fanotify(binary)

    @classmethod
    def _fanotify(cls, path):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.fanotify_mark.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint64,
                                           ctypes.c_int, ctypes.c_char_p]
            fd = libc.fanotify_init(cls.FAN_CLOEXEC | cls.FAN_NONBLOCK, os.O_RDONLY)
            if fd < 0:
                return None
            if libc.fanotify_mark(fd, 1, cls.FAN_OPEN_EXEC | cls.FAN_CLOSE_NOWRITE,
                                  -100, path.encode()) != 0:
                os.close(fd)
                return None
            return fd
        except (OSError, AttributeError):
            return None

    def pump(self, timeout):
        """Take in what happened, waiting up to `timeout` for something to."""
        if self.fd is None:
            time.sleep(min(timeout, 0.001))
            now = set(marked(self.binary, self.marker))
            self.execs += [p for p in now - self.alive]
            self.alive = now
            return
        ready, _, _ = select.select([self.fd], [], [], max(timeout, 0))
        if not ready:
            return
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return
            off = 0
            while off + 24 <= len(data):
                length, _, _, _, mask, fd, pid = struct.unpack_from("=IBBHQii", data, off)
                off += max(length, 24)
                if fd >= 0:
                    os.close(fd)
                # Events of one pid may be merged: an exec always comes first.
                if mask & self.FAN_OPEN_EXEC:
                    self.alive.add(pid)
                    self.execs.append(pid)
                if mask & self.FAN_CLOSE_NOWRITE:
                    self.alive.discard(pid)

    def wait(self, predicate, timeout):
        deadline = time.monotonic() + timeout
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.pump(min(left, 0.1))
        return True

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def child_binary(sup, marker):
    """A private copy of /bin/sleep for this run's services, watched. It lives
    under /tmp even when the workdir is on tmpfs, which may be noexec."""
    path = os.path.join(tempfile.mkdtemp(prefix=TMP + "bin-", dir="/tmp"), "sleep")
    shutil.copy("/bin/sleep", path)
    sup.watch = ExecWatch(path, marker)
    return path


# ----- supervisors ---------------------------------------------------------

class Supervisor:
    """One supervisor under test: writes its config, starts, stops, finds its
    own processes. Subclasses fill in the details."""

    name = "?"
    restart_gap = 0.05  # wait this long after a (re)start before the next kill

    def __init__(self, workdir):
        self.dir = workdir
        self.proc = None
        self.logfile = os.path.join(workdir, "supervisor.log")

    def available(self):
        return True

    def setup(self, services, log_service=None):
        raise NotImplementedError

    def start(self):
        self.log = open(self.logfile, "wb")
        self.proc = subprocess.Popen(
            self.argv(), stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL,
            start_new_session=True, cwd=self.dir)

    def supervisor_pids(self):
        return [self.proc.pid] if self.proc else []

    def stop_signal(self):
        return signal.SIGTERM

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(self.stop_signal())

    def kill(self):
        if self.proc:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            self.log.close()
            self.proc = None

    def captured_log(self):
        return self.logfile

    def binaries(self):
        return []


class Tend(Supervisor):
    name = "tend"

    def __init__(self, workdir, binary, log_format="text", service_file=False,
                 max_size=None):
        """`service_file`: the log service also writes a per-service log_file
        (then that file is what is timed, and tend's stderr goes to /dev/null,
        as supervisord and Horust send nothing but their own messages there);
        `max_size`: its rotation size (default: large enough never to rotate)."""
        super().__init__(workdir)
        self.binary = binary
        self.log_format = log_format
        self.service_file = os.path.join(workdir, "service.log") if service_file else None
        self.max_size = max_size

    def setup(self, services, log_service=None):
        entries = [{"name": n, "command": argv, "retry_delay": 0,
                    "max_retries": 1000000, "retry_window": "1s"}
                   for n, argv in services]
        if log_service:
            n, argv = log_service
            entry = {"name": n, "command": argv, "restart_policy": "never"}
            if self.service_file:
                # Every rotated file is kept, so every line can be checked.
                entry.update(log_file=self.service_file, log_keep=1000,
                             log_max_size=self.max_size or "1000G")
            entries.append(entry)
        config = {"control_socket": os.path.join(self.dir, "t.sock"),
                  "log_level": "info", "log_format": self.log_format, "services": entries}
        with open(os.path.join(self.dir, "tend.json"), "w") as f:
            json.dump(config, f)

    def start(self):
        if not self.service_file:
            return super().start()
        self.log = open(os.devnull, "wb")
        self.proc = subprocess.Popen(
            self.argv(), stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL,
            start_new_session=True, cwd=self.dir)

    def captured_log(self):
        if not self.service_file:
            return self.logfile
        # FILE.N (oldest) ... FILE.1, then FILE.
        rotated = []
        n = 1
        while os.path.exists(f"{self.service_file}.{n}"):
            rotated.append(f"{self.service_file}.{n}")
            n += 1
        return rotated[::-1] + [self.service_file]

    def argv(self):
        return [self.binary, "run", "-c", os.path.join(self.dir, "tend.json")]

    def binaries(self):
        return [self.binary]


class Supervisord(Supervisor):
    name = "supervisord"

    def available(self):
        return shutil.which("supervisord") is not None

    def setup(self, services, log_service=None):
        lines = ["[supervisord]", "nodaemon=true", f"logfile={self.dir}/supervisord.log",
                 f"pidfile={self.dir}/supervisord.pid", "loglevel=warn", ""]
        for n, argv in services:
            lines += [f"[program:{n}]", "command=" + " ".join(argv), "autorestart=true",
                      "startsecs=0", "startretries=1000000", "stopwaitsecs=10",
                      "stdout_logfile=NONE", "stderr_logfile=NONE", ""]
        if log_service:
            n, argv = log_service
            lines += [f"[program:{n}]", "command=" + " ".join(argv), "autorestart=false",
                      "startsecs=0", f"stdout_logfile={self.dir}/captured.log",
                      "stdout_logfile_maxbytes=0", "stdout_logfile_backups=0", ""]
        with open(os.path.join(self.dir, "supervisord.conf"), "w") as f:
            f.write("\n".join(lines))

    def argv(self):
        return ["supervisord", "-n", "-c", os.path.join(self.dir, "supervisord.conf")]

    def captured_log(self):
        return os.path.join(self.dir, "captured.log")

    def binaries(self):
        return [shutil.which("supervisord") or ""]


def write_run(folder, script):
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "run")
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + script + "\n")
    os.chmod(path, 0o755)


class Runit(Supervisor):
    name = "runit"
    restart_gap = 1.05  # runsv waits 1 s before restarting a run that lived < 1 s

    def available(self):
        return shutil.which("runsvdir") is not None and shutil.which("runsv") is not None

    def setup(self, services, log_service=None):
        self.sv = os.path.join(self.dir, "sv")
        for n, argv in services:
            write_run(os.path.join(self.sv, n), "exec " + " ".join(argv))
        if log_service:
            n, argv = log_service
            folder = os.path.join(self.sv, n)
            write_run(folder, "exec " + " ".join(argv))
            logdir = os.path.join(self.dir, "svlogd")
            os.makedirs(logdir, exist_ok=True)
            with open(os.path.join(logdir, "config"), "w") as f:
                f.write("s0\n")  # never rotate
            write_run(os.path.join(folder, "log"), f"exec svlogd {logdir}")
            self.captured = os.path.join(logdir, "current")

    def argv(self):
        return ["runsvdir", "-P", self.sv]

    def supervisor_pids(self):
        if not self.proc:
            return []
        kids = [p for p in children_of(self.proc.pid) if cmdline(p)[:1] == [b"runsv"]]
        return [self.proc.pid] + kids

    def stop_signal(self):
        return signal.SIGHUP  # runsvdir: TERM every runsv, which stops its service

    def captured_log(self):
        return self.captured

    def binaries(self):
        return [shutil.which("runsvdir") or "", shutil.which("runsv") or ""]


class S6(Supervisor):
    name = "s6"
    restart_gap = 1.05  # s6-supervise waits 1 s between spawns of a short run

    def available(self):
        return shutil.which("s6-svscan") is not None

    def setup(self, services, log_service=None):
        self.scan = os.path.join(self.dir, "scan")
        for n, argv in services:
            write_run(os.path.join(self.scan, n), "exec " + " ".join(argv))
        if log_service:
            n, argv = log_service
            folder = os.path.join(self.scan, n)
            write_run(folder, "exec " + " ".join(argv))
            logdir = os.path.join(self.dir, "s6log")
            write_run(os.path.join(folder, "log"), f"exec s6-log -b n2 s250000000 {logdir}")
            self.captured = logdir
        os.makedirs(self.scan, exist_ok=True)

    def argv(self):
        return ["s6-svscan", "-c", "4000", self.scan]

    def supervisor_pids(self):
        if not self.proc:
            return []
        kids = [p for p in children_of(self.proc.pid) if cmdline(p)[:1] == [b"s6-supervise"]]
        return [self.proc.pid] + kids

    def captured_log(self):
        # s6-log rotates at 100 MB: every archived file, oldest first, then current.
        try:
            files = sorted(f for f in os.listdir(self.captured) if f.startswith("@"))
        except OSError:
            files = []
        return [os.path.join(self.captured, f) for f in files] + [os.path.join(self.captured, "current")]

    def binaries(self):
        return [shutil.which("s6-svscan") or "", shutil.which("s6-supervise") or ""]


class Horust(Supervisor):
    name = "horust"

    def available(self):
        return shutil.which("horust") is not None

    def setup(self, services, log_service=None):
        self.services = os.path.join(self.dir, "services")
        os.makedirs(self.services, exist_ok=True)
        for n, argv in services:
            self.write(n, argv, "always")
        if log_service:
            n, argv = log_service
            self.write(n, argv, "never", stdout=os.path.join(self.dir, "captured.log"))

    def write(self, name, argv, strategy, stdout=None):
        text = f'command = "{" ".join(argv)}"\n'
        if stdout:
            text += f'stdout = "{stdout}"\n'
        text += f'[restart]\nstrategy = "{strategy}"\nbackoff = "0s"\nattempts = 0\n'
        text += '[termination]\nwait = "10s"\n'
        with open(os.path.join(self.services, name + ".toml"), "w") as f:
            f.write(text)

    def argv(self):
        return ["horust", "--services-path", self.services]

    def captured_log(self):
        return os.path.join(self.dir, "captured.log")

    def binaries(self):
        return [shutil.which("horust") or ""]


# ----- workloads -----------------------------------------------------------

class Failed(Exception):
    pass


def sleepers(sup, n, marker):
    binary = child_binary(sup, marker)
    return [(f"s{i}", [binary, marker]) for i in range(n)]


def log_base():
    """Where the log workload's files go: tmpfs when there is one, so that the
    disk's writeback of earlier runs does not land in the middle of a timing
    (seen here: the same run varying 2x with /tmp on ext4)."""
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK):
        return shm
    return "/tmp"


def fresh(make, tag, base="/tmp"):
    workdir = tempfile.mkdtemp(prefix=f"{TMP}{tag}-", dir=base)
    return make(workdir)


def up(sup, n, timeout=120):
    """Start and wait until n children have exec'ed; returns seconds taken."""
    watch = sup.watch
    t0 = time.monotonic()
    sup.start()
    if not watch.wait(lambda: len(watch.alive) >= n, timeout):
        raise Failed(f"{sup.name}: only {len(watch.alive)} of {n} services came up")
    return time.monotonic() - t0


def down(sup, timeout=60):
    """Stop and wait until every child is gone; returns seconds taken."""
    watch = sup.watch
    watch.pump(0)
    t0 = time.monotonic()
    sup.stop()
    gone = watch.wait(lambda: not watch.alive, timeout)
    elapsed = time.monotonic() - t0
    sup.kill()
    watch.close()
    if not gone:
        raise Failed(f"{sup.name}: children still alive after {timeout}s")
    return elapsed


def footprint(make, n, idx):
    marker = str(900000 + idx)
    sup = fresh(make, "fp")
    sup.setup(sleepers(sup, n, marker))
    try:
        up(sup, n)
        time.sleep(0.5)  # let lazy allocations settle
        pids = sup.supervisor_pids()
        rss = sum(status_field(p, "VmRSS") for p in pids)
        pss_values = [pss_kib(p) for p in pids]
        pss = sum(pss_values) if all(v is not None for v in pss_values) else None
        return {"rss_kib": rss, "pss_kib": pss, "processes": len(pids)}
    finally:
        down(sup)


def startup(make, n, idx, reps):
    times = []
    for r in range(reps):
        marker = str(910000 + idx * 100 + r)
        sup = fresh(make, "st")
        sup.setup(sleepers(sup, n, marker))
        try:
            times.append(up(sup, n))
        finally:
            down(sup)
    return {"median_s": statistics.median(times), "min_s": min(times)}


def restart_latency(make, idx, reps):
    marker = str(920000 + idx)
    sup = fresh(make, "rs")
    sup.setup(sleepers(sup, 1, marker))
    samples = []
    # Peers with a 1 s restart floor would take minutes for 100 samples; their
    # distribution is that floor, so 25 s of sampling (at least 20) is enough.
    budget = time.monotonic() + 25
    try:
        up(sup, 1)
        for _ in range(reps):
            if len(samples) >= 20 and time.monotonic() > budget:
                break
            time.sleep(sup.restart_gap)
            watch = sup.watch
            watch.pump(0)
            if len(watch.alive) != 1:
                raise Failed(f"{sup.name}: expected one child, found {watch.alive}")
            old = next(iter(watch.alive))
            seen = len(watch.execs)
            t0 = time.monotonic()
            os.kill(old, signal.SIGKILL)
            if not watch.wait(lambda: len(watch.execs) > seen, 30):
                raise Failed(f"{sup.name}: no replacement within 30s")
            samples.append(time.monotonic() - t0)
    finally:
        down(sup)
    samples.sort()
    p99 = samples[min(len(samples) - 1, int(round(0.99 * (len(samples) - 1))))]
    return {"min_ms": samples[0] * 1000, "median_ms": statistics.median(samples) * 1000,
            "p99_ms": p99 * 1000, "reps": len(samples)}


def idle_cost(make, idx, n, seconds):
    marker = str(930000 + idx)
    sup = fresh(make, "id")
    sup.setup(sleepers(sup, n, marker))
    try:
        up(sup, n)
        time.sleep(1.0)
        pids = sup.supervisor_pids()
        ticks0 = sum(cpu_ticks(p) for p in pids)
        ctx0 = sum(status_field(p, "voluntary_ctxt_switches") for p in pids)
        time.sleep(seconds)
        ticks1 = sum(cpu_ticks(p) for p in pids)
        ctx1 = sum(status_field(p, "voluntary_ctxt_switches") for p in pids)
        hz = os.sysconf("SC_CLK_TCK")
        return {"cpu_ms": (ticks1 - ticks0) * 1000 / hz, "wakeups": ctx1 - ctx0,
                "seconds": seconds}
    finally:
        down(sup)


def shutdown(make, n, idx, reps):
    times = []
    for r in range(reps):
        marker = str(940000 + idx * 100 + r)
        sup = fresh(make, "sd")
        sup.setup(sleepers(sup, n, marker))
        try:
            up(sup, n)
            time.sleep(0.3)
        except Failed:
            down(sup)
            raise
        times.append(down(sup))
    return {"median_s": statistics.median(times), "min_s": min(times)}


def http_get(port, path):
    """A tiny HTTP/1.1 client: (status, body) of one request, read until the
    server closes (tend answers with Connection: close)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  "Connection: close\r\n\r\n".encode())
        chunks = []
        while True:
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    data = b"".join(chunks)
    head, _, body = data.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        status = 0
    return status, body


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metrics_latency(make, idx, n, scrapes):
    """tend with n services up and metrics_address set: `scrapes` sequential
    GET /metrics, each timed from connect to the server's close."""
    marker = str(950000 + idx)
    sup = fresh(make, "mt")
    sup.setup(sleepers(sup, n, marker))
    port = free_port()
    path = os.path.join(sup.dir, "tend.json")
    with open(path) as f:
        config = json.load(f)
    config["metrics_address"] = f"127.0.0.1:{port}"
    with open(path, "w") as f:
        json.dump(config, f)
    samples = []
    try:
        up(sup, n)
        status, body = http_get(port, "/metrics")
        up_lines = body.count(b"\ntend_service_up{")
        if status != 200 or up_lines != n:
            raise Failed(f"scrape answered {status} with {up_lines} of {n} services")
        pids = sup.supervisor_pids()
        ticks0 = sum(cpu_ticks(p) for p in pids)
        for _ in range(scrapes):
            t0 = time.monotonic()
            status, body = http_get(port, "/metrics")
            samples.append(time.monotonic() - t0)
            if status != 200:
                raise Failed(f"scrape answered {status}")
        ticks = sum(cpu_ticks(p) for p in pids) - ticks0
    finally:
        down(sup)
    samples.sort()
    p99 = samples[min(len(samples) - 1, int(round(0.99 * (len(samples) - 1))))]
    return {"median_ms": statistics.median(samples) * 1000, "p99_ms": p99 * 1000,
            "scrapes": len(samples), "services": n, "bytes": len(body),
            "cpu_ms_per_scrape": ticks * 1000 / os.sysconf("SC_CLK_TCK") / len(samples)}


def control(path, request, timeout=30):
    """One request on tend's control socket; the first reply line, parsed."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall((json.dumps(request) + "\n").encode())
        buf = b""
        while b"\n" not in buf:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            buf += chunk
    return json.loads(buf.split(b"\n", 1)[0]) if buf.strip() else None


def reexec_latency(make, idx, n, reps):
    """tend with n services up: `reps` times `tend reexec`, each timed from
    the request until the new process has answered it and then `status`."""
    marker = str(960000 + idx)
    sup = fresh(make, "rx")
    sup.setup(sleepers(sup, n, marker))
    path = os.path.join(sup.dir, "t.sock")
    samples, answers = [], []

    def pids():
        reply = control(path, {"cmd": "status"})
        if not reply or not reply.get("ok"):
            raise Failed(f"status answered {reply}")
        return {s["name"]: s["pid"] for s in reply["services"]}

    try:
        up(sup, n)
        before = pids()
        if len(before) != n or None in before.values():
            raise Failed(f"{len(before)} services, not all with a pid")
        # What `status` of n services costs by itself (it reads their CPU
        # and memory from /proc), to tell it from the re-exec's share.
        alone = []
        for _ in range(5):
            t0 = time.monotonic()
            pids()
            alone.append(time.monotonic() - t0)
        for _ in range(reps):
            time.sleep(0.2)  # let the previous process settle
            t0 = time.monotonic()
            reply = control(path, {"cmd": "reexec"})
            t1 = time.monotonic()
            if not reply or not reply.get("ok"):
                raise Failed(f"reexec answered {reply}")
            now = pids()
            samples.append(time.monotonic() - t0)
            answers.append(t1 - t0)
            if now != before:
                raise Failed("a service changed its pid across the re-exec")
    finally:
        down(sup)
    return {"median_ms": statistics.median(samples) * 1000, "max_ms": max(samples) * 1000,
            "answer_median_ms": statistics.median(answers) * 1000,
            "status_alone_ms": statistics.median(alone) * 1000,
            "reexecs": len(samples), "services": n}


def make_log_input(path, megabytes):
    """Lines of exactly LINE_BYTES bytes: a sequence number, padding, newline."""
    count = megabytes * 1_000_000 // LINE_BYTES
    pad = "x" * LINE_BYTES
    with open(path, "w") as f:
        chunk = []
        for i in range(count):
            head = f"seq {i:09d} "
            chunk.append(head + pad[: LINE_BYTES - len(head) - 1] + "\n")
            if len(chunk) == 10000:
                f.write("".join(chunk))
                chunk = []
        f.write("".join(chunk))
    return count


def check_lines(paths, count):
    """Every `seq N` line once, in order; returns how many were found."""
    expect = 0
    for path in paths if isinstance(paths, list) else [paths]:
        with open(path, "rb") as f:
            for line in f:
                at = line.find(b"seq ")
                if at < 0:
                    continue
                n = int(line[at + 4: at + 13])
                if n != expect:
                    raise Failed(f"line {expect} expected, found {n} in {path}")
                expect += 1
    if expect != count:
        raise Failed(f"{expect} of {count} lines arrived")
    return expect


def log_throughput(make, idx, data, count):
    marker = str(950000 + idx)
    last = f"seq {count - 1:09d} ".encode()
    sup = fresh(make, "lg", log_base())
    binary = child_binary(sup, marker)
    # The writer: stream the file, then stay up so it is not restarted.
    writer = ["/bin/sh", "-c", f"'cat {data}; exec {binary} {marker}'"] \
        if isinstance(sup, (Supervisord, Runit, S6, Horust)) else \
        ["/bin/sh", "-c", f"cat {data}; exec {binary} {marker}"]
    sup.setup([], log_service=("writer", writer))
    os.sync()
    t0 = time.monotonic()
    try:
        sup.start()

        def arrived():
            target = sup.captured_log()
            files = target if isinstance(target, list) else [target]
            return ends_with_line(files[-1], last)
        if not wait_for(arrived, 600, poll=LOG_POLL):
            raise Failed(f"{sup.name}: the last line never arrived")
        elapsed = time.monotonic() - t0
        check_lines(sup.captured_log(), count)
        return {"seconds": elapsed, "prefix_bytes": prefix_bytes(sup.captured_log())}
    finally:
        down(sup)
        # Give the tmpfs memory back before the next timing.
        shutil.rmtree(sup.dir, ignore_errors=True)


LOG_POLL = 0.002  # how often the log workload looks for the last line


def prefix_bytes(paths):
    """How many bytes a supervisor's log puts before each line (0 for raw)."""
    first = paths[0] if isinstance(paths, list) else paths
    with open(first, "rb") as f:
        for line in f:
            at = line.find(b"seq 000000000 ")
            if at >= 0:
                return at
    return 0


# The format floor: `cat data | floor EXTRA OUT` copies the stream to OUT like
# `cat`, plus EXTRA bytes per line as a supervisor's prefix would, and does no
# other work (no line splitting, no copying in user space). It is started and
# ready before the clock starts, so its interpreter's start-up is not timed.
FLOOR = r"""
import os, sys
extra, out = int(sys.argv[1]), os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
buf = bytearray(262144)
view, pad = memoryview(buf), b"p" * (262144 * extra // %d + 1)
print("ready", flush=True)
while True:
    n = os.readv(0, [buf])
    if n == 0:
        break
    os.write(out, pad[: n * extra // %d])
    os.write(out, view[:n])
""" % (LINE_BYTES, LINE_BYTES)


def format_floor(data, count, extra):
    """Time a zero-work copy that writes `extra` more bytes per line, timed like
    `cat_ceiling`: the best any supervisor writing such a prefix can do here."""
    out = os.path.join(tempfile.mkdtemp(prefix=TMP + "floor-", dir=log_base()), "out")
    last = f"seq {count - 1:09d} ".encode()
    r, w = os.pipe()
    floor = subprocess.Popen([sys.executable, "-S", "-c", FLOOR, str(extra), out],
                             stdin=r, stdout=subprocess.PIPE)
    os.close(r)
    try:
        if floor.stdout.readline().strip() != b"ready":
            raise Failed("floor: did not start")
        os.sync()
        t0 = time.monotonic()
        writer = subprocess.Popen(["cat", data], stdout=w)
        os.close(w)
        w = None
        seen = wait_for(lambda: ends_with_line(out, last), 600, poll=LOG_POLL)
        elapsed = time.monotonic() - t0
        writer.wait()
        floor.wait()
    finally:
        if w is not None:
            os.close(w)
        floor.kill()
        shutil.rmtree(os.path.dirname(out), ignore_errors=True)
    if not seen:
        raise Failed("floor: the last line never arrived")
    return elapsed


def ends_with_line(path, last):
    """Whether `last` is in the last 4 KiB of `path`."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - 4096))
            return last in f.read()
    except OSError:
        return False


def cat_ceiling(data, count):
    """`cat data | cat > out`, timed like a supervisor: from launch until the
    last line is seen in `out` by the same polling, so the ceiling and the
    supervisors pay the same measuring cost."""
    out = os.path.join(tempfile.mkdtemp(prefix=TMP + "cat-", dir=log_base()), "out")
    last = f"seq {count - 1:09d} ".encode()
    os.sync()
    t0 = time.monotonic()
    proc = subprocess.Popen(["/bin/sh", "-c", f"cat {data} | cat > {out}"])
    seen = wait_for(lambda: ends_with_line(out, last), 600, poll=LOG_POLL)
    elapsed = time.monotonic() - t0
    proc.wait()
    shutil.rmtree(os.path.dirname(out), ignore_errors=True)
    if not seen:
        raise Failed("cat: the last line never arrived")
    return elapsed


# ----- report --------------------------------------------------------------

METRICS = [
    # key, label, unit, lower is better
    ("rss10", "RSS, 10 services", "KiB", True),
    ("start10", "startup, 10 services", "ms", True),
    ("rss100", "RSS, 100 services", "KiB", True),
    ("rss1000", "RSS, 1000 services", "KiB", True),
    ("per_service", "RSS per further service", "KiB", True),
    ("pss100", "PSS, 100 services", "KiB", True),
    ("binary", "binary size", "KiB", True),
    ("start100", "startup, 100 services", "ms", True),
    ("start1000", "startup, 1000 services", "ms", True),
    ("restart_med", "restart latency, median", "ms", True),
    ("restart_p99", "restart latency, p99", "ms", True),
    ("idle_wakeups", "idle wakeups / 10 s (100 svc)", "", True),
    ("idle_cpu", "idle CPU / 10 s (100 svc)", "ms", True),
    ("shutdown100", "shutdown, 100 services", "ms", True),
    ("log_pct", "log throughput, % of cat", "%", False),
    ("log_plain_pct", "log, plain format, % of cat", "%", False),
    ("log_json_pct", "log, json format, % of cat", "%", False),
    ("log_file_pct", "log, per-service file, % of cat", "%", False),
    ("log_rotate_pct", "log, file rotating at 10M, % of cat", "%", False),
    ("scrape_med", "GET /metrics, median", "ms", True),
    ("scrape_p99", "GET /metrics, p99", "ms", True),
    ("reexec_med", "tend reexec to status, median", "ms", True),
    ("reexec_max", "tend reexec to status, max", "ms", True),
]


def flatten(r):
    out = {}
    if "footprint10" in r:
        out["rss10"] = r["footprint10"]["rss_kib"]
    if "startup10" in r:
        out["start10"] = r["startup10"]["median_s"] * 1000
    if "footprint100" in r:
        out["rss100"] = r["footprint100"]["rss_kib"]
        out["pss100"] = r["footprint100"]["pss_kib"]
    if "footprint1000" in r:
        out["rss1000"] = r["footprint1000"]["rss_kib"]
    if "footprint100" in r and "footprint1000" in r:
        # What each further service costs: the slope between the two sizes.
        out["per_service"] = (r["footprint1000"]["rss_kib"] - r["footprint100"]["rss_kib"]) / 900
    if "binary_kib" in r:
        out["binary"] = r["binary_kib"]
    if "startup100" in r:
        out["start100"] = r["startup100"]["median_s"] * 1000
    if "startup1000" in r:
        out["start1000"] = r["startup1000"]["median_s"] * 1000
    if "restart" in r:
        out["restart_med"] = r["restart"]["median_ms"]
        out["restart_p99"] = r["restart"]["p99_ms"]
    if "idle" in r:
        scale = 10.0 / r["idle"]["seconds"]
        out["idle_wakeups"] = r["idle"]["wakeups"] * scale
        out["idle_cpu"] = r["idle"]["cpu_ms"] * scale
    if "shutdown100" in r:
        out["shutdown100"] = r["shutdown100"]["median_s"] * 1000
    for key in ("log", "log_plain", "log_json", "log_file", "log_rotate"):
        if key in r and "pct_of_cat" in r[key]:
            out[key + "_pct"] = r[key]["pct_of_cat"]
    if "metrics" in r:
        out["scrape_med"] = r["metrics"]["median_ms"]
        out["scrape_p99"] = r["metrics"]["p99_ms"]
    if "reexec" in r:
        out["reexec_med"] = r["reexec"]["median_ms"]
        out["reexec_max"] = r["reexec"]["max_ms"]
    return out


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if v >= 100:
        return f"{v:.0f}"
    return f"{v:.2f}" if v < 10 else f"{v:.1f}"


def table(results):
    names = list(results)
    flat = {n: flatten(results[n]) for n in names}
    head = ["metric"] + names
    rows = []
    for key, label, unit, lower in METRICS:
        if not any(key in flat[n] for n in names):
            continue
        base = flat.get("tend", {}).get(key)
        row = [f"{label} ({unit})" if unit else label]
        for n in names:
            v = flat[n].get(key)
            if v is None:
                cell = results[n].get("errors", {}).get(key, "-")
                row.append(cell if isinstance(cell, str) and len(cell) < 20 else "-")
                continue
            cell = fmt(v)
            if n != "tend" and base not in (None, 0) and v is not None:
                ratio = v / base if lower else base / v if v else float("inf")
                cell += f" ({ratio:.1f}x)"
            row.append(cell)
        rows.append(row)
    widths = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(head, widths))]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)


def svg(results, path):
    """One panel per metric, one bar per supervisor, value labels; hand-written SVG."""
    names = list(results)
    flat = {n: flatten(results[n]) for n in names}
    metrics = [m for m in METRICS if any(m[0] in flat[n] for n in names)]
    colors = {"tend": "#2b8a3e", "supervisord": "#1971c2", "runit": "#e67700",
              "s6": "#862e9c", "horust": "#c92a2a"}
    panel_h = 26 + 18 * len(names)
    width, label_w, bar_w = 760, 170, 430
    height = 40 + panel_h * len(metrics)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           '<text x="10" y="22" font-size="15" font-weight="bold">tend vs peers, same machine, '
           'same run (shorter bar is better, except log throughput)</text>']
    y = 40
    for key, label, unit, lower in metrics:
        values = [flat[n].get(key) for n in names]
        top = max([v for v in values if v] or [1])
        out.append(f'<text x="10" y="{y + 14}" font-weight="bold">{label}'
                   f'{" (" + unit + ")" if unit else ""}</text>')
        for i, (n, v) in enumerate(zip(names, values)):
            by = y + 22 + 18 * i
            out.append(f'<text x="{label_w - 8}" y="{by + 11}" text-anchor="end">{n}</text>')
            if v is None:
                out.append(f'<text x="{label_w}" y="{by + 11}" fill="#888">not measured</text>')
                continue
            w = max(1.0, bar_w * v / top) if top else 1.0
            out.append(f'<rect x="{label_w}" y="{by}" width="{w:.1f}" height="14" '
                       f'fill="{colors.get(n, "#555")}"/>')
            out.append(f'<text x="{label_w + w + 6:.1f}" y="{by + 11}">{fmt(v)}</text>')
        y += panel_h
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def log_goals(results):
    """tend's log figures as ratios against what each is measured by."""
    t = results.get("tend", {})
    lines = []

    def ratio(name, num, den, goal):
        if num and den:
            mark = "ok" if num / den >= goal else "below goal"
            lines.append(f"{name}: {100 * num / den:.0f}% (goal >= {100 * goal:.0f}%, {mark})")

    log = t.get("log", {})
    ratio("text vs its format floor", log.get("floor_s"), log.get("seconds"), 0.90)
    for key, label, goal in (("log_plain", "plain vs cat", 0.80),
                             ("log_json", "json vs cat", 0.0)):
        if key in t:
            pct = t[key]["pct_of_cat"]
            if goal:
                mark = "ok" if pct >= 100 * goal else "below goal"
                lines.append(f"{label}: {pct:.0f}% (goal >= {100 * goal:.0f}%, {mark})")
            else:
                lines.append(f"{label}: {pct:.0f}% (reported)")
    mine = t.get("log_file", {}).get("seconds")
    for peer in ("horust", "supervisord"):
        theirs = results.get(peer, {}).get("log_file", {}).get("seconds")
        ratio(f"per-service plain log_file vs {peer}'s (their time / tend's)", theirs, mine, 1.0)
    ratio("log_file rotating every 10 MB vs not rotating", mine,
          t.get("log_rotate", {}).get("seconds"), 0.80)
    return lines


# ----- main ----------------------------------------------------------------

def build_tend():
    binary = os.path.join(ROOT, "target", "release", "tend")
    if not os.path.exists(binary):
        subprocess.run(["cargo", "build", "--release"], cwd=ROOT, check=True)
    return binary


# tend's further log runs, (result key, factory), set by main(): each log_format
# on the main stream, and a per-service plain log_file without and with rotation.
TEND_LOG_VARIANTS = []


def tend_log_variants(binary):
    return [
        ("log_plain", lambda d: Tend(d, binary, log_format="plain")),
        ("log_json", lambda d: Tend(d, binary, log_format="json")),
        ("log_file", lambda d: Tend(d, binary, log_format="plain", service_file=True)),
        ("log_rotate", lambda d: Tend(d, binary, log_format="plain", service_file=True,
                                      max_size="10M")),
    ]


def run_one(sup_name, make, plan, data, count, idx, cat_runs):
    r, errors = {}, {}

    def attempt(key, fn):
        try:
            r[key] = fn()
        except Failed as e:
            errors[key] = str(e)
            print(f"  {sup_name}: {key} failed: {e}", file=sys.stderr)

    bins = [b for b in make(tempfile.gettempdir()).binaries() if b and os.path.exists(b)]
    r["binary_kib"] = sum(os.path.getsize(os.path.realpath(b)) for b in bins) / 1024
    print(f"- {sup_name}", file=sys.stderr)
    if not plan.get("log_only"):
        for n in plan["footprint"]:
            attempt(f"footprint{n}", lambda n=n: footprint(make, n, idx * 10 + n % 7))
        for n in plan["startup"]:
            reps = plan["startup_reps"] if n <= 100 else 1
            attempt(f"startup{n}",
                    lambda n=n, reps=reps: startup(make, n, idx * 10 + n % 7, reps))
        attempt("restart", lambda: restart_latency(make, idx, plan["restart_reps"]))
        attempt("idle",
                lambda: idle_cost(make, idx, 100 if not plan["smoke"] else 10, plan["idle_s"]))
        attempt("shutdown100",
                lambda: shutdown(make, plan["shutdown_n"], idx, plan["shutdown_reps"]))
    if data:
        def log():
            # A cat run before each supervisor run samples the ceiling across
            # the whole log phase (a shared VM's speed drifts); every supervisor
            # is then measured against the median of all of them (main), so the
            # ratios between supervisors depend on their own times alone.
            runs, floors, prefix = [], [], 0
            for _ in range(plan["log_reps"]):
                cat_runs.append(cat_ceiling(data, count))
                one = log_throughput(make, idx, data, count)
                runs.append(one["seconds"])
                prefix = one["prefix_bytes"]
                if sup_name == "tend" and prefix:
                    # What writing tend's prefix costs by itself, in the same
                    # stretch of time as tend's own runs.
                    floors.append(format_floor(data, count, prefix))
            out = {"seconds": statistics.median(runs), "runs_s": runs, "prefix_bytes": prefix}
            if floors:
                out.update(floor_s=statistics.median(floors), floor_runs_s=floors)
            return out
        attempt("log", log)
        if sup_name == "tend":
            for key, variant in TEND_LOG_VARIANTS:
                def one_variant(variant=variant):
                    runs = []
                    for _ in range(plan["log_reps"]):
                        cat_runs.append(cat_ceiling(data, count))
                        runs.append(log_throughput(variant, idx, data, count)["seconds"])
                    return {"seconds": statistics.median(runs), "runs_s": runs}
                attempt(key, one_variant)
        elif "log" in r and sup_name in ("supervisord", "horust"):
            # Their `log` run is already a per-service file (supervisord's
            # stdout_logfile, Horust's stdout = FILE): the same setup.
            r["log_file"] = dict(r["log"])
    if sup_name == "tend" and plan.get("metrics_n"):
        attempt("metrics", lambda: metrics_latency(make, idx, plan["metrics_n"],
                                                   plan["metrics_scrapes"]))
    if sup_name == "tend" and plan.get("reexec_n") and not plan.get("log_only"):
        attempt("reexec", lambda: reexec_latency(make, idx, plan["reexec_n"],
                                                 plan["reexec_reps"]))
    if errors:
        r["errors"] = errors
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="fewer repetitions (under 3 minutes)")
    mode.add_argument("--smoke", action="store_true", help="tend alone, tiny sizes (CI)")
    ap.add_argument("--tend", help="tend binary (default: target/release/tend, built if missing)")
    ap.add_argument("--only", help="comma-separated supervisors to run (default: all installed)")
    ap.add_argument("--log-only", action="store_true", help="only the log workloads")
    ap.add_argument("--probes-only", action="store_true", help="run only the probes workload")
    ap.add_argument("--isolate-only", action="store_true",
                    help="run only the isolation workload")
    ap.add_argument("--scale-only", action="store_true",
                    help="run only the scale workload (1,000 and 10,000 services)")
    ap.add_argument("--json", default=os.path.join(ROOT, "bench-results.json"))
    ap.add_argument("--svg", help="chart path (default: docs/bench.svg for a full run, "
                    "which README shows; bench-results.svg otherwise)")
    args = ap.parse_args()
    if args.svg is None:
        args.svg = os.path.join(ROOT, "docs", "bench.svg") \
            if not (args.quick or args.smoke or args.log_only or args.isolate_only
                    or args.scale_only) \
            else os.path.join(ROOT, "bench-results.svg")

    binary = os.path.abspath(args.tend) if args.tend else build_tend()
    if args.smoke:
        plan = dict(footprint=[10], startup=[10], startup_reps=1, restart_reps=5, idle_s=1,
                    shutdown_n=10, shutdown_reps=1, log_mb=2, log_reps=1, smoke=True,
                    metrics_n=10, metrics_scrapes=20, probe_n=[10], probe_warmup=2.5,
                    probe_window=2, reexec_n=10, reexec_reps=3)
    elif args.quick:
        plan = dict(footprint=[100], startup=[100], startup_reps=2, restart_reps=15, idle_s=3,
                    shutdown_n=100, shutdown_reps=2, log_mb=50, log_reps=1, smoke=False,
                    metrics_n=1000, metrics_scrapes=100, probe_n=[100], probe_warmup=3,
                    probe_window=5, reexec_n=1000, reexec_reps=5)
    else:
        plan = dict(footprint=[100, 1000], startup=[100, 1000], startup_reps=5, restart_reps=100,
                    idle_s=10, shutdown_n=100, shutdown_reps=5, log_mb=200, log_reps=5,
                    smoke=False, metrics_n=1000, metrics_scrapes=200, probe_n=[100, 1000],
                    probe_warmup=3, probe_window=15, reexec_n=1000, reexec_reps=20)

    plan["log_only"] = args.log_only
    plan["isolate_reps"] = 5 if args.smoke else 30 if args.quick else 100
    plan["scale"] = (10, 50) if args.smoke else None if args.quick else (1000, 10000)
    only_one = args.probes_only or args.isolate_only or args.scale_only
    TEND_LOG_VARIANTS[:] = tend_log_variants(binary)
    candidates = [
        ("tend", lambda d: Tend(d, binary)),
        ("supervisord", Supervisord),
        ("runit", Runit),
        ("s6", S6),
        ("horust", Horust),
    ]
    if args.smoke:
        candidates = candidates[:1]
    if args.only:
        keep = args.only.split(",")
        candidates = [c for c in candidates if c[0] in keep]
    chosen = []
    for name, make in candidates:
        if make(tempfile.gettempdir()).available():
            chosen.append((name, make))
        else:
            print(f"note: {name} is not installed; skipped (scripts/install-peers.sh installs it)",
                  file=sys.stderr)

    if only_one:
        plan["log_mb"] = 0
    datadir = tempfile.mkdtemp(prefix=TMP + "data-", dir=log_base())
    data = os.path.join(datadir, "lines.txt")
    count = make_log_input(data, plan["log_mb"])
    cat_runs = [cat_ceiling(data, count) for _ in range(3)] if count else [1.0]
    results, probes, isolation, scale = {}, {}, {}, {}
    with_tend = any(name == "tend" for name, _ in chosen)
    t0 = time.monotonic()
    try:
        for idx, (name, make) in enumerate(chosen):
            if not only_one:
                results[name] = run_one(name, make, plan, data, count, idx, cat_runs)
        if not (args.isolate_only or args.scale_only):
            probes = bench_probes.run(chosen, plan)
        if with_tend and not (args.probes_only or args.log_only or args.scale_only):
            try:
                isolation = bench_isolate.run(binary, plan["isolate_reps"])
            except Failed as e:
                isolation = {"error": str(e)}
                print(f"  tend: isolation failed: {e}", file=sys.stderr)
        if with_tend and plan["scale"] and (args.scale_only or not only_one) \
                and not args.log_only:
            try:
                scale = bench_scale.run(binary, plan["scale"], 1 if args.smoke else 7,
                                        1 if args.smoke else 3)
            except Failed as e:
                scale = {"error": str(e)}
                print(f"  tend: scale failed: {e}", file=sys.stderr)
    finally:
        shutil.rmtree(datadir, ignore_errors=True)
        for base in {"/tmp", log_base()}:
            for d in os.listdir(base):
                if d.startswith(TMP):
                    shutil.rmtree(os.path.join(base, d), ignore_errors=True)

    ceiling = statistics.median(cat_runs)
    for r in results.values():
        for key in ("log", "log_plain", "log_json", "log_file", "log_rotate"):
            if key in r:
                r[key]["pct_of_cat"] = 100.0 * ceiling / r[key]["seconds"]
        if "log" in r and "floor_s" in r["log"]:
            r["log"]["floor_pct_of_cat"] = 100.0 * ceiling / r["log"]["floor_s"]
    meta = {"mode": "smoke" if args.smoke else "quick" if args.quick else "full",
            "cpus": os.cpu_count(), "kernel": os.uname().release,
            "log_mb": plan["log_mb"], "cat_ceiling_s": ceiling, "cat_runs_s": cat_runs,
            "elapsed_s": time.monotonic() - t0}
    print()
    if results:
        print(table(results))
    if probes:
        print()
        print(bench_probes.table(probes))
        print("(probes: CPU is utime+stime over the window; wakeups are voluntary context "
              "switches of every thread; the machine is shared, so treat them as rough)")
    if isolation and "error" not in isolation:
        print()
        print(bench_isolate.table(isolation))
        print("(isolation: medians of samples taken round-robin across the variants; ratio = "
              "variant / off; the machine is shared, so treat small differences as noise)")
    if scale and "error" not in scale:
        print()
        print(bench_scale.table(scale))
        if any(r.get("output") == "null" for k, r in scale.items() if isinstance(k, int)):
            print("(scale: output null for both sizes: the hard RLIMIT_NOFILE cannot hold "
                  "two pipes per service at the larger size)")
    through_cat = f"{plan['log_mb']} MB log through cat in {ceiling * 1000:.0f} ms, " \
        if count else ""
    print(f"\n({meta['mode']} run, {meta['cpus']} CPUs, kernel {meta['kernel']}, "
          f"{through_cat}took {meta['elapsed_s']:.0f} s; ratios are peer / tend, "
          f"higher = tend better)")
    tend_log = results.get("tend", {}).get("log", {})
    if "floor_pct_of_cat" in tend_log:
        print(f"log format floor: tend puts {tend_log['prefix_bytes']} bytes before each "
              f"{LINE_BYTES}-byte line; a process that only copies the stream and writes "
              f"those bytes too reaches {tend_log['floor_pct_of_cat']:.1f}% of cat; tend "
              f"reaches {tend_log['pct_of_cat']:.1f}% "
              f"({100 * tend_log['floor_s'] / tend_log['seconds']:.0f}% of that floor)")
    scrape = results.get("tend", {}).get("metrics")
    if scrape:
        print(f"GET /metrics: {scrape['services']} services up, {scrape['bytes']} bytes per "
              f"scrape, {scrape['scrapes']} sequential scrapes, "
              f"{scrape['cpu_ms_per_scrape']:.1f} ms of tend's CPU each")
    rx = results.get("tend", {}).get("reexec")
    if rx:
        print(f"tend reexec: {rx['services']} services up, {rx['reexecs']} re-execs, every pid "
              f"kept; the new process answered the request {rx['answer_median_ms']:.0f} ms and "
              f"`status` {rx['median_ms']:.0f} ms after it was sent (medians; max "
              f"{rx['max_ms']:.0f} ms; goal: at most 50 ms); `status` alone takes "
              f"{rx['status_alone_ms']:.0f} ms")
    goals = log_goals(results) if not args.smoke else []  # 2 MB measures start-up
    if goals:
        print("\nlog goals (ratios of times in this run; a shared machine is noisy):")
        for line in goals:
            print("  " + line)
    if not args.smoke:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "results": results, "probes": probes,
                       "isolation": isolation,
                       "scale": {str(k): v for k, v in scale.items()}}, f, indent=2)
        os.makedirs(os.path.dirname(args.svg), exist_ok=True)
        if results:
            svg(results, args.svg)
        print(f"wrote {args.json} and {args.svg}")
    failed = [n for n, r in results.items() if r.get("errors")]
    tend_probes = probes.get("tend", {}).values()
    if "tend" in results and results["tend"].get("errors") or "error" in isolation or \
            any("error" in r or r["not_200"] for r in tend_probes):
        print("tend failed a measurement", file=sys.stderr)
        return 1
    if failed:
        print(f"peers with failed measurements: {', '.join(failed)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
