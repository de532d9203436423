#!/usr/bin/env bash
# Installs Debian's headless-capable Chromium for the sorting page's browser test
# (tests/integration/test_sort_browser.py drives it with Playwright's Python package;
# Playwright's own browser downloads are never used).
# Idempotent: does nothing when /usr/bin/chromium exists. Called by `make setup`.
set -euo pipefail

say() { printf '[browser-deps] %s\n' "$*"; }

if [ -x /usr/bin/chromium ]; then
  say "chromium is installed ($(/usr/bin/chromium --version 2>/dev/null || echo 'version unknown'))"
  exit 0
fi

if [ ! -r /etc/debian_version ]; then
  say "This is not a Debian-family system: install Chromium by hand as /usr/bin/chromium;"
  say "without it the browser test is skipped."
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    say "Not root and no sudo: cannot install chromium (the browser test will be skipped)."; exit 0; fi
fi

say "apt-get update"
$SUDO apt-get update -qq
say "apt-get install chromium"
# fonts-liberation: readable text in screenshots; the rest come as chromium's own dependencies.
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
  chromium fonts-liberation >/dev/null
say "chromium installed ($(/usr/bin/chromium --version 2>/dev/null || echo 'version unknown'))"
