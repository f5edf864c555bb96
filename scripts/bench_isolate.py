"""The isolation workload of scripts/bench.py (tend only): what `isolate`,
the scheduling settings and `sha256` add to a spawn.

Spawn latency is measured as bench.py measures restart latency: SIGKILL the
service's process and time until its replacement has exec'ed (fanotify sees
the exec of a private copy of /bin/sleep). One tend per variant, all up at
once; the samples are taken round-robin, one variant after the other, so a
shared machine's drifting speed touches every variant alike. Each variant is
reported as its median and p90 and as the ratio of its median to the median
without any of them ("off").

Namespaces need root; without it those variants are skipped and say so.
The private binary lives under target/, not /tmp: `isolate.tmp` hides /tmp.

Python standard library only; uses bench.py's helpers. Run it alone with
`python3 scripts/bench.py --isolate-only`.
"""

import hashlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import bench


def variants():
    """(label, extra service fields, needs root) in the order reported."""
    cpus = list(range(os.cpu_count() or 1))
    everything = {"network": True, "tmp": True, "ipc": True, "hostname": "bench"}
    return [
        ("off", {}, False),
        ("isolate.network", {"isolate": {"network": True}}, True),
        ("isolate.tmp", {"isolate": {"tmp": True}}, True),
        ("isolate.ipc", {"isolate": {"ipc": True}}, True),
        ("isolate.hostname", {"isolate": {"hostname": "bench"}}, True),
        ("isolate, all four", {"isolate": everything}, True),
        ("nice+io_priority+oom_score_adj+cpu_affinity",
         {"nice": 5, "io_priority": {"class": "best-effort", "level": 5},
          "oom_score_adj": 100, "cpu_affinity": cpus}, False),
        # The same four system calls with the values a child has anyway:
        # what applying them costs, without a niced child that then gets
        # less of a busy CPU on its way to exec (the row above).
        ("the same four, at their defaults",
         {"nice": 0, "io_priority": {"class": "best-effort", "level": 4},
          "oom_score_adj": 0, "cpu_affinity": cpus}, False),
        ("nice 0 alone", {"nice": 0}, False),
        ("io_priority best-effort 4 alone",
         {"io_priority": {"class": "best-effort", "level": 4}}, False),
        ("oom_score_adj 0 alone", {"oom_score_adj": 0}, False),
        ("cpu_affinity all CPUs alone", {"cpu_affinity": cpus}, False),
        ("sha256 (digest known)", {"sha256": None}, False),
    ]


def under_private_tmp(path):
    """Whether `path` is hidden inside a service with `isolate.tmp` (a
    private tmpfs on /tmp and /var/tmp)."""
    real = os.path.realpath(path)
    return any(real == t or real.startswith(t + "/") for t in ("/tmp", "/var/tmp"))


def binary_home():
    """Where the services' copies of `sleep` go: the checkout's target/, or,
    for a checkout under /tmp (which `isolate.tmp` hides from the service),
    ~/.cache/tend-bench."""
    home = os.path.join(bench.ROOT, "target")
    if under_private_tmp(home):
        home = os.path.join(os.path.expanduser("~"), ".cache", "tend-bench")
    return home


class One:
    """One tend with one service of one variant, and the watch on its binary."""

    def __init__(self, tend, idx, label, fields):
        self.label = label
        self.dir = tempfile.mkdtemp(prefix=f"{bench.TMP}iso{idx}-", dir="/tmp")
        bindir = binary_home()
        os.makedirs(bindir, exist_ok=True)
        self.bindir = tempfile.mkdtemp(prefix=f"{bench.TMP}isobin{idx}-", dir=bindir)
        self.binary = os.path.join(self.bindir, "sleep")
        shutil.copy("/bin/sleep", self.binary)
        self.marker = str(960000 + idx)
        fields = dict(fields)
        if "sha256" in fields:
            with open(self.binary, "rb") as f:
                fields["sha256"] = hashlib.sha256(f.read()).hexdigest()
        service = {"name": "s", "command": [self.binary, self.marker], "retry_delay": 0,
                   "max_retries": 1000000, "retry_window": "1s", **fields}
        config = {"control_socket": os.path.join(self.dir, "t.sock"), "log_level": "warn",
                  "services": [service]}
        path = os.path.join(self.dir, "tend.json")
        with open(path, "w") as f:
            json.dump(config, f)
        self.watch = bench.ExecWatch(self.binary, self.marker)
        self.log = open(os.path.join(self.dir, "tend.log"), "wb")
        self.proc = subprocess.Popen([tend, "run", "-c", path], stdout=self.log,
                                     stderr=self.log, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        self.samples = []

    def wait_up(self):
        if not self.watch.wait(lambda: len(self.watch.execs) >= 1, 60):
            with open(os.path.join(self.dir, "tend.log"), errors="replace") as f:
                raise bench.Failed(f"{self.label}: never started: {f.read()[-500:]}")

    def sample(self):
        """Kill the current process; seconds until the next exec."""
        self.watch.pump(0)
        old = self.watch.execs[-1]
        seen = len(self.watch.execs)
        t0 = time.monotonic()
        os.kill(old, signal.SIGKILL)
        if not self.watch.wait(lambda: len(self.watch.execs) > seen, 30):
            raise bench.Failed(f"{self.label}: no replacement within 30 s")
        self.samples.append(time.monotonic() - t0)

    def close(self):
        try:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            self.proc.wait()
        self.log.close()
        self.watch.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        shutil.rmtree(self.bindir, ignore_errors=True)


def run(tend, reps):
    """Every variant this process may run; {label: result}."""
    root = os.geteuid() == 0
    chosen = [(label, fields) for label, fields, needs_root in variants()
              if root or not needs_root]
    skipped = [label for label, _, needs_root in variants() if needs_root and not root]
    ones = []
    results = {}
    try:
        for idx, (label, fields) in enumerate(chosen):
            ones.append(One(tend, idx, label, fields))
        for one in ones:
            one.wait_up()
        for _ in range(reps):
            for one in ones:
                time.sleep(0.02)  # let the last replacement settle
                one.sample()
    finally:
        for one in ones:
            one.close()
    base = None
    for one in ones:
        s = sorted(one.samples)
        if not s:
            continue
        median = statistics.median(s) * 1000
        p90 = s[min(len(s) - 1, int(round(0.9 * (len(s) - 1))))] * 1000
        if one.label == "off":
            base = median
        results[one.label] = {"median_ms": median, "p90_ms": p90, "reps": len(s),
                              "ratio": median / base if base else None}
    for label in skipped:
        results[label] = {"skipped": "needs root"}
    return results


def table(results):
    lines = [f"{'spawn latency (SIGKILL to next exec)':46} {'median':>9} {'p90':>9}  ratio"]
    for label, r in results.items():
        if "skipped" in r:
            lines.append(f"{label:46} {'-':>9} {'-':>9}  ({r['skipped']})")
            continue
        ratio = f"{r['ratio']:.2f}x" if r.get("ratio") else "-"
        lines.append(f"{label:46} {r['median_ms']:7.2f}ms {r['p90_ms']:7.2f}ms  {ratio}")
    return "\n".join(lines)

