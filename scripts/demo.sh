#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The demo behind `make demo`: applies examples/ to a fresh temporary embedded store, shows what
# was stored, then removes the store. Usage: scripts/demo.sh PATH/TO/meshctl
set -eu

meshctl=${1:?usage: scripts/demo.sh PATH/TO/meshctl}
case $meshctl in
/*) ;;
*) meshctl=$(pwd)/$meshctl ;;
esac
[ -x "$meshctl" ] || { echo "error: $meshctl is not an executable (run make first)" >&2; exit 1; }
# relative paths in what is printed: examples/services.yaml, not /home/.../examples/...
cd "$(dirname "$0")/.."
store=$(mktemp -d "${TMPDIR:-/tmp}/mesh-demo.XXXXXX")
trap 'rm -rf "$store"' EXIT
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

section "Done; removing the temporary store"
