#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Checks the Debian libraries the build needs (by pkg-config name) and, with --tests first, the
# tools the tests need too; installs the missing ones with apt-get when run as root on
# Debian/Ubuntu; otherwise prints the exact line. `make` asks for the libraries only, so that
# building never needs a browser; `make check` and `make e2e` ask for the test tools as well.
set -eu

tests=0
if [ "${1:-}" = --tests ]; then
    tests=1
    shift
fi

debian_package() {
    case "$1" in
    yaml-0.1) echo libyaml-dev ;;
    jansson) echo libjansson-dev ;;
    sqlite3) echo libsqlite3-dev ;;
    cmocka) echo libcmocka-dev ;;
    libcurl) echo libcurl4-openssl-dev ;;
    openssl | libssl | libcrypto) echo libssl-dev ;;
    libnghttp2) echo libnghttp2-dev ;;
    *) echo "$1" ;;
    esac
}

missing=""
command -v pkg-config >/dev/null 2>&1 || missing="pkg-config"
for pc in "$@"; do
    if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists "$pc"; then
        missing="$missing $(debian_package "$pc")"
    fi
done
if [ "$tests" = 1 ]; then
    /usr/bin/python3 -c 'import pytest' >/dev/null 2>&1 || missing="$missing python3-pytest"
    /usr/bin/python3 -c 'import jsonschema' >/dev/null 2>&1 || missing="$missing python3-jsonschema"
    /usr/bin/python3 -c 'import yaml' >/dev/null 2>&1 || missing="$missing python3-yaml"
    # The end-to-end tests start a real Prometheus (tests/e2e/test_prometheus.py).
    [ -x /usr/bin/prometheus ] || missing="$missing prometheus"
    # Tests only: the dashboard's end-to-end test drives headless Chromium (tests/e2e/test_dashboard.py).
    [ -x /usr/bin/chromium ] || missing="$missing chromium"
    [ -x /usr/bin/chromedriver ] || missing="$missing chromium-driver"
    /usr/bin/python3 -c 'import selenium' >/dev/null 2>&1 || missing="$missing python3-selenium"
fi
[ -n "$missing" ] || exit 0

missing=$(echo $missing)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "deps: installing $missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq </dev/null >/dev/null
    apt-get install -y -qq --no-install-recommends $missing </dev/null >/dev/null
    echo "deps: installed $missing"
    exit 0
fi
echo "deps: missing Debian packages: $missing" >&2
echo "deps: install them with:  sudo apt-get install -y $missing" >&2
exit 1
