#!/usr/bin/env bash
# Install the pinned front-end packages from the npm registry (package-lock.json) and
# copy the files the pages use into loucloud/static/vendor/ (not committed).
set -euo pipefail
cd "$(dirname "$0")/.."
# npm ci again whenever the lock file differs from the one node_modules was made from.
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat node_modules/.loucloud-lock 2>/dev/null)" != "$lock_sum" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_sum" > node_modules/.loucloud-lock
fi
out=loucloud/static/vendor
rm -rf "$out.tmp" && mkdir -p "$out.tmp"/{bootstrap,bootstrap-icons}
cp node_modules/bootstrap/dist/css/bootstrap.min.css "$out.tmp/bootstrap/"
cp node_modules/bootstrap/dist/js/bootstrap.bundle.min.js "$out.tmp/bootstrap/"
cp node_modules/bootstrap-icons/font/bootstrap-icons.min.css "$out.tmp/bootstrap-icons/"
cp -r node_modules/bootstrap-icons/font/fonts "$out.tmp/bootstrap-icons/"
# noVNC is ES modules: its core/ imports ../vendor/pako, so both go side by side.
mkdir -p "$out.tmp/novnc"
cp -r node_modules/@novnc/novnc/core node_modules/@novnc/novnc/vendor "$out.tmp/novnc/"
cp node_modules/@novnc/novnc/LICENSE.txt "$out.tmp/novnc/"
mkdir -p "$out.tmp/chartjs"
cp node_modules/chart.js/dist/chart.umd.js node_modules/chart.js/LICENSE.md "$out.tmp/chartjs/"
# xterm.js (the text console) as ES modules, with its stylesheet.
mkdir -p "$out.tmp/xterm"
cp node_modules/@xterm/xterm/lib/xterm.mjs node_modules/@xterm/xterm/css/xterm.css \
   node_modules/@xterm/addon-fit/lib/addon-fit.mjs node_modules/@xterm/xterm/LICENSE "$out.tmp/xterm/"
# Swagger UI: the API's reference page (/api/v1/docs).
mkdir -p "$out.tmp/swagger-ui"
cp node_modules/swagger-ui-dist/swagger-ui-bundle.js node_modules/swagger-ui-dist/swagger-ui.css \
   node_modules/swagger-ui-dist/LICENSE "$out.tmp/swagger-ui/"
rm -rf "$out" && mv "$out.tmp" "$out"
