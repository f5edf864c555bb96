#!/usr/bin/env python3
"""Is each fast path worth its unsafe code? tend's build-time switches against
the default build, measured in one run, round-robin.

    python3 scripts/bench_variants.py            # builds the variants, ~5 minutes
    python3 scripts/bench_variants.py --quick    # fewer repetitions

Variants (stable musl release builds, into target/variants/NAME/):
  default       what ships: concurrent CLONE_VM batches, SSE2 newline scan
  serial_spawn  RUSTFLAGS="--cfg tend_serial_spawn": one clone(CLONE_VM|
                CLONE_VFORK) at a time, system calls through libc
  portable_scan RUSTFLAGS="--cfg tend_portable_scan": word-at-a-time safe scan

Workloads (bench.py's, tend only): startup of 100 and 1000 services and
restart latency (for the spawn path), and the 200 MB log (for the scan).
A fast path stays when it is at least 20% better on its workload than its
twin (issue 11); the report gives each ratio (variant / default, > 1 means
the default is faster).
"""

import argparse
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_probes  # noqa: E402,F401  (first: it and bench import each other)
import bench  # noqa: E402

VARIANTS = [("default", ""), ("serial_spawn", "--cfg tend_serial_spawn"),
            ("portable_scan", "--cfg tend_portable_scan")]


def build(name, cfg):
    target = os.path.join(bench.ROOT, "target", "variants", name)
    env = dict(os.environ, CARGO_TARGET_DIR=target, RUSTFLAGS=cfg)
    subprocess.run(["cargo", "build", "--release", "--locked", "--quiet",
                    "--target", "x86_64-unknown-linux-musl"], cwd=bench.ROOT, env=env, check=True)
    return os.path.join(target, "x86_64-unknown-linux-musl", "release", "tend")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    rounds = 2 if args.quick else 5
    binaries = {name: build(name, cfg) for name, cfg in VARIANTS}
    data_dir = bench.tempfile.mkdtemp(prefix=bench.TMP + "var-", dir=bench.log_base())
    data = os.path.join(data_dir, "lines.txt")
    count = bench.make_log_input(data, 50 if args.quick else 200)
    samples = {name: {"startup100": [], "startup1000": [], "restart": [], "log": []}
               for name in binaries}
    try:
        for r in range(rounds):
            for idx, (name, binary) in enumerate(binaries.items()):
                make = (lambda b: lambda d: bench.Tend(d, b))(binary)
                s = samples[name]
                s["startup100"].append(bench.startup(make, 100, idx, 1)["median_s"])
                s["startup1000"].append(bench.startup(make, 1000, idx, 1)["median_s"])
                s["restart"].append(bench.restart_latency(make, idx, 40)["median_ms"] / 1000)
                s["log"].append(bench.log_throughput(make, idx, data, count)["seconds"])
                print(f"round {r + 1}/{rounds} {name}: "
                      + ", ".join(f"{k} {v[-1] * 1000:.1f} ms" for k, v in s.items()),
                      flush=True)
    finally:
        bench.shutil.rmtree(data_dir, ignore_errors=True)
        for base in {"/tmp", bench.log_base()}:
            for d in os.listdir(base):
                if d.startswith(bench.TMP):
                    bench.shutil.rmtree(os.path.join(base, d), ignore_errors=True)
    medians = {name: {k: statistics.median(v) for k, v in s.items()}
               for name, s in samples.items()}
    base = medians["default"]
    print(f"\n{'median of ' + str(rounds) + ' rounds':22}" + "".join(
        f"{k:>14}" for k in base))
    for name, m in medians.items():
        print(f"{name:22}" + "".join(f"{v * 1000:11.1f} ms" for v in m.values()))
    for name, m in medians.items():
        if name == "default":
            continue
        print(f"{name:22}" + "".join(f"{m[k] / base[k]:13.2f}x" for k in base)
              + "   (variant / default)")


if __name__ == "__main__":
    main()
