#!/usr/bin/env bash
# Install Debian's Chromium for the end-to-end tests (`make e2e`), unless it is there.
#
# Idempotent and non-interactive. Uses apt-get only: Playwright drives this browser
# through `executable_path`; no browser is ever downloaded by Playwright itself.
# Needs root (or sudo without a password). Exits non-zero with a message if it cannot.
set -euo pipefail

CHROMIUM="${SCHOOLCOMMS_E2E_CHROMIUM:-/usr/bin/chromium}"

if [ -x "$CHROMIUM" ]; then
  echo "Chromium is installed: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "Chromium is missing at $CHROMIUM and this machine has no apt-get." >&2
  echo "Install Chromium with your package manager, or set SCHOOLCOMMS_E2E_CHROMIUM to its path." >&2
  exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "Chromium is missing at $CHROMIUM; installing it needs root." >&2
    echo "Run: sudo $0" >&2
    exit 1
  fi
fi

echo "Chromium is missing at $CHROMIUM: installing Debian's chromium package with apt-get…"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium >/dev/null

if [ ! -x "$CHROMIUM" ]; then
  echo "apt-get finished but there is still no Chromium at $CHROMIUM." >&2
  exit 1
fi
echo "Installed: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
