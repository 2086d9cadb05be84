#!/bin/sh
# Install a congso role on Raspberry Pi OS bookworm from this source tree:
#   sudo systemd/install.sh gateway --nodes door-1,tv-1,kiosk-1
#   sudo systemd/install.sh attendance --node-id door-1 --gateway-host 192.168.1.10 --mqtt-password ...
# It makes the virtualenv in /opt/congso/venv, then hands over to
# `congso install ROLE ...`, which does the rest (see `congso install --help`).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "run as root (sudo $0 $*)" >&2; exit 1; }
[ $# -ge 1 ] || { echo "usage: $0 gateway|attendance|signage|rating [congso install options]" >&2; exit 2; }
if ! dpkg-query -W -f='${Status}' python3-venv 2>/dev/null | grep -q "install ok installed"; then
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv python3-dev gcc
fi
[ -x /opt/congso/venv/bin/python ] || python3 -m venv /opt/congso/venv
/opt/congso/venv/bin/python -m pip install --quiet --upgrade pip
/opt/congso/venv/bin/python -m pip install --quiet "$here"
exec /opt/congso/venv/bin/congso install --source "$here" "$@"
