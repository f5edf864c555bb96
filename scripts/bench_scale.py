"""The scale workload of scripts/bench.py (tend only): 1,000 and 10,000
services, side by side in one run.

For each N: startup (tend launched until all N children have exec'ed, seen by
fanotify as in bench.py), RSS of tend with all N up, the latency of a status
request of every service (the server's: request written to the whole reply
read, on a raw socket; and the CLI's: `tend status --json` end to end, which
also reads and checks the config and prints the reply), and shutdown (SIGTERM
until every child is gone). Reported with the goals of issue 13: startup of
10,000 within 10x that of 1,000; RSS per further service (the growth from
1,000 to 10,000 over 9,000); the status of 10,000 within 50 ms.

Each service holds two pipe fds in tend (stdout, stderr) with `output: log`;
10,000 of them need 20,000 fds. When the hard RLIMIT_NOFILE is lower (it is
20,000 on the machine this was written on, and only CAP_SYS_RESOURCE raises
it), both sizes run with `output: null`, and the report says so: then the
figures leave out the pipes and their buffers.

Python standard library only; uses bench.py's helpers. Run it alone with
`python3 scripts/bench.py --scale-only`.
"""

import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time

import bench


def output_mode(n):
    """`log` when tend may hold every pipe, else `null` (see the module doc)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY or hard >= 2 * n + 256:
        return "log"
    return "null"


class Scale:
    """One tend with `n` sleeping services."""

    def __init__(self, tend, n, output, idx):
        self.tend, self.n = tend, n
        self.dir = tempfile.mkdtemp(prefix=f"{bench.TMP}scale-", dir="/tmp")
        marker = str(930000 + idx)
        self.bindir = tempfile.mkdtemp(prefix=f"{bench.TMP}scalebin-", dir="/tmp")
        self.child = os.path.join(self.bindir, "sleep")
        shutil.copy("/bin/sleep", self.child)
        self.watch = bench.ExecWatch(self.child, marker)
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


def one_size(tend, n, output, idx, samples):
    scale = Scale(tend, n, output, idx)
    try:
        up = scale.start()
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
    return {"n": n, "output": output, "startup_s": up, "rss_kib": rss,
            "status_raw_ms": statistics.median(raw) * 1000,
            "status_raw_max_ms": max(raw) * 1000,
            "status_cli_ms": statistics.median(cli) * 1000,
            "shutdown_s": down}


def run(tend, sizes=(1000, 10000), samples=7):
    """{N: result} plus the goals' ratios under "goals"."""
    output = output_mode(max(sizes))
    results = {}
    for idx, n in enumerate(sizes):
        results[n] = one_size(tend, n, output, idx, samples)
    small, large = min(sizes), max(sizes)
    if small != large:
        a, b = results[small], results[large]
        results["goals"] = {
            "startup_ratio": b["startup_s"] / a["startup_s"],
            "per_service_bytes": (b["rss_kib"] - a["rss_kib"]) * 1024 / (large - small),
            "status_raw_ms": b["status_raw_ms"],
            "status_cli_ms": b["status_cli_ms"],
        }
    return results


def table(results):
    sizes = [k for k in results if k != "goals"]
    lines = [f"{'scale (tend)':28}" + "".join(f"{n:>14,}" for n in sizes)]
    rows = [("output", "output", "{}"), ("startup", "startup_s", "{:.2f} s"),
            ("RSS", "rss_kib", "{:,} KiB"), ("status, server (median)", "status_raw_ms", "{:.1f} ms"),
            ("status, server (worst)", "status_raw_max_ms", "{:.1f} ms"),
            ("status --json, CLI", "status_cli_ms", "{:.0f} ms"),
            ("shutdown", "shutdown_s", "{:.2f} s")]
    for label, key, form in rows:
        lines.append(f"{label:28}" + "".join(f"{form.format(results[n][key]):>14}" for n in sizes))
    goals = results.get("goals")
    if goals:
        lines.append(f"startup {max(sizes):,} / {min(sizes):,}: {goals['startup_ratio']:.1f}x "
                     f"(goal <= 10x); RSS per further service: "
                     f"{goals['per_service_bytes']:.0f} bytes (goal <= 1024); status of "
                     f"{max(sizes):,}: server {goals['status_raw_ms']:.1f} ms, CLI "
                     f"{goals['status_cli_ms']:.0f} ms (goal <= 50 ms)")
    return "\n".join(lines)
