#!/usr/bin/env bash
# Install the pinned front-end packages from the npm registry (package-lock.json) and
# copy the files the pages use into loucloud/static/vendor/ (not committed).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
out=loucloud/static/vendor
rm -rf "$out.tmp" && mkdir -p "$out.tmp"/{bootstrap,bootstrap-icons}
cp node_modules/bootstrap/dist/css/bootstrap.min.css "$out.tmp/bootstrap/"
cp node_modules/bootstrap/dist/js/bootstrap.bundle.min.js "$out.tmp/bootstrap/"
cp node_modules/bootstrap-icons/font/bootstrap-icons.min.css "$out.tmp/bootstrap-icons/"
cp -r node_modules/bootstrap-icons/font/fonts "$out.tmp/bootstrap-icons/"
rm -rf "$out" && mv "$out.tmp" "$out"
