#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# `make bench`: installs nginx, HAProxy and wrk when missing, then runs bench/bench.py,
# bench/propagation.py and bench/mtls.py (set -e: the first that fails stops the rest).
# Never part of `make check` or CI: it takes minutes and its figures depend on the machine.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian package names (bookworm): plain `nginx` is the lean build and has every module the
# configs use (upstream keepalive, return); `wrk`, `haproxy` and `openssl` (s_time, for
# bench/mtls.py) as they are.
missing=()
for tool in nginx haproxy wrk taskset openssl; do
    if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ]; then
        case "$tool" in
        taskset) missing+=(util-linux) ;;
        *) missing+=("$tool") ;;
        esac
    fi
done
[ -x /usr/bin/python3 ] || missing+=(python3)

# What the packages' maintainer scripts may start: the system instances on port 80. The
# benchmark never uses them (it runs its own instances from bench/configs/), so an instance
# that our install started is stopped again, and nothing that was already running is touched.
service_running() {
    [ -f "/run/$1.pid" ] && kill -0 "$(cat "/run/$1.pid")" 2>/dev/null
}

if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "bench: missing ${missing[*]}; install with:" >&2
        echo "    sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    was_running=""
    for svc in nginx haproxy; do
        service_running "$svc" && was_running="$was_running $svc"
    done
    echo "bench: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "${missing[@]}" ||
        { apt-get update -q && apt-get install -y -q "${missing[@]}"; }
    for svc in nginx haproxy; do
        case " $was_running " in *" $svc "*) continue ;; esac
        if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
            systemctl stop "$svc" 2>/dev/null || true
        elif service_running "$svc"; then
            echo "bench: stopping the $svc the package started (pid $(cat "/run/$svc.pid"))"
            kill "$(cat "/run/$svc.pid")"
        fi
    done
fi

# 1,000 idle client connections, plus the proxies' upstream sockets, need more than the usual
# 1,024 descriptors; the children (proxies, wrk, the idle-connection client) inherit this.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# nginx and haproxy live in /usr/sbin, which a non-root PATH may lack.
PATH="$PATH:/usr/sbin:/sbin"
export PATH

/usr/bin/python3 bench/bench.py "$@"
# The control plane: config propagation to 50 sidecars and meshd's memory.
/usr/bin/python3 bench/propagation.py
# mTLS between two sidecars against plaintext: keep-alive throughput, handshakes per core, RSS.
/usr/bin/python3 bench/mtls.py
