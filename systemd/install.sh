#!/bin/sh
# Install a congso role on Raspberry Pi OS bookworm from this source tree
# (the gateway role also installs the office console, congso-web.service):
#   sudo systemd/install.sh gateway --nodes door-1,tv-1,kiosk-1
#   sudo systemd/install.sh attendance --node-id door-1 --gateway-host 192.168.1.10 --mqtt-password ...
# Debian packages first (the role's, from congso/ops/packages.py: Debian's
# python3-pygame and python3-pyscard, built for the Pi, so nothing compiles),
# then the virtualenv in /opt/congso/venv that sees them, with congso and the
# role's extras; then `congso install ROLE ...` does the rest and checks it
# (see `congso install --help`). In a chroot (no systemd running: an SD card
# being prepared) units are enabled by links and nothing is started.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
venv=/opt/congso/venv
[ "$(id -u)" = 0 ] || { echo "run as root (sudo $0 $*)" >&2; exit 1; }
[ $# -ge 1 ] || { echo "usage: $0 gateway|attendance|signage|rating [congso install options]" >&2; exit 2; }
role=$1
case "$role" in gateway|attendance|signage|rating) ;; *) echo "unknown role '$role': gateway, attendance, signage or rating" >&2; exit 2 ;; esac
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
apt_install() {
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
}
command -v python3 >/dev/null || apt_install python3
missing=""
for p in $(python3 "$here/congso/ops/packages.py" "$role"); do
    installed "$p" || missing="$missing $p"
done
# shellcheck disable=SC2086  # one word per package
[ -z "$missing" ] || apt_install $missing
extras=$(python3 "$here/congso/ops/packages.py" --extras "$role")
[ -x "$venv/bin/python" ] || /usr/bin/python3 -m venv --system-site-packages "$venv"
# A venv an older install made without the system's packages: let it see them.
sed -i 's/^include-system-site-packages = false$/include-system-site-packages = true/' "$venv/pyvenv.cfg"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "$here${extras:+[$extras]}"
exec "$venv/bin/congso" install --source "$here" "$@"
