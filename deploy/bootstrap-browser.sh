#!/usr/bin/env bash
# Make Debian's Chromium available for the browser tests (tests/dashboard/test_page.py, driven
# by Playwright from PyPI, which cannot download its own browsers on closed networks).
# Idempotent: apt runs only when /usr/bin/chromium is missing. GRIDGOV_SKIP_BROWSER=1 skips it.
set -euo pipefail

say() { printf '\033[1;34m[bootstrap]\033[0m %s\n' "$*"; }
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    say "need root for: $*"; return 1; fi
}

[ "${GRIDGOV_SKIP_BROWSER:-0}" = "1" ] && exit 0
if [ ! -x /usr/bin/chromium ]; then
  say "installing chromium (apt) for the browser tests"
  # Another apt run (unattended upgrades, a neighbour) may hold the lock: wait for it.
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
    --no-install-recommends chromium fonts-noto-cjk >/dev/null
fi
