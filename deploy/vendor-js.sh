#!/usr/bin/env bash
# Refresh the browser libraries the dashboard page (/dashboard/) and the API docs (/docs,
# /redoc) use, vendored under gridgov/static/vendor/ so that a closed government network never
# needs a CDN or npm:
#   make vendor                                   # the versions below
#   MAPLIBRE_VERSION=6.21.0 make vendor           # another version (then update the page's
#                                                 # imports in gridgov/static/dashboard/*.js;
#                                                 # for the docs, gridgov/site/pages.py)
# Runs npm in a temporary directory (only the registry is needed), copies the built files with
# their licences and writes VERSION. Review the diff and commit it.
set -euo pipefail

MAPLIBRE_VERSION="${MAPLIBRE_VERSION:-6.20.0}"
ECHARTS_VERSION="${ECHARTS_VERSION:-6.1.0}"
# The docs' two packages are self-contained bundles: fetched with `npm pack` (the published
# tarball, no dependency tree, no install scripts).
SWAGGER_UI_VERSION="${SWAGGER_UI_VERSION:-5.35.0}"
REDOC_VERSION="${REDOC_VERSION:-2.5.4}"
here="$(cd "$(dirname "$0")/.." && pwd)"
vendor="$here/gridgov/static/vendor"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

say() { printf '\033[1;34m[vendor]\033[0m %s\n' "$*"; }
say "npm install maplibre-gl@$MAPLIBRE_VERSION echarts@$ECHARTS_VERSION (in $tmp)"
(cd "$tmp" && npm init -y >/dev/null && npm install --no-audit --no-fund --ignore-scripts \
  "maplibre-gl@$MAPLIBRE_VERSION" "echarts@$ECHARTS_VERSION" >/dev/null)

say "npm pack swagger-ui-dist@$SWAGGER_UI_VERSION redoc@$REDOC_VERSION (in $tmp)"
for spec in "swagger-ui-dist@$SWAGGER_UI_VERSION" "redoc@$REDOC_VERSION"; do
  pkg="${spec%@*}"
  (cd "$tmp" && npm pack --silent "$spec" >/dev/null && mkdir -p "packed/$pkg" &&
    tar xzf "$pkg-${spec##*@}.tgz" -C "packed/$pkg" --strip-components=1)
done

copy() {  # package version destination files... (from node_modules, or packed/ for a tarball)
  local pkg="$1" version="$2" dest="$vendor/$1/$2" src="$tmp/node_modules/$1"; shift 2
  [[ -d "$src" ]] || src="$tmp/packed/$pkg"
  rm -rf "${vendor:?}/$pkg"
  mkdir -p "$dest"
  for f in "$@"; do cp "$src/$f" "$dest/"; done
  # Source maps are not vendored: drop the comment pointing at them (no 404 in devtools).
  find "$dest" \( -name '*.mjs' -o -name '*.js' \) -exec sed -i '/^\/\/# sourceMappingURL=/d' {} +
  find "$dest" -name '*.css' -exec sed -i '/^\/\*# sourceMappingURL=.*\*\/$/d' {} +
  local licence
  licence="$(cd "$src" && node -p 'require("./package.json").license')"
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
copy swagger-ui-dist "$SWAGGER_UI_VERSION" \
  swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css LICENSE NOTICE
copy redoc "$REDOC_VERSION" \
  bundles/redoc.standalone.js bundles/redoc.standalone.js.LICENSE.txt LICENSE
# ReDoc's sidebar footer always loads a logo from its CDN (hidden when it fails to load): point
# it at an empty data: URL, so that the page never reaches for another host.
redoc_logo='https://cdn.redoc.ly/redoc/logo-mini.svg'
grep -q "$redoc_logo" "$vendor/redoc/$REDOC_VERSION/redoc.standalone.js" ||
  { say "redoc: the CDN logo was not found; check the bundle for other hosts"; exit 1; }
sed -i "s#$redoc_logo#data:,#g" "$vendor/redoc/$REDOC_VERSION/redoc.standalone.js"
echo "patched: $redoc_logo -> data:, (no request to another host)" \
  >>"$vendor/redoc/$REDOC_VERSION/VERSION"
