#!/bin/sh
# Install the supervisors scripts/bench.py compares tend against, from the
# package registries: supervisord, runit and s6 from Debian, Horust from crates.io;
# and logrotate (Debian), which the log file tests run against tend.
# Idempotent: what is already installed is skipped. Needs root for apt-get.
set -eu

need_apt=""
command -v supervisord >/dev/null 2>&1 || need_apt="$need_apt supervisor"
command -v runsvdir >/dev/null 2>&1 || need_apt="$need_apt runit"
command -v s6-svscan >/dev/null 2>&1 || need_apt="$need_apt s6"
command -v logrotate >/dev/null 2>&1 || need_apt="$need_apt logrotate"
if [ -n "$need_apt" ]; then
    echo "installing:$need_apt"
    apt-get update -qq
    # Only the binaries: runit-init/s6-init (which would take over PID 1) are
    # separate packages and are not installed.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need_apt
fi

if ! command -v horust >/dev/null 2>&1; then
    echo "installing horust (cargo install; this compiles for a few minutes)"
    CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/tmp/horust-target}" cargo install --locked horust
fi

for p in supervisord runsvdir s6-svscan horust logrotate; do
    printf '%-12s %s\n' "$p" "$(command -v "$p" || echo missing)"
done
