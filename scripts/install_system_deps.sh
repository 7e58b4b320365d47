#!/usr/bin/env bash
# Install, with apt and only when missing, the system packages the tests need:
# PostgreSQL server binaries (initdb, pg_ctl) and Chromium (renders report.html headless).
set -euo pipefail
missing=()
compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null || command -v pg_ctl >/dev/null 2>&1 || missing+=(postgresql)
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi
sudo=()
[[ $(id -u) -eq 0 ]] || sudo=(sudo)
echo "install_system_deps: installing ${missing[*]} with apt"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
