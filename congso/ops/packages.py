"""What each role needs from Debian, and which of congso's extras: one list
for ``congso install`` and for ``systemd/install.sh``, which reads it with
the system python3 before any virtualenv exists (so: stdlib only).

    python3 congso/ops/packages.py ROLE           # the Debian packages
    python3 congso/ops/packages.py --extras ROLE  # the pip extras, e.g. card,gpio

The virtualenv sees the system's packages (--system-site-packages), so the
two libraries that would build from source on a Pi come from Debian, built
for it: python3-pygame on Debian's SDL (which has KMSDRM; pip's aarch64
wheel has not) and python3-pyscard (no aarch64 wheel). Nothing is compiled
on the Pi, so no compiler or headers. lgpio comes from pip's aarch64
wheel: Debian 12 has no python3-lgpio (only the Raspberry Pi archive has).
See docs/operations.md, "Python packages on a Pi".
"""

from __future__ import annotations

import sys

ROLES = ("gateway", "attendance", "signage", "rating")
COMMON = ["python3", "python3-venv", "tzdata", "chrony"]
PACKAGES = {
    # openssl: the office CA; ffmpeg: ffprobe checks an uploaded video slide.
    "gateway": ["mosquitto", "mosquitto-clients", "sqlite3", "openssl", "ffmpeg", "python3-pil"],
    # pcscd with the CCID driver for the USB reader; pcsc-tools for pcsc_scan.
    "attendance": ["pcscd", "libccid", "pcsc-tools", "python3-pyscard"],
    # v4l-utils gives cec-ctl, to switch the TV on and off over HDMI-CEC.
    # mpv plays the video slides (DRM output, hardware decoding on a Pi).
    "signage": ["python3-pygame", "fonts-dejavu-core", "v4l-utils", "mpv"],
    # pcscd for the officer's card tap at a kiosk with a reader ([rating] officer_card).
    "rating": ["python3-pygame", "fonts-dejavu-core", "pcscd", "libccid", "python3-pyscard"],
}
# pyproject.toml's optional dependencies: card = pyscard, gpio = lgpio.
EXTRAS = {
    "gateway": [],
    "attendance": ["card", "gpio"],
    "signage": [],
    "rating": ["card", "gpio"],
}
DISPLAY_ROLES = ("signage", "rating")


def debian(role: str) -> list[str]:
    return COMMON + PACKAGES[role]


def main(argv: list[str]) -> int:
    extras = "--extras" in argv
    roles = [a for a in argv if not a.startswith("-")]
    if len(roles) != 1 or roles[0] not in ROLES:
        print(f"usage: packages.py [--extras] {'|'.join(ROLES)}", file=sys.stderr)
        return 2
    print(",".join(EXTRAS[roles[0]]) if extras else " ".join(debian(roles[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
