#!/usr/bin/env bash
# Builds the explorer into $1 (the Maven build passes target/classes/ui). Installs the npm packages first when
# package-lock.json changed since the last install (npm ci: exactly the locked versions, from the npm cache when there).
set -euo pipefail
out="$(realpath -m "${1:?usage: ui/build.sh OUTDIR}")"
cd "$(dirname "$0")"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "ui/build.sh: node and npm are needed to build the explorer (Debian: apt-get install nodejs npm)" >&2; exit 1
fi
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --prefer-offline --no-audit --no-fund --loglevel=error >&2
fi
node build.mjs "$out"
