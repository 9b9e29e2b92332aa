#!/bin/sh
# The Debian packages the browser, live-stream and deployment tests drive: chromium,
# chromium-driver (chromedriver), ffmpeg, rtsp-server-perl (a real RTSP server on loopback)
# and postgresql (initdb/postgres, found on PATH or under $UPRM_PG_LIB, default
# /usr/lib/postgresql/*/bin, where Debian puts them). `make test` and `.ci/run` run this first:
#
#   all of them present                       nothing to do
#   root, or `sudo -n true` works             apt-get installs the missing ones
#   otherwise                                 exit 1 at once, printing the one install command
#
# POSIX sh; it runs nothing but `id`, `sudo`, `env` and `apt-get` (tests/test_system_packages.py
# runs it with fakes of those on PATH).
set -eu

have_initdb() {  # Debian keeps the server's programs off PATH, in /usr/lib/postgresql/<version>/bin
    command -v initdb >/dev/null 2>&1 && return 0
    for f in "${UPRM_PG_LIB:-/usr/lib/postgresql}"/*/bin/initdb; do
        [ -x "$f" ] && return 0
    done
    return 1
}

missing_packages() {
    out=""
    command -v chromium >/dev/null 2>&1 || out="$out chromium"
    command -v chromedriver >/dev/null 2>&1 || out="$out chromium-driver"
    command -v ffmpeg >/dev/null 2>&1 || out="$out ffmpeg"
    command -v rtsp-server-perl >/dev/null 2>&1 || out="$out rtsp-server-perl"
    have_initdb || out="$out postgresql"
    echo "${out# }"
}

missing=$(missing_packages)
[ -z "$missing" ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "The browser, stream and deployment tests need $missing, and there is no apt-get here:" >&2
    echo "install them with this system's package manager (the tests that need them never skip)." >&2
    exit 1
fi
if [ "$(id -u)" = 0 ]; then
    sudo=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
    sudo="sudo"
else
    echo "The browser, stream and deployment tests need the Debian packages $missing; install them with:" >&2
    echo "  sudo apt-get install -y $missing" >&2
    echo "(the tests that need them never skip)" >&2
    exit 1
fi

echo "installing system packages: $missing"
$sudo apt-get update -qq
# shellcheck disable=SC2086  # one word per package
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
still=$(missing_packages)
if [ -n "$still" ]; then
    echo "after apt-get install $missing, still not found on PATH ($PATH): $still" >&2
    exit 1
fi
