#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The demo behind `make demo`: applies examples/ to a fresh temporary embedded store and shows
# what was stored; then runs the data plane: two mesh-echo upstreams behind meshproxy with the
# seed's 90/10 split (examples/proxy/payment.yaml), sends it traffic, and shows where it went.
# Every process it starts is stopped by PID. Usage: scripts/demo.sh BUILD_DIR
set -eu

build=${1:?usage: scripts/demo.sh BUILD_DIR}
case $build in
/*) ;;
*) build=$(pwd)/$build ;;
esac
meshctl=$build/meshctl
for bin in meshctl meshproxy mesh-echo; do
    [ -x "$build/$bin" ] || { echo "error: $build/$bin is missing (run make first)" >&2; exit 1; }
done
# relative paths in what is printed: examples/services.yaml, not /home/.../examples/...
cd "$(dirname "$0")/.."
store=$(mktemp -d "${TMPDIR:-/tmp}/mesh-demo.XXXXXX")
pids=""
cleanup() {
    for pid in $pids; do kill "$pid" 2>/dev/null || true; done
    for pid in $pids; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$store"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

section() {
    printf '\n== %s ==\n\n' "$*"
}

run() {
    printf '$ meshctl %s\n' "$*"
    "$meshctl" --store "$store" "$@"
}

section "Validate the seed's examples"
run validate -f examples/

section "Apply them to a fresh store ($store)"
run apply -f examples/

section "Everything stored, in every namespace"
run get all -A

section "The seed's VirtualService, as stored"
run get vs payment-service -n default -o yaml

section "The data plane: meshproxy with the seed's 90/10 split (examples/proxy/payment.yaml)"
for port in 18081 18082 15001 15000; do
    if python3 -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1',$port))!=0)"; then
        echo "error: 127.0.0.1:$port is in use; the demo needs 18081, 18082, 15001 and 15000" >&2
        exit 1
    fi
done
"$build/mesh-echo" --listen 127.0.0.1:18081 --name payment-v1 2>"$store/v1.log" &
pids="$pids $!"
"$build/mesh-echo" --listen 127.0.0.1:18082 --name payment-v2 2>"$store/v2.log" &
pids="$pids $!"
"$build/meshproxy" --config examples/proxy/payment.yaml --listen 127.0.0.1:15001 \
    --admin 127.0.0.1:15000 2>"$store/proxy.log" &
pids="$pids $!"
python3 - <<'PY'
import collections, http.client, time
deadline = time.time() + 5
while True:
    try:
        c = http.client.HTTPConnection("127.0.0.1", 15000, timeout=2)
        c.request("GET", "/ready")
        if c.getresponse().status == 200:
            break
    except OSError:
        pass
    if time.time() > deadline:
        raise SystemExit("error: meshproxy did not become ready")
    time.sleep(0.05)
print("$ curl -H 'Host: payment.example.com' http://127.0.0.1:15001/api/v1/pay   # x 1000")
c = http.client.HTTPConnection("127.0.0.1", 15001, timeout=5)
seen = collections.Counter()
for _ in range(1000):
    c.request("GET", "/api/v1/pay", headers={"Host": "payment.example.com"})
    r = c.getresponse()
    seen[r.read().decode().strip()] += 1
for name, n in sorted(seen.items()):
    print(f"  {n:4d} answered by {name}")
c.request("GET", "/nowhere", headers={"Host": "other.example.com"})
r = c.getresponse()
r.read()
print(f"\n$ curl -H 'Host: other.example.com' ...   -> {r.status}, x-mesh-error: {r.getheader('x-mesh-error')}")
a = http.client.HTTPConnection("127.0.0.1", 15000, timeout=5)
a.request("GET", "/metrics")
print("\n$ curl http://127.0.0.1:15000/metrics | grep mesh_requests_total")
for line in a.getresponse().read().decode().splitlines():
    if line.startswith("mesh_requests_total"):
        print("  " + line)
PY

section "Done; stopping the processes and removing the temporary store"
