#!/bin/sh
# Install Debian's chromium for the browser tests (tests/test_app_browser.py) when it is
# missing. Needs root and the Debian package registry; otherwise it says why and exits 0,
# and the browser tests skip with that reason.
[ -x /usr/bin/chromium ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure_chromium: /usr/bin/chromium missing and cannot apt-get install it (need root on Debian); browser tests will skip" >&2
    exit 0
fi
echo "ensure_chromium: installing chromium with apt-get (once)" >&2
apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1; } \
    || echo "ensure_chromium: apt-get install chromium failed; browser tests will skip" >&2
exit 0
