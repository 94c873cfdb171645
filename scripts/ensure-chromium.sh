#!/usr/bin/env bash
# Debian's chromium and chromedriver, which tests/api/test_dashboard_browser.py drives:
# installed with apt-get where they are missing and we are root, else fail saying how.
# Fast (two file checks) when they are there.
set -u
CHROMIUM=/usr/bin/chromium
DRIVER=/usr/bin/chromedriver
present() { [ -x "$CHROMIUM" ] && [ -x "$DRIVER" ]; }
present && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "chromium or chromedriver is missing: installing Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null; }
fi
present || {
  echo "the dashboard's browser test needs $CHROMIUM and $DRIVER (Debian packages chromium" \
    "and chromium-driver). Install them with: sudo apt-get update &&" \
    "sudo apt-get install -y chromium chromium-driver" >&2
  exit 1
}
