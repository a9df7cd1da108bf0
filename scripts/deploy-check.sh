#!/usr/bin/env bash
# Validates the files in deploy/ offline, as CI does (.ci/run): the Prometheus rules and their
# tests, the StatefulSet, the Dockerfile and the systemd unit. Installs what it needs: Debian's
# prometheus (for promtool), yamllint and systemd (for systemd-analyze), and pinned Python
# tools (scripts/deploy-check.requirements.txt) in target/venv-deploy. After the first install
# it takes well under a minute.
#
# Usage: scripts/deploy-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/venv-deploy
requirements=scripts/deploy-check.requirements.txt
# kubernetes-validate checks against the API schemas of these releases, in strict mode
# (unknown fields fail): 1.25, the first with the Pod Security admission that enforces the
# restricted level the StatefulSet meets, and 1.37, the newest the pinned validator knows.
kubernetes_versions=(1.25.0 1.37.0)

step() { printf '\n-- deploy-check: %s\n' "$1"; }

step "install"
missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v yamllint >/dev/null 2>&1 || missing+=(yamllint)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "deploy-check: missing ${missing[*]}, and cannot install them (needs root and apt-get)" >&2
        exit 1
    fi
    echo "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The venv is rebuilt only when the pinned requirements change.
if ! cmp -s "$requirements" "$venv/requirements.txt"; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$venv/requirements.txt"
fi
promtool --version 2>&1 | head -1
echo "yamllint $(yamllint --version | awk '{print $2}'), $(systemd-analyze --version | head -1)"
echo "kubernetes-validate $("$venv/bin/kubernetes-validate" --version), $("$venv/bin/hadolint" --version)"

step "yamllint"
yamllint --strict .yamllint deploy/

step "promtool: rules, the example configuration, and the rules' tests"
promtool check rules deploy/prometheus/tenure.rules.yml
promtool check config deploy/prometheus/prometheus.yml
promtool test rules deploy/prometheus/tenure.rules.test.yml

step "the rules' tests fail on each broken rule"
"$venv/bin/python" scripts/rules-mutants.py

step "kubernetes-validate --strict"
for version in "${kubernetes_versions[@]}"; do
    "$venv/bin/kubernetes-validate" --strict -k "$version" deploy/kubernetes/*.yaml
done

step "hadolint"
"$venv/bin/hadolint" deploy/Dockerfile && echo "deploy/Dockerfile: no findings"

step "what tenure requires of deploy/"
"$venv/bin/python" scripts/deploy-lint.py

step "systemd-analyze verify"
# The unit is checked inside a scratch root that holds systemd's own units and an executable
# where ExecStart= expects tenure, so that verify needs neither an installed tenure nor a
# running systemd. verify warns on stderr and still exits 0 for an unknown key or a bad value:
# any output counts as a failure here.
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/etc/systemd/system" "$root/usr/local/bin" "$root/lib/systemd"
cp -r /lib/systemd/system "$root/lib/systemd/"
printf '#!/bin/sh\n' > "$root/usr/local/bin/tenure"
chmod 0755 "$root/usr/local/bin/tenure"
cp deploy/tenure.service "$root/etc/systemd/system/"
verify_output=$(systemd-analyze verify --root="$root" /etc/systemd/system/tenure.service 2>&1) || {
    echo "$verify_output" >&2
    exit 1
}
if [ -n "$verify_output" ]; then
    echo "$verify_output" >&2
    exit 1
fi
echo "deploy/tenure.service: no findings"

step "done"
