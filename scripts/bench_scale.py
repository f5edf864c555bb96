"""The scale workload of scripts/bench.py (tend only): 1,000 and 10,000
services, side by side in one run, each against the spawn floor.

For each N: startup (tend launched until all N children have exec'ed, seen by
fanotify as in bench.py), RSS of tend with all N up, the latency of a status
request of every service (the server's: request written to the whole reply
read, on a raw socket; and the CLI's: `tend status --json` end to end, which
also reads and checks the config and prints the reply), and shutdown (SIGTERM
until every child is gone). Reported with the goals of issue 13: startup of
10,000 within 10x that of 1,000; RSS per further service (the growth from
1,000 to 10,000 over 9,000); the status of 10,000 within 50 ms.

The spawn floor says how much of a startup is the kernel's: a minimal C program
(`FLOOR_C`, built with `cc` at the start of the run) that `posix_spawn`s the
same N copies of the same binary with the same argv, stdio on /dev/null, each
in a new session, waiting for none of them; one spawning process per CPU, as
tend's batch spawn keeps both cores busy. It is timed the way tend is, from
launch until the watch has seen every exec, at both sizes in the same run, so
the report has floor 1,000, floor 10,000, the floor's ratio beside tend's, and
tend / floor at each size: when the floor's ratio grows as tend's does, the
superlinearity is the kernel's. The floor also reads its own clock around the
spawn loop: with the watch (how long after the last spawn returned the watch
saw it: the watch's lag) and without one (what watching costs the spawns).
With no `cc`, the floor rows are left out and the report says why. Beside
the wall clock, both report their CPU per service until all had exec'ed
(the spawner's and the children's, from /proc/PID/schedstat): a busy shared
machine stretches the wall clock far more than it changes that.

Startups are noisy on a shared machine, so they are taken in rounds (3; 1 in
--smoke): each round runs, for each size in turn, the floor watched, the
floor unwatched, and a tend that is stopped as soon as all are up. The table
shows medians; startup / floor is the median of each round's pair, so a busy
moment weighs on both sides of it. RSS, status and shutdown come from one
more tend per size after the rounds. The JSON keeps every sample
(`*_runs_*`).

The watch handles up to 20,000 events per run of a size, so it reads them in
large batches, and it fails loudly if the kernel's event queue overflowed
(16,384 events by default) rather than waiting for execs it will never see.

Each service holds two pipe fds in tend (stdout, stderr) with `output: log`;
10,000 of them need 20,000 fds. When the hard RLIMIT_NOFILE is lower (it is
20,000 on the machine this was written on, and only CAP_SYS_RESOURCE raises
it), both sizes run with `output: null`, and the report says so: then the
figures leave out the pipes and their buffers. The floor's children always
have /dev/null, as tend's have with `output: null`.

Python standard library only (plus `cc` for the floor); uses bench.py's
helpers. Run it alone with `python3 scripts/bench.py --scale-only`.
"""

import json
import os
import resource
import select
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import tempfile
import time

import bench

# `floor N WORKERS PROGRAM ARG`: WORKERS processes posix_spawn N copies of
# `PROGRAM ARG` between them (each in a new session, stdio on /dev/null, none
# waited for); prints the monotonic clock before the first spawn, after the
# last one returned, and how many were spawned. When its stdin reaches EOF,
# every worker SIGTERMs its copies and reaps them.
FLOOR_C = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct report { double done; long made; };

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void worker(long share, char **child, int out) {
    pid_t *pids = calloc(share ? share : 1, sizeof *pids);
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    posix_spawnattr_t attr;
    posix_spawn_file_actions_t stdio;
    if (!pids || null < 0 || posix_spawnattr_init(&attr)
        || posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID)
        || posix_spawn_file_actions_init(&stdio)
        || posix_spawn_file_actions_adddup2(&stdio, null, 0)
        || posix_spawn_file_actions_adddup2(&stdio, null, 1)
        || posix_spawn_file_actions_adddup2(&stdio, null, 2))
        _exit(1);
    struct report r = {0, 0};
    while (r.made < share
           && posix_spawn(&pids[r.made], child[0], &stdio, &attr, child, environ) == 0)
        r.made++;
    r.done = now();
    if (write(out, &r, sizeof r) != sizeof r) _exit(1);
    close(out);
    char c;
    while (read(0, &c, 1) > 0 || (errno == EINTR)) {}
    for (long i = 0; i < r.made; i++) kill(pids[i], SIGTERM);
    while (wait(NULL) > 0 || errno == EINTR) {}
    _exit(0);
}

int main(int argc, char **argv) {
    if (argc != 5) return 2;
    long n = atol(argv[1]), workers = atol(argv[2]);
    char *child[] = {argv[3], argv[4], NULL};
    int report[2];
    if (workers < 1 || pipe2(report, O_CLOEXEC) != 0) return 2;
    double start = now();
    for (long w = 0; w < workers; w++) {
        pid_t pid = fork();
        if (pid < 0) return 1;
        if (pid == 0) {
            close(report[0]);
            worker(n / workers + (w < n % workers), child, report[1]);
        }
    }
    close(report[1]);
    struct report r;
    double last = start;
    long made = 0;
    while (read(report[0], &r, sizeof r) == sizeof r) {
        made += r.made;
        if (r.done > last) last = r.done;
    }
    printf("%.6f %.6f %ld\n", start, last, made);
    fflush(stdout);
    while (wait(NULL) > 0 || errno == EINTR) {}
    return made == n ? 0 : 1;
}
"""

FAN_Q_OVERFLOW = 0x4000


def output_mode(n):
    """`log` when tend may hold every pipe, else `null` (see the module doc)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY or hard >= 2 * n + 256:
        return "log"
    return "null"


def build_floor():
    """The floor's binary, or None (with why) when there is no C compiler."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        return None, "no C compiler (cc)"
    folder = tempfile.mkdtemp(prefix=f"{bench.TMP}scalefloor-", dir="/tmp")
    source, binary = os.path.join(folder, "floor.c"), os.path.join(folder, "floor")
    with open(source, "w") as f:
        f.write(FLOOR_C)
    done = subprocess.run([cc, "-O2", "-o", binary, source], capture_output=True)
    if done.returncode != 0:
        return None, f"cc failed: {done.stderr.decode(errors='replace').strip()[:200]}"
    return binary, None


_WATCH = []


def watch_class():
    """`Watch`, made on first use: bench.py imports this module before its
    own `ExecWatch` exists."""
    if _WATCH:
        return _WATCH[0]

    class Watch(bench.ExecWatch):
        """bench.py's exec watch, reading 10,000 events in few large batches and
        failing when the kernel dropped some (its queue overflowed), instead of
        waiting for execs it will never report. `cpu_s` is the CPU this process
        spent in `wait` (taking the events in), which it took from the two cores."""

        BATCH = 1 << 20

        def __init__(self, binary, marker):
            super().__init__(binary, marker)
            self.cpu_s = 0.0

        def pump(self, timeout):
            if self.fd is None:
                return super().pump(timeout)
            ready, _, _ = select.select([self.fd], [], [], max(timeout, 0))
            if not ready:
                return
            while True:
                try:
                    data = os.read(self.fd, self.BATCH)
                except BlockingIOError:
                    return
                off, end = 0, len(data)
                alive, execs = self.alive, self.execs
                while off + 24 <= end:
                    length, _, _, _, mask, fd, pid = struct.unpack_from("=IBBHQii", data, off)
                    off += max(length, 24)
                    if fd >= 0:
                        os.close(fd)
                    if mask & FAN_Q_OVERFLOW:
                        raise bench.Failed("the fanotify queue overflowed: execs were not reported")
                    # Events of one pid may be merged: an exec always comes first.
                    if mask & self.FAN_OPEN_EXEC:
                        alive.add(pid)
                        execs.append(pid)
                    if mask & self.FAN_CLOSE_NOWRITE:
                        alive.discard(pid)

        def wait(self, predicate, timeout):
            cpu = time.process_time()
            try:
                return super().wait(predicate, timeout)
            finally:
                self.cpu_s += time.process_time() - cpu

    _WATCH.append(Watch)
    return Watch


def on_cpu_s(pids):
    """CPU time the processes have had (/proc/PID/schedstat, in ns: exact,
    where /proc/PID/stat counts whole ticks)."""
    total = 0
    for pid in pids:
        fields = bench.read(f"/proc/{pid}/schedstat").split()
        total += int(fields[0]) if fields else 0
    return total / 1e9


def private_sleep(marker):
    """A watched private copy of /bin/sleep (outside tmpfs, which may be noexec)."""
    bindir = tempfile.mkdtemp(prefix=f"{bench.TMP}scalebin-", dir="/tmp")
    child = os.path.join(bindir, "sleep")
    shutil.copy("/bin/sleep", child)
    return bindir, child, watch_class()(child, marker)


class Scale:
    """One tend with `n` sleeping services."""

    def __init__(self, tend, n, output, idx):
        self.tend, self.n = tend, n
        self.dir = tempfile.mkdtemp(prefix=f"{bench.TMP}scale-", dir="/tmp")
        marker = str(930000 + idx)
        self.bindir, self.child, self.watch = private_sleep(marker)
        self.config = os.path.join(self.dir, "tend.json")
        self.socket = os.path.join(self.dir, "t.sock")
        services = [{"name": f"s{i}", "command": [self.child, marker], "output": output}
                    for i in range(n)]
        with open(self.config, "w") as f:
            json.dump({"control_socket": self.socket, "log_level": "warn",
                       "services": services}, f)
        self.proc = None
        self.log = open(os.path.join(self.dir, "tend.log"), "wb")

    def start(self):
        t0 = time.monotonic()
        self.proc = subprocess.Popen([self.tend, "run", "-c", self.config],
                                     stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL,
                                     start_new_session=True, cwd=self.dir)
        if not self.watch.wait(lambda: len(self.watch.alive) >= self.n, 300):
            raise bench.Failed(f"scale {self.n}: only {len(self.watch.alive)} came up")
        return time.monotonic() - t0

    def rss_kib(self):
        return bench.status_field(self.proc.pid, "VmRSS")

    def raw_status(self):
        """Seconds from writing a status request to reading its whole reply."""
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(self.socket)
            t0 = time.perf_counter()
            s.sendall(b'{"cmd": "status"}\n')
            size = 0
            while True:
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                size += len(chunk)
            elapsed = time.perf_counter() - t0
        if size < 100 * self.n:
            raise bench.Failed(f"scale {self.n}: a status reply of {size} bytes")
        return elapsed

    def cli_status(self):
        t0 = time.perf_counter()
        done = subprocess.run([self.tend, "status", "--json", "-c", self.config],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        elapsed = time.perf_counter() - t0
        if done.returncode != 0 or done.stdout.count(b'"running"') < self.n:
            raise bench.Failed(f"scale {self.n}: tend status --json failed")
        return elapsed

    def stop(self):
        self.watch.pump(0)
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        gone = self.watch.wait(lambda: not self.watch.alive, 120)
        elapsed = time.monotonic() - t0
        if not gone:
            raise bench.Failed(f"scale {self.n}: children alive 120 s after SIGTERM")
        return elapsed

    def close(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
        if self.proc:
            self.proc.wait()
        self.log.close()
        self.watch.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        shutil.rmtree(self.bindir, ignore_errors=True)


class Floor:
    """The spawn floor (see FLOOR_C) with `n` copies of a private sleep,
    watched like tend's services, or unwatched (then only its own clock)."""

    def __init__(self, program, n, idx, watched=True):
        self.program, self.n = program, n
        self.marker = str(940000 + idx)
        self.bindir, self.child, self.watch = private_sleep(self.marker)
        if not watched:
            self.watch.close()
            self.watch = None
        self.proc = None

    def run(self):
        """{"startup_s" (launch until the watch saw every exec, when watched),
        "self_s" (the floor's own clock around its spawns), "lag_s" (from the
        last spawn's return until the watch saw it), "watch_cpu_s", "cpu_s"
        (the CPU of the spawners and of the copies so far)}."""
        workers = str(os.cpu_count() or 1)
        t0 = time.monotonic()
        self.proc = subprocess.Popen([self.program, str(self.n), workers, self.child,
                                      self.marker],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        out = {}
        if self.watch is not None:
            if not self.watch.wait(lambda: len(self.watch.alive) >= self.n, 300):
                raise bench.Failed(f"floor {self.n}: only {len(self.watch.alive)} came up")
            seen = time.monotonic()
            out.update(startup_s=seen - t0, watch_cpu_s=self.watch.cpu_s)
        fields = self.proc.stdout.readline().split()
        if len(fields) != 3 or int(fields[2]) != self.n:
            raise bench.Failed(f"floor {self.n}: spawned {fields[2:] or 'nothing'}")
        start, done = float(fields[0]), float(fields[1])
        out["self_s"] = done - start
        if self.watch is not None:
            out["lag_s"] = seen - done
            out["cpu_s"] = on_cpu_s(bench.children_of(self.proc.pid) + list(self.watch.alive))
        return out

    def close(self):
        """EOF on its stdin: the floor stops its copies and exits."""
        if self.proc:
            self.proc.stdin.close()
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            self.proc.stdout.close()
        if self.watch is not None:
            self.watch.close()
        shutil.rmtree(self.bindir, ignore_errors=True)


def floor_once(program, n, idx, watched):
    floor = Floor(program, n, idx, watched)
    try:
        return floor.run()
    finally:
        floor.close()


def tend_startup(tend, n, output, idx):
    """One startup of tend alone (then stopped): (seconds, the watch's CPU,
    the CPU of tend and its children so far)."""
    scale = Scale(tend, n, output, idx)
    try:
        up = scale.start()
        cpu = scale.watch.cpu_s
        spent = on_cpu_s([scale.proc.pid] + list(scale.watch.alive))
        scale.stop()
    finally:
        scale.close()
    return up, cpu, spent


def startup_rounds(tend, sizes, output, floor, rounds):
    """`rounds` rounds; in each, every size in turn: the floor watched, the
    floor unwatched, tend. Taken side by side so that what the rest of a
    shared machine does weighs on both alike; per size, lists of samples."""
    got = {n: {"startup_runs_s": [], "watch_cpu_runs_s": [], "cpu_runs_s": [],
               "floor_runs_s": [], "floor_self_runs_s": [], "watch_lag_runs_ms": [],
               "floor_watch_cpu_runs_s": [], "floor_cpu_runs_s": [],
               "floor_unwatched_runs_s": []} for n in sizes}
    for _ in range(rounds):
        for idx, n in enumerate(sizes):
            g = got[n]
            if floor:
                watched = floor_once(floor, n, idx, True)
                g["floor_runs_s"].append(watched["startup_s"])
                g["floor_self_runs_s"].append(watched["self_s"])
                g["watch_lag_runs_ms"].append(watched["lag_s"] * 1000)
                g["floor_watch_cpu_runs_s"].append(watched["watch_cpu_s"])
                g["floor_cpu_runs_s"].append(watched["cpu_s"])
                g["floor_unwatched_runs_s"].append(floor_once(floor, n, idx, False)["self_s"])
            up, cpu, spent = tend_startup(tend, n, output, idx)
            g["startup_runs_s"].append(up)
            g["watch_cpu_runs_s"].append(cpu)
            g["cpu_runs_s"].append(spent)
    return got


def summarize(runs, n):
    """Medians of the samples, and tend / floor: the median of each round's
    tend startup over the floor's of the same round. CPU per service: of the
    spawner (tend, or the floor's) and the children, until all had exec'ed;
    less sensitive to what else the machine runs than the wall clock."""
    med = statistics.median
    out = {"startup_s": med(runs["startup_runs_s"]), "watch_cpu_s": med(runs["watch_cpu_runs_s"]),
           "cpu_us_per_service": med(runs["cpu_runs_s"]) * 1e6 / n}
    if runs["floor_runs_s"]:
        out.update(floor_s=med(runs["floor_runs_s"]), floor_self_s=med(runs["floor_self_runs_s"]),
                   floor_unwatched_s=med(runs["floor_unwatched_runs_s"]),
                   watch_lag_ms=med(runs["watch_lag_runs_ms"]),
                   floor_watch_cpu_s=med(runs["floor_watch_cpu_runs_s"]),
                   floor_cpu_us_per_service=med(runs["floor_cpu_runs_s"]) * 1e6 / n,
                   tend_per_floor=med(t / f for t, f in zip(runs["startup_runs_s"],
                                                            runs["floor_runs_s"])))
    return out


def one_size(tend, n, output, idx, samples):
    """RSS, status and shutdown of one tend with `n` services."""
    scale = Scale(tend, n, output, idx)
    try:
        scale.start()
        time.sleep(1.0)  # lazy allocations settle, the log is written
        rss = scale.rss_kib()
        # The first request after start waits for a whole sweep of /proc
        # (there are no figures yet); the ones after it are what a user
        # polling `tend status` gets.
        scale.raw_status()
        raw, cli = [], []
        for _ in range(samples):
            time.sleep(0.3)
            raw.append(scale.raw_status())
            time.sleep(0.3)
            cli.append(scale.cli_status())
        down = scale.stop()
    finally:
        scale.close()
    return {"n": n, "output": output, "rss_kib": rss,
            "status_raw_ms": statistics.median(raw) * 1000,
            "status_raw_max_ms": max(raw) * 1000,
            "status_cli_ms": statistics.median(cli) * 1000,
            "shutdown_s": down}


def run(tend, sizes=(1000, 10000), samples=7, rounds=3):
    """{N: result} plus the goals' ratios under "goals" (and, without a C
    compiler, why the floor is missing under "floor_missing"). Startups are
    medians of `rounds` samples (see `startup_rounds`); the lists are kept
    under "*_runs_*"."""
    output = output_mode(max(sizes))
    floor, missing = build_floor()
    results = {}
    try:
        runs = startup_rounds(tend, sizes, output, floor, rounds)
    finally:
        if floor:
            shutil.rmtree(os.path.dirname(floor), ignore_errors=True)
    for idx, n in enumerate(sizes):
        results[n] = one_size(tend, n, output, idx, samples)
        results[n].update(summarize(runs[n], n))
        results[n].update({k: v for k, v in runs[n].items() if v})
    if missing:
        results["floor_missing"] = missing
    small, large = min(sizes), max(sizes)
    if small != large:
        a, b = results[small], results[large]
        results["goals"] = {
            "startup_ratio": b["startup_s"] / a["startup_s"],
            "per_service_bytes": (b["rss_kib"] - a["rss_kib"]) * 1024 / (large - small),
            "status_raw_ms": b["status_raw_ms"],
            "status_cli_ms": b["status_cli_ms"],
        }
        if floor:
            results["goals"].update(
                floor_ratio=b["floor_s"] / a["floor_s"],
                floor_unwatched_ratio=b["floor_unwatched_s"] / a["floor_unwatched_s"],
                tend_per_floor_growth=b["tend_per_floor"] / a["tend_per_floor"],
                cpu_growth=b["cpu_us_per_service"] / a["cpu_us_per_service"],
                floor_cpu_growth=b["floor_cpu_us_per_service"] / a["floor_cpu_us_per_service"])
    return results


def table(results):
    sizes = [k for k in results if isinstance(k, int)]
    lines = [f"{'scale (tend)':28}" + "".join(f"{n:>14,}" for n in sizes)]
    rows = [("output", "output", "{}"), ("startup (median)", "startup_s", "{:.2f} s"),
            ("startup, spawn floor", "floor_s", "{:.2f} s"),
            ("startup / floor (paired)", "tend_per_floor", "{:.2f}x"),
            ("floor, own clock", "floor_self_s", "{:.2f} s"),
            ("floor, own clock, unwatched", "floor_unwatched_s", "{:.2f} s"),
            ("watch lag after the floor", "watch_lag_ms", "{:.0f} ms"),
            ("watch CPU, tend / floor", "watch_cpu", "{}"),
            ("CPU per service, tend", "cpu_us_per_service", "{:.0f} us"),
            ("CPU per service, floor", "floor_cpu_us_per_service", "{:.0f} us"),
            ("RSS", "rss_kib", "{:,} KiB"), ("status, server (median)", "status_raw_ms", "{:.1f} ms"),
            ("status, server (worst)", "status_raw_max_ms", "{:.1f} ms"),
            ("status --json, CLI", "status_cli_ms", "{:.0f} ms"),
            ("shutdown", "shutdown_s", "{:.2f} s")]
    for label, key, form in rows:
        cells = []
        for n in sizes:
            r = results[n]
            if key == "watch_cpu":
                if "floor_watch_cpu_s" not in r:
                    cells = None
                    break
                cells.append(f"{r['watch_cpu_s']:.2f}/{r['floor_watch_cpu_s']:.2f} s")
            elif key not in r:
                cells = None
                break
            else:
                cells.append(form.format(r[key]))
        if cells is not None:
            lines.append(f"{label:28}" + "".join(f"{c:>14}" for c in cells))
    goals = results.get("goals")
    if goals:
        lines.append(f"startup {max(sizes):,} / {min(sizes):,}: {goals['startup_ratio']:.1f}x "
                     f"(goal <= 10x); RSS per further service: "
                     f"{goals['per_service_bytes']:.0f} bytes (goal <= 1024); status of "
                     f"{max(sizes):,}: server {goals['status_raw_ms']:.1f} ms, CLI "
                     f"{goals['status_cli_ms']:.0f} ms (goal <= 50 ms)")
        if "floor_ratio" in goals:
            lines.append(f"spawn floor {max(sizes):,} / {min(sizes):,}: "
                         f"{goals['floor_ratio']:.1f}x watched, "
                         f"{goals['floor_unwatched_ratio']:.1f}x by its own clock unwatched; "
                         f"startup / floor grew {goals['tend_per_floor_growth']:.2f}x "
                         f"from {min(sizes):,} to {max(sizes):,}; CPU per service grew "
                         f"{goals['cpu_growth']:.2f}x (tend), {goals['floor_cpu_growth']:.2f}x "
                         f"(floor)")
    if "floor_missing" in results:
        lines.append(f"(spawn floor left out: {results['floor_missing']})")
    return "\n".join(lines)
