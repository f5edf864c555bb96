#!/bin/sh
# Install the supervisors scripts/bench.py compares tend against, from the
# package registries: supervisord, runit and s6 from Debian, Horust from crates.io;
# nginx and redis from Debian, the servers of the probe tests;
# grpcio's health server from PyPI, the real peer of the grpc probe's tests
# (tests/integration/grpc_codec.rs skips without it); strace, which
# tests/integration/launch.rs watches tend's restarts with (it skips without it);
# and Prometheus from Debian (`prometheus` and `promtool`), the real peer of the
# metrics endpoint's tests (tests/integration/metrics.rs skips without them). On
# a host with systemd, Debian's package also enables a prometheus service on :9090;
# and logrotate (Debian), which the log file tests run against tend.
# Idempotent: what is already installed is skipped. Needs root for apt-get.
#
#   scripts/install-peers.sh          everything: the bench's peers and the tests' programs
#   scripts/install-peers.sh --tests  only what the tests run against (no supervisord,
#                                     runit, s6, Horust): what .ci/run installs
set -eu
tests_only=""
[ "${1:-}" = "--tests" ] && tests_only=1

need_apt=""
if [ -z "$tests_only" ]; then
    command -v supervisord >/dev/null 2>&1 || need_apt="$need_apt supervisor"
    command -v runsvdir >/dev/null 2>&1 || need_apt="$need_apt runit"
    command -v s6-svscan >/dev/null 2>&1 || need_apt="$need_apt s6"
fi
# The tests' real peers: systemd-notify (notify readiness), node (an HTTP/2
# server with Huffman headers), zsh and fish (the completion scripts), python3
# and pip (servers in the probe tests, grpcio).
command -v systemd-notify >/dev/null 2>&1 || need_apt="$need_apt systemd"
command -v node >/dev/null 2>&1 || need_apt="$need_apt nodejs"
command -v zsh >/dev/null 2>&1 || need_apt="$need_apt zsh"
command -v fish >/dev/null 2>&1 || need_apt="$need_apt fish"
command -v python3 >/dev/null 2>&1 || need_apt="$need_apt python3"
python3 -m pip --version >/dev/null 2>&1 || need_apt="$need_apt python3-pip"
command -v strace >/dev/null 2>&1 || need_apt="$need_apt strace"
command -v promtool >/dev/null 2>&1 || need_apt="$need_apt prometheus"
command -v logrotate >/dev/null 2>&1 || need_apt="$need_apt logrotate"
# Real servers for the probe tests (tests/integration/probes/peers.rs, which
# skip without them) and the probes workload of scripts/bench.py. The tests run
# them in the foreground with their own configs; nothing needs to be enabled.
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_apt="$need_apt nginx-light"
command -v redis-server >/dev/null 2>&1 || need_apt="$need_apt redis-server"
if [ -n "$need_apt" ]; then
    echo "installing:$need_apt"
    apt-get update -qq
    # Only the binaries: runit-init/s6-init (which would take over PID 1) are
    # separate packages and are not installed.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need_apt
fi

if [ -z "$tests_only" ] && ! command -v horust >/dev/null 2>&1; then
    echo "installing horust (cargo install; this compiles for a few minutes)"
    CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/tmp/horust-target}" cargo install --locked horust
fi

if ! python3 -c "import grpc, grpc_health.v1.health" >/dev/null 2>&1; then
    echo "installing grpcio grpcio-health-checking (pip)"
    python3 -m pip install --quiet grpcio grpcio-health-checking \
        || python3 -m pip install --quiet --break-system-packages grpcio grpcio-health-checking
fi

for p in supervisord runsvdir s6-svscan horust strace prometheus promtool logrotate nginx redis-server \
    systemd-notify node zsh fish; do
    printf '%-12s %s\n' "$p" "$(command -v "$p" || echo missing)"
done
printf '%-12s %s\n' grpcio "$(python3 -c 'import grpc; print(grpc.__version__)' 2>/dev/null || echo missing)"

# scripts/reliability: pid1-orphans needs unshare, socket-safety needs setpriv
# (both util-linux; without them those checks say what they skipped).
if ! command -v unshare >/dev/null 2>&1 || ! command -v setpriv >/dev/null 2>&1; then
    echo "installing util-linux (unshare, setpriv) for scripts/reliability"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends util-linux
fi
