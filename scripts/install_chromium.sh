#!/usr/bin/env bash
# Install Debian's Chromium and ChromeDriver for `make test-browser` (idempotent).
# Selenium drives /usr/bin/chromium through /usr/bin/chromedriver; nothing is downloaded
# by Selenium Manager. Needs root (CI runs as root) and the Debian package registry.
set -euo pipefail
if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
    echo "install_chromium: $(/usr/bin/chromium --version 2>/dev/null || echo chromium) already installed"
    exit 0
fi
SUDO=""
if [[ "$(id -u)" != "0" ]]; then
    command -v sudo >/dev/null || { echo "install_chromium: need root (or sudo) for apt-get" >&2; exit 1; }
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core
/usr/bin/chromium --version
/usr/bin/chromedriver --version
