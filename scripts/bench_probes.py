"""The probes workload of scripts/bench.py: N services, each with an http
liveness check every second against one local server (nginx when installed,
else a Python server), for tend and for Horust (the only peer with http
health checks: `[healthiness] http-endpoint`, a HEAD request per check from a
thread per service, about every second).

Per supervisor and N it reports, over a window of steady checking:
  cpu_per_1000   CPU time (utime+stime of every supervisor process, all its
                 threads) per 1000 checks the server answered (access log)
  probes_s       checks per second the server saw
  wakeups_s      voluntary context switches per second, summed over every
                 thread: how often the supervisor went to sleep
  rss_kib        RSS with checks, and rss_plain_kib the same N without checks:
                 their difference / N is what a probing service costs

Python standard library only; uses bench.py's supervisors and helpers.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

import bench

HTTP_SERVER = r"""
import http.server, sys
port, log = int(sys.argv[1]), open(sys.argv[2], "a", buffering=1)
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")
        log.write("200\n")
    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        log.write("200\n")
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer.request_queue_size = 1024
http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""


class Server:
    """One local http server answering 200 on /healthz, counting requests."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tb-srv-", dir="/tmp")
        self.log = os.path.join(self.dir, "access.log")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/healthz"
        nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
        if nginx:
            self.kind = "nginx"
            conf = os.path.join(self.dir, "nginx.conf")
            d = self.dir
            user = "user root root;" if os.geteuid() == 0 else ""
            with open(conf, "w") as f:
                f.write(f"""daemon off; worker_processes 1; {user}
pid {d}/nginx.pid; error_log {d}/error.log;
events {{ worker_connections 4096; }}
http {{
  log_format probe '$status'; access_log {self.log} probe;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  server {{ listen 127.0.0.1:{self.port} backlog=4096;
    location = /healthz {{ return 200 "ok\\n"; }} }}
}}
""")
            argv = [nginx, "-p", d, "-c", conf, "-e", os.path.join(d, "error.log")]
        else:
            self.kind = "python"
            script = os.path.join(self.dir, "server.py")
            with open(script, "w") as f:
                f.write(HTTP_SERVER)
            argv = [sys.executable, script, str(self.port), self.log]
        open(self.log, "w").close()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        if not bench.wait_for(self.listening, 10, poll=0.02):
            self.stop()
            raise bench.Failed(f"the {self.kind} server did not start")

    def listening(self):
        import socket
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def answered(self):
        """Requests answered so far, and how many of them were not 200."""
        with open(self.log, "rb") as f:
            lines = f.read().split()
        return len(lines), sum(1 for s in lines if s != b"200")

    def stop(self):
        try:
            os.killpg(self.proc.pid, 9)
        except OSError:
            pass
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class TendProbing(bench.Tend):
    url = None

    def setup(self, services, log_service=None):
        super().setup(services, log_service)
        if not self.url:
            return
        path = os.path.join(self.dir, "tend.json")
        with open(path) as f:
            config = bench.json.load(f)
        for entry in config["services"]:
            entry["liveness"] = {"type": "http", "url": self.url, "interval": "1s"}
        with open(path, "w") as f:
            bench.json.dump(config, f)


class HorustProbing(bench.Horust):
    url = None

    def write(self, name, argv, strategy, stdout=None):
        super().write(name, argv, strategy, stdout)
        if self.url:
            with open(os.path.join(self.services, name + ".toml"), "a") as f:
                f.write(f'[healthiness]\nhttp-endpoint = "{self.url}"\nmax-failed = 3\n')


def all_tasks_field(pids, name):
    """A /proc status field summed over every thread of these processes."""
    total = 0
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        total += sum(bench.status_field(f"{pid}/task/{tid}", name) for tid in tids)
    return total


def one(make, url, n, idx, warmup, window):
    """Up with n services (checking `url` when set), then measure a window."""
    marker = str(960000 + idx)
    sup = bench.fresh(make, "pr")
    sup.url = url
    sup.setup(bench.sleepers(sup, n, marker))
    try:
        bench.up(sup, n, timeout=300)
        time.sleep(warmup)
        pids = sup.supervisor_pids()
        return sup, pids, measure(sup, pids, window)
    finally:
        bench.down(sup)


def measure(sup, pids, window):
    ticks0 = sum(bench.cpu_ticks(p) for p in pids)
    ctx0 = all_tasks_field(pids, "voluntary_ctxt_switches")
    seen0 = SERVER.answered() if SERVER else (0, 0)
    t0 = time.monotonic()
    time.sleep(window)
    elapsed = time.monotonic() - t0
    ticks1 = sum(bench.cpu_ticks(p) for p in pids)
    ctx1 = all_tasks_field(pids, "voluntary_ctxt_switches")
    seen1 = SERVER.answered() if SERVER else (0, 0)
    rss = sum(bench.status_field(p, "VmRSS") for p in pids)
    hz = os.sysconf("SC_CLK_TCK")
    return {"cpu_ms": (ticks1 - ticks0) * 1000 / hz, "wakeups": ctx1 - ctx0,
            "probes": seen1[0] - seen0[0], "not_200": seen1[1] - seen0[1],
            "seconds": elapsed, "rss_kib": rss}


SERVER = None


def run(chosen, plan):
    """The workload for tend and Horust among `chosen` [(name, make)]."""
    global SERVER
    makers = {"tend": None, "horust": HorustProbing}
    results = {}
    sizes = plan["probe_n"]
    for idx, (name, make) in enumerate(chosen):
        if name not in makers:
            continue
        wrap = makers[name]
        if name == "tend":
            binary = make(tempfile.gettempdir()).binary
            wrap = lambda d, b=binary: TendProbing(d, b)
        print(f"- probes: {name}", file=sys.stderr)
        out = {}
        for n in sizes:
            try:
                SERVER = Server()
                try:
                    phase = "without checks"
                    _, _, plain = one(wrap, None, n, idx * 10 + 1, 1.0, 1.0)
                    phase = "with checks"
                    _, _, m = one(wrap, SERVER.url, n, idx * 10 + 2, plan["probe_warmup"],
                                  plan["probe_window"])
                except bench.Failed as e:
                    raise bench.Failed(f"{phase}: {e}") from e
                finally:
                    SERVER.stop()
                    SERVER = None
                m["rss_plain_kib"] = plain["rss_kib"]
                out[n] = summarize(m, n)
            except bench.Failed as e:
                out[n] = {"error": str(e)}
                print(f"  {name}: probes {n} failed: {e}", file=sys.stderr)
        results[name] = out
    return results


def summarize(m, n):
    probes = max(m["probes"], 1)
    return {"services": n, "probes_s": m["probes"] / m["seconds"],
            "cpu_per_1000_ms": m["cpu_ms"] * 1000 / probes,
            "wakeups_s": m["wakeups"] / m["seconds"], "not_200": m["not_200"],
            "rss_kib": m["rss_kib"], "rss_plain_kib": m["rss_plain_kib"],
            "rss_per_probing_kib": (m["rss_kib"] - m["rss_plain_kib"]) / n, "raw": m}


def table(results):
    head = ["probes workload", "services", "checks/s", "CPU ms/1000 checks", "wakeups/s",
            "RSS KiB", "RSS/probing svc KiB", "non-200"]
    rows = []
    for name, by_n in results.items():
        for n, r in by_n.items():
            if "error" in r:
                rows.append([name, str(n), r["error"][:40], "", "", "", "", ""])
                continue
            rows.append([name, str(n), f"{r['probes_s']:.0f}", f"{r['cpu_per_1000_ms']:.1f}",
                         f"{r['wakeups_s']:.0f}", str(r["rss_kib"]),
                         f"{r['rss_per_probing_kib']:.2f}", str(r["not_200"])])
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in [head] + rows)
