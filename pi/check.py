#!/usr/bin/env python3
"""`make pi-check`: install every role into an emulated arm64 Debian 12 and check it there.

What a technician does on a fresh Raspberry Pi (bookworm, arm64), done on
this x86 machine without a Pi:

1. a Debian 12 arm64 root filesystem made by debootstrap and run through
   qemu-user-static (binfmt_misc), from the mirror in this machine's apt
   sources and with this machine's CA certificates inside (a proxy that
   re-signs TLS keeps working); it is cached, and only re-made when missing;
2. a fresh copy of it gets this source tree, and each role is installed
   with the real installer (`systemd/install.sh ROLE`) in image-building
   mode: no systemd runs in a chroot, so units are enabled by links and
   nothing is started, as when preparing an SD card;
3. in it: the install's own checks (`congso install ROLE --check`), then
   `congso selftest --role ROLE`, then the quick tests.

Every step prints how long it took. Stdlib only: it runs before any venv.
Environment: CONGSO_PI_CACHE (default /var/cache/congso-pi-check),
CONGSO_PI_TESTS (the quick tests, space-separated).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("CONGSO_PI_CACHE", "/var/cache/congso-pi-check"))
BASE = CACHE / "bookworm-arm64"
WORK = CACHE / "work"  # the door (and a TV): bench/pi.py measures in it
SRC = Path("/usr/src/congso")
HOST_PACKAGES = ["qemu-user-static", "debootstrap", "binfmt-support"]
# Raspberry Pi OS Lite has these before anything is installed.
BASE_INCLUDE = "systemd,systemd-sysv,ca-certificates,python3,apt-utils,kmod"
QUICK_TESTS = os.environ.get(
    "CONGSO_PI_TESTS",
    "tests/test_display.py tests/test_selftest.py tests/test_gpio.py tests/test_fingerprint_parser.py")
ROLES = [  # the door last: its root then gets the TV too, for the quick tests
    ("gateway", ["--nodes", "door-1,tv-1,kiosk-1", "--lan", "192.168.1.0/24"]),
    ("signage", ["--node-id", "tv-1", "--gateway-host", "192.168.1.10"]),
    ("rating", ["--node-id", "kiosk-1", "--gateway-host", "192.168.1.10"]),
    ("attendance", ["--node-id", "door-1", "--gateway-host", "192.168.1.10"]),
]
# A clean environment in the chroot: none of this machine's pip settings
# (local wheel directories that do not exist in there).
CHROOT_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
              "LANG": "C.UTF-8", "TERM": "dumb", "DEBIAN_FRONTEND": "noninteractive",
              "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_DEFAULT_TIMEOUT": "180", "PIP_ROOT_USER_ACTION": "ignore"}

timings: list[tuple[str, float, str]] = []


class Failed(Exception):
    pass


def step(name: str):
    """Time a step, print it, and remember it for the summary."""
    class _Step:
        def __enter__(self):
            print(f"\n=== {name}", flush=True)
            self.t0 = time.monotonic()
            return self

        def __exit__(self, kind, exc, tb):
            took = time.monotonic() - self.t0
            outcome = "ok" if kind is None else ("FAILED" if kind is Failed or issubclass(kind, subprocess.CalledProcessError) else "ERROR")
            timings.append((name, took, outcome))
            print(f"--- {name}: {outcome} in {took:.0f} s", flush=True)
            return False
    return _Step()


def sh(*args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    print("$ " + " ".join(args), flush=True)
    result = subprocess.run(list(args), **kw)
    if check and result.returncode != 0:
        raise Failed(f"{' '.join(args)} exited {result.returncode}")
    return result


def chroot(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return sh("chroot", str(root), *args, check=check, env=CHROOT_ENV)


def host_tools() -> None:
    missing = [p for p in HOST_PACKAGES if "install ok installed" not in subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", p], capture_output=True, text=True).stdout]
    if missing:
        sh("apt-get", "update", "-qq")
        sh("apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    binfmt = Path("/proc/sys/fs/binfmt_misc")
    if not (binfmt / "status").exists():
        sh("mount", "-t", "binfmt_misc", "binfmt_misc", str(binfmt))
    if not (binfmt / "qemu-aarch64").exists():
        sh("update-binfmts", "--enable", "qemu-aarch64")
    if "flags: " not in (binfmt / "qemu-aarch64").read_text() or "F" not in (binfmt / "qemu-aarch64").read_text().split("flags: ")[1].split()[0]:
        raise Failed("qemu-aarch64 is registered without the F flag: install qemu-user-static from Debian 12")


def host_mirror() -> str:
    """The Debian mirror this machine's apt uses (deb822 or one-line sources)."""
    sources = sorted(Path("/etc/apt/sources.list.d").glob("*.sources")) + [Path("/etc/apt/sources.list")]
    for path in sources:
        if not path.exists():
            continue
        text = path.read_text()
        for stanza in text.split("\n\n"):
            fields = {}
            for line in stanza.splitlines():
                if ":" in line and not line.lstrip().startswith("#"):
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.strip()
            if "bookworm" in fields.get("suites", "").split() and "main" in fields.get("components", "").split():
                return fields["uris"].split()[0]
        for line in text.splitlines():
            words = [w for w in line.split() if not w.startswith("[")]
            if len(words) >= 3 and words[0] == "deb" and words[2] == "bookworm":
                return words[1]
    return "http://deb.debian.org/debian"


def copy_host_trust(root: Path) -> None:
    # apt sources exactly as here (same mirror, same snapshot), and the CA
    # certificates this machine trusts, for pip over HTTPS.
    for src in [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*.sources"),
                *Path("/etc/apt/sources.list.d").glob("*.list")]:
        if src.exists():
            dest = root / str(src).lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)
    local = root / "usr/local/share/ca-certificates"
    local.mkdir(parents=True, exist_ok=True)
    for cert in Path("/usr/local/share/ca-certificates").rglob("*.crt"):
        shutil.copy2(cert, local / cert.name)
    shutil.copy2("/etc/ssl/certs/ca-certificates.crt", local / "host-bundle.crt")


def build_base() -> None:
    if (BASE / ".complete").exists():
        print(f"cached: {BASE} (remove it to make it anew)")
        return
    tmp = BASE.with_name(BASE.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    sh("debootstrap", "--arch=arm64", "--variant=minbase", f"--include={BASE_INCLUDE}", "bookworm", str(tmp), host_mirror())
    copy_host_trust(tmp)
    chroot(tmp, "update-ca-certificates")
    # Packages never start services in an image (what Debian's image builders do).
    policy = tmp / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    # What Raspberry Pi OS has on its boot partition, for the installer to edit.
    boot = tmp / "boot/firmware"
    boot.mkdir(parents=True, exist_ok=True)
    (boot / "config.txt").write_text("# For more options and information see\n# http://rptl.io/configtxt\ndtparam=audio=on\n"
                                     "camera_auto_detect=1\ndisplay_auto_detect=1\nauto_initramfs=1\n"
                                     "dtoverlay=vc4-kms-v3d\nmax_framebuffers=2\narm_64bit=1\n\n[all]\n")
    (boot / "cmdline.txt").write_text("console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 fsck.repair=yes rootwait\n")
    (tmp / ".complete").write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ\n", time.gmtime()))
    tmp.rename(BASE)


class Mounts:
    """/proc, /sys, /dev and the caches bound into the chroot, always unbound again."""

    def __init__(self, root: Path):
        self.root = root
        self.done: list[Path] = []

    def bind(self, src: Path, rel: str, *opts: str) -> None:
        target = self.root / rel
        target.mkdir(parents=True, exist_ok=True)
        sh("mount", *opts, str(src), str(target)) if opts else sh("mount", "--bind", str(src), str(target))
        self.done.append(target)

    def __enter__(self):
        self.bind(Path("proc"), "proc", "-t", "proc")
        self.bind(Path("/sys"), "sys")
        self.bind(Path("/dev"), "dev")
        self.bind(Path("/dev/pts"), "dev/pts")
        for name, rel in (("apt-archives", "var/cache/apt/archives"), ("pip", "root/.cache/pip")):
            (CACHE / name / "partial").mkdir(parents=True, exist_ok=True) if name == "apt-archives" else (CACHE / name).mkdir(parents=True, exist_ok=True)
            self.bind(CACHE / name, rel)
        return self

    def __exit__(self, *exc):
        for target in reversed(self.done):
            subprocess.run(["umount", "-l", str(target)])
        return False


def fresh_copy(work: Path) -> None:
    if work.exists():
        for mount in reversed(Path("/proc/mounts").read_text().splitlines()):
            point = mount.split()[1]
            if point.startswith(str(work) + "/"):
                subprocess.run(["umount", "-l", point])
        shutil.rmtree(work)
    sh("cp", "-a", "--reflink=auto", str(BASE), str(work))
    if not Path("/etc/apt/sources.list").exists():
        # debootstrap's one-line list beside this machine's deb822 sources: apt would read both.
        (work / "etc/apt/sources.list").unlink(missing_ok=True)
    shutil.copy2("/etc/resolv.conf", work / "etc/resolv.conf", follow_symlinks=True) if Path("/etc/resolv.conf").exists() else None
    # The source as a fresh clone would have it (tracked and new files, not build output).
    files = subprocess.run(["git", "-C", str(HERE), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           capture_output=True, text=True, check=True).stdout.split("\0")
    dest = work / str(SRC).lstrip("/")
    for rel in filter(None, files):
        src = HERE / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def test_requirements() -> list[str]:
    """pyproject's test extra, less congso's own extras (installed already)."""
    import tomllib

    extra = tomllib.loads((HERE / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    return [req for req in extra if not req.startswith("congso")]


def attempt(failures: list[str], name: str, fn) -> bool:
    try:
        with step(name):
            fn()
        return True
    except Failed as e:
        failures.append(f"{name}: {e}")
        return False


def install_and_check(work: Path, role: str, args: list[str], failures: list[str]) -> None:
    congso = "/opt/congso/venv/bin/congso"
    if not attempt(failures, f"install {role}", lambda: chroot(work, f"{SRC}/systemd/install.sh", role, *args)):
        return
    attempt(failures, f"checks {role}", lambda: chroot(work, congso, "install", role, "--check"))
    if role != "gateway":
        # Without the devices, failures are expected, each with its fix; a
        # crash, or a line lost to the table, is not.
        def selftest():
            # With the installed config, as the unit runs it (congso reads no file unless told).
            result = chroot(work, congso, "--config", "/etc/congso/congso.toml", "selftest", "--role", role, check=False)
            print(f"(exit {result.returncode}: an emulator has none of the devices)")
        attempt(failures, f"selftest {role}", selftest)


def main() -> int:
    failures: list[str] = []
    t0 = time.monotonic()
    print(f"congso pi-check: arm64 Debian 12 in {CACHE}")
    try:
        with step("host tools (qemu-user-static, debootstrap, binfmt)"):
            host_tools()
        with step("arm64 Debian 12 root filesystem"):
            build_base()
        # One fresh copy per role, as one SD card per role; the door's then
        # also gets the TV (a door and a TV on one Pi), for the quick tests,
        # which need every device library.
        for role, args in ROLES:
            work = WORK if role == "attendance" else CACHE / f"work-{role}"
            with step(f"fresh copy for {role}"):
                fresh_copy(work)
            with Mounts(work):
                if role == "gateway":
                    with step("emulation works"):
                        chroot(work, "sh", "-c", "uname -m; python3 --version; test ! -e /run/systemd/system && echo 'no systemd running: image-building mode'")
                install_and_check(work, role, args, failures)
        with Mounts(WORK):
            attempt(failures, "install signage beside the door", lambda: chroot(
                WORK, f"{SRC}/systemd/install.sh", "signage", "--node-id", "tv-1", "--gateway-host", "192.168.1.10"))
            attempt(failures, "versions", lambda: chroot(
                WORK, "env", "PYGAME_HIDE_SUPPORT_PROMPT=1", "/opt/congso/venv/bin/python", "-c",
                "import platform, sys, pygame, smartcard, lgpio, gpiozero\n"
                "from importlib.metadata import version\n"
                "from congso.devices.display import compiled_video_drivers\n"
                "print('python', sys.version.split()[0], platform.machine())\n"
                "print('pygame', pygame.version.ver, 'SDL', '.'.join(map(str, pygame.get_sdl_version())), pygame.__file__)\n"
                "print('SDL video drivers:', ', '.join(compiled_video_drivers()))\n"
                "print('pyscard', version('pyscard'), smartcard.__file__)\n"
                "print('lgpio', version('lgpio'), lgpio.__file__)\n"
                "print('gpiozero', version('gpiozero'), gpiozero.__file__)"))

            def quick_tests():
                chroot(WORK, "/opt/congso/venv/bin/python", "-m", "pip", "install", "--quiet", *test_requirements())
                chroot(WORK, "sh", "-c", f"cd {SRC} && /opt/congso/venv/bin/python -m pytest -q -p no:cacheprovider {QUICK_TESTS}")
            attempt(failures, "quick tests", quick_tests)
    except Failed as e:
        failures.append(str(e))
    print("\n=== summary")
    for name, took, outcome in timings:
        print(f"{outcome:7} {took:7.0f} s  {name}")
    print(f"total {time.monotonic() - t0:.0f} s; cache {CACHE}")
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("pi-check needs root (debootstrap, chroot, mounts): sudo make pi-check")
    # Stopped (kill, or Ctrl-C in a background job, which ignores SIGINT): unmount on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
