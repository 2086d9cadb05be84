# congso: `make demo` shows the whole office on one machine, `make test` runs
# the test suite. Each does all the set-up on a fresh Debian 12 / Raspberry Pi
# OS bookworm machine: Debian packages (apt-get update first, sudo when not
# root), a virtualenv in .venv, and congso installed into it in editable mode.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Mosquitto (broker and mosquitto_passwd) for the tests and the demo; venv
# and headers to build the virtualenv; tzdata for Asia/Ho_Chi_Minh; openssl
# to make the test CA for the TLS listener; pcscd with the virtual reader
# driver (vpcd) for the card reader, and the PC/SC headers and swig that
# pyscard builds from; DejaVu, the font with full Vietnamese coverage;
# Debian's python3-pygame, the TV's on a Pi (its SDL reports KMSDRM);
# Debian's chromium and its chromedriver for the console's browser tests
# (nothing downloads a browser); ffmpeg (ffprobe checks an uploaded video,
# and the tests make their clips with it) and mpv, the TV's video player.
DEB_PACKAGES := mosquitto mosquitto-clients python3-venv python3-dev tzdata sqlite3 openssl \
	pcscd vsmartcard-vpcd libpcsclite-dev swig gcc fonts-dejavu-core python3-pygame \
	chromium chromium-driver ffmpeg mpv

# Only for `make bench`: the signage benchmark compares with the same board
# drawn by headless Chromium (what browser-based signage players use).
BENCH_PACKAGES := chromium

.PHONY: all setup system-packages bench-packages venv test demo bench pi-check pi-bench clean

all: test

setup: system-packages venv

# apt only when something is missing, so a Pi without internet can still run `make test`.
system-packages:
	@missing=""; for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		$(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi

venv: $(BIN)/.installed

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

test: setup
	$(BIN)/python -m pytest

demo: setup
	$(BIN)/congso demo

bench-packages:
	@missing=""; for p in $(BENCH_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages for the benchmarks:$$missing"; \
		$(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi

bench: setup bench-packages
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/devices.py
	$(BIN)/python bench/attendance.py
	$(BIN)/python bench/signage.py
	$(BIN)/python bench/hall.py
	$(BIN)/python bench/rating.py
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/console.py
	$(BIN)/python bench/timesheet.py

# Every role installed into an emulated arm64 Debian 12 (qemu-user-static,
# debootstrap; cached in /var/cache/congso-pi-check, CONGSO_PI_CACHE to move
# it) with the real installer, then its checks, the selftests and the quick
# tests in there. Slow (the first run makes the root filesystem); needs root.
pi-check:
	$(SUDO) $(PYTHON) pi/check.py

# Start-up cost on the arm64 root filesystem beside this machine's (after pi-check).
pi-bench: setup
	$(SUDO) $(BIN)/python bench/pi.py

clean:
	rm -rf $(VENV) demo-out bench-out .pytest_cache *.egg-info
