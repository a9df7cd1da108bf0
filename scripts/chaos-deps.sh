#!/usr/bin/env bash
# Installs what the chaos runner (crates/harness/src/bin/chaos/) needs for partitions through
# network namespaces: iproute2's `ip`. Namespaces also need root; without root (or without apt-get) the
# runner uses its UDP fault proxy on loopback instead and says so in its output, so this script
# never fails a run for lack of them.
set -euo pipefail

if command -v ip >/dev/null 2>&1; then
    echo "chaos-deps: $(ip -V)"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "chaos-deps: no iproute2 and not root: the chaos runner will use its UDP fault proxy"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "chaos-deps: no iproute2 and no apt-get: the chaos runner will use its UDP fault proxy"
    exit 0
fi
echo "chaos-deps: installing iproute2"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2
echo "chaos-deps: $(ip -V)"
