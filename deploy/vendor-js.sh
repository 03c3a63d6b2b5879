#!/usr/bin/env bash
# Refresh the browser libraries the dashboard page (/dashboard/) uses, vendored under
# gridgov/static/vendor/ so that a closed government network never needs a CDN or npm:
#   make vendor                                   # the versions below
#   MAPLIBRE_VERSION=6.21.0 make vendor           # another version (then update the page's
#                                                 # imports in gridgov/static/dashboard/*.js)
# Runs npm in a temporary directory (only the registry is needed), copies the built files with
# their licences and writes VERSION. Review the diff and commit it.
set -euo pipefail

MAPLIBRE_VERSION="${MAPLIBRE_VERSION:-6.20.0}"
ECHARTS_VERSION="${ECHARTS_VERSION:-6.1.0}"
here="$(cd "$(dirname "$0")/.." && pwd)"
vendor="$here/gridgov/static/vendor"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

say() { printf '\033[1;34m[vendor]\033[0m %s\n' "$*"; }
say "npm install maplibre-gl@$MAPLIBRE_VERSION echarts@$ECHARTS_VERSION (in $tmp)"
(cd "$tmp" && npm init -y >/dev/null && npm install --no-audit --no-fund --ignore-scripts \
  "maplibre-gl@$MAPLIBRE_VERSION" "echarts@$ECHARTS_VERSION" >/dev/null)

copy() {  # package version destination files...
  local pkg="$1" version="$2" dest="$vendor/$1/$2"; shift 2
  rm -rf "${vendor:?}/$pkg"
  mkdir -p "$dest"
  for f in "$@"; do cp "$tmp/node_modules/$pkg/$f" "$dest/"; done
  # Source maps are not vendored: drop the comment pointing at them (no 404 in devtools).
  find "$dest" -name '*.mjs' -exec sed -i '/^\/\/# sourceMappingURL=/d' {} +
  local licence
  licence="$(cd "$tmp/node_modules/$pkg" && node -p 'require("./package.json").license')"
  {
    echo "package: $pkg (npm registry)"
    echo "version: $version"
    echo "licence: $licence"
    echo "files: $*"
    echo "refresh: make vendor (deploy/vendor-js.sh)"
  } >"$dest/VERSION"
  say "$pkg $version ($licence): $(du -sh "$dest" | cut -f1)"
}

copy maplibre-gl "$MAPLIBRE_VERSION" \
  dist/maplibre-gl.mjs dist/maplibre-gl-worker.mjs dist/maplibre-gl.css LICENSE.txt
copy echarts "$ECHARTS_VERSION" dist/echarts.esm.min.mjs LICENSE NOTICE licenses/LICENSE-d3
