"""Install a congso role on Raspberry Pi OS bookworm (or Debian 12).

``congso install ROLE`` (or ``systemd/install.sh ROLE``) does, idempotently:

1. Debian packages for the role (apt-get; only those missing);
2. the ``congso`` user and its device groups (systemd-sysusers);
3. a virtualenv in /opt/congso/venv that sees the system's packages, with
   congso and the role's extras installed from the source tree: Debian's
   python3-pygame (on Debian's SDL, with KMSDRM) and python3-pyscard, pip's
   lgpio wheel (see packages.py for why);
4. /etc/congso/congso.toml from a template (0640, root:congso), never
   overwritten once it exists: the technician's edits are kept;
5. the systemd unit, enabled (and started when installing on the live system);
   in image-building mode (``--root DIR``, or no systemd running: a chroot,
   an SD card being prepared) units are enabled by links and nothing starts;
6. per role: the gateway gets Mosquitto on congso's generated configuration
   (per-node users, ACL, persistence in /var/lib/mosquitto/congso, a check
   that moves a corrupt persistence file aside before each start) and chrony
   serving time to the office LAN, and the office console
   (``congso-web.service``, HTTPS on port 8443 with a certificate from the
   office CA in /etc/congso/tls, ``[web]`` in the config); a node gets chrony pointed at the
   gateway; the door gets its UART (enable_uart, Bluetooth moved off the
   PL011, no serial console) and pn533_usb blacklisted (it would take the
   NFC reader from pcscd) plus a polkit rule letting congso use pcscd; the
   TV and kiosk get the KMS overlay (and the TV hdmi hotplug, so a TV
   switched off at boot still gets a picture later);
7. checks of what it installed, for real (``checks()``): pygame's SDL has
   KMSDRM, lgpio imports (and sees a GPIO chip), pyscard imports (and
   reaches pcscd); it fails with the fix if not. What needs the running
   Pi is reported as skipped in image-building mode.

Everything is written under ``root`` ("/" by default), so the tests install
into a temporary directory. ``uninstall`` removes what install added except
the configuration and the data (``purge`` removes those too).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import broker, office_ca
from .packages import DISPLAY_ROLES, EXTRAS, ROLES, debian
PREFIX = Path("/opt/congso")
VENV = PREFIX / "venv"
ETC = Path("/etc/congso")
# The office CA's certificate on every machine: the nodes' [mqtt] tls_ca.
OFFICE_CA = ETC / "office-ca.crt"
# The gateway's nightly backup (`congso gateway backup`) and its timer.
BACKUP_UNITS = ("congso-backup.service", "congso-backup.timer")
# The office console (`congso web run`) beside the gateway, HTTPS with the office CA's certificate.
WEB_UNIT = "congso-web.service"
WEB_TLS = ETC / "tls"
WEB_PORT = 8443
MARK = "# >>> congso {role} >>>", "# <<< congso {role} <<<"

SHARE = Path("share/congso")  # under the venv: the units etc. shipped in the wheel (pyproject data-files)

# The door's fingerprint module on GPIO 14/15 (pins 8/10). Pi 3 and 4: the
# full UART (PL011) is Bluetooth's unless disable-bt gives it to the pins.
# Pi 5: the pins' UART is UART0, off by default, /dev/ttyAMA0; Bluetooth has
# its own. The sections apply per model; [all] before and after, so the
# lines around the block keep their meaning.
DOOR_UART = [
    "[all]",
    "enable_uart=1",
    "[pi3]",
    "# Bluetooth off the PL011: GPIO 14/15 (/dev/ttyAMA0) is the fingerprint module's.",
    "dtoverlay=disable-bt",
    "[pi4]",
    "dtoverlay=disable-bt",
    "[pi5]",
    "# GPIO 14/15 is UART0 on a Pi 5: /dev/ttyAMA0 (serial0 is the debug connector).",
    "dtparam=uart0=on",
    "[all]",
]
# The hall TV, often a 65-inch 4K set: KMS for SDL's KMSDRM, and a picture
# even when the TV is off at boot. A Pi 3 cannot drive 4K, and a Pi 4 only at
# 30 Hz with its GPU at the limit: congso draws at 1080p there and the TV
# scales ([display] width/height override it; devices/display.py).
TV_CONFIG = [
    "[all]",
    "dtoverlay=vc4-kms-v3d",
    "# A TV switched off at boot still gets a picture when switched on.",
    "hdmi_force_hotplug=1",
    "# Overscan off: a modern TV shows every pixel.",
    "disable_overscan=1",
]

POLKIT_RULE = """// Installed by congso: the congso service may use the card reader through pcscd.
polkit.addRule(function(action, subject) {
    if ((action.id == "org.debian.pcsc-lite.access_pcsc" ||
         action.id == "org.debian.pcsc-lite.access_card") && subject.user == "congso") {
        return polkit.Result.YES;
    }
});
"""
PN533_BLACKLIST = """# Installed by congso: the kernel's NFC driver would claim the PN533/ACR122U
# reader before pcscd (libccid) can; congso reads cards through pcscd.
blacklist pn533_usb
blacklist pn533
blacklist nfc
"""


class InstallError(RuntimeError):
    pass


def find_source() -> Path:
    """The tree with systemd/: this checkout, or the copy installed with the package."""
    for candidate in (Path(__file__).resolve().parents[2], Path(sys.prefix) / SHARE):
        if (candidate / "systemd" / "congso-gateway.service").exists():
            return candidate
    return Path(__file__).resolve().parents[2]


def _extra_requirements(extras: list[str]) -> list[str]:
    """The requirements of congso's ``extras``, from the installed package's metadata."""
    from importlib import metadata

    wanted = []
    for req in metadata.requires("congso") or []:
        spec, _, marker = req.partition(";")
        if any(f'extra == "{e}"' in marker for e in extras):
            wanted.append(spec.strip())
    return wanted


def _venv_python() -> str:
    # Debian's python3: the venv sees Debian's python3-pygame and python3-pyscard, built for it.
    return "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable


@dataclass
class Options:
    role: str
    root: Path = Path("/")
    source: Path = field(default_factory=find_source)
    site: str = "ky-chau"
    site_name: str = "UBND xã Kỳ Châu"
    node_id: str = ""
    gateway_host: str = "gateway.local"
    nodes: list[str] = field(default_factory=list)  # gateway: the node ids of the office
    mqtt_password: str = ""
    ca_file: str = ""  # a node: the office CA (the gateway's /etc/congso/broker/tls/ca.crt) to trust
    lan: str = ""  # chrony "allow" on the gateway; empty: any client
    packages: bool = True
    venv: bool = True
    pip_args: list[str] = field(default_factory=list)
    python: str = field(default_factory=_venv_python)
    check: bool = True  # check what was installed, for real, at the end


@dataclass
class Report:
    changed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def note(self, changed: bool, what: str) -> None:
        (self.changed if changed else self.kept).append(what)


class Installer:
    def __init__(self, options: Options):
        if options.role not in ROLES:
            raise InstallError(f"unknown role {options.role!r}; choose one of {', '.join(ROLES)}")
        if options.role != "gateway" and not options.node_id:
            options.node_id = {"attendance": "door-1", "signage": "tv-1", "rating": "kiosk-1"}[options.role]
        self.o = options
        self.units = options.source / "systemd"
        if not (self.units / "congso-gateway.service").exists():
            raise InstallError(f"{options.source} is not a congso source tree (no systemd/ units): give --source")
        self.live = options.root.resolve() == Path("/")
        # Image-building mode: another root, or no systemd running (a chroot):
        # enable by links, start nothing, skip the checks that need the Pi running.
        self.image = not self.live or not Path("/run/systemd/system").is_dir()
        self.report = Report()
        self._web_changed = False

    # -- helpers ------------------------------------------------------------------
    def path(self, p: Path | str) -> Path:
        return self.o.root / str(p).lstrip("/")

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(list(args), capture_output=True, text=True)
        if check and result.returncode != 0:
            raise InstallError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr.strip() or result.stdout.strip()}")
        return result

    def write(self, target: Path | str, text: str, mode: int = 0o644, group: str | None = None, keep: bool = False) -> bool:
        """Write ``text`` unless the file already says it (or exists and ``keep``)."""
        path = self.path(target)
        if path.exists() and (keep or path.read_text(encoding="utf-8") == text):
            self.report.note(False, str(target))
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.congso-tmp")
        tmp.write_text(text, encoding="utf-8")
        os.chmod(tmp, mode)
        if group and self.live:
            shutil.chown(tmp, "root", group)
        os.replace(tmp, path)
        self.report.note(True, str(target))
        return True

    def block(self, target: Path | str, lines: list[str]) -> bool:
        """Keep this role's lines in a marked block of a file someone else owns (config.txt)."""
        path = self.path(target)
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        begin, end = (m.format(role=self.o.role) for m in MARK)
        block = "\n".join([begin, *lines, end])
        if begin in old and end in old:
            head, _, rest = old.partition(begin)
            _, _, tail = rest.partition(end)
            new = head + block + tail  # in place: the lines around it stay where they are
        else:
            new = (old.rstrip("\n") + "\n\n" if old.strip() else "") + block + "\n"
        if new == old:
            self.report.note(False, f"{target} (congso block)")
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(new, encoding="utf-8")
        self.report.note(True, f"{target} (congso block)")
        return True

    def boot_file(self, name: str) -> Path:
        # bookworm: /boot/firmware; older Raspberry Pi OS: /boot.
        for candidate in (Path("/boot/firmware") / name, Path("/boot") / name):
            if self.path(candidate).exists():
                return candidate
        return Path("/boot/firmware") / name

    # -- steps ----------------------------------------------------------------------
    def install(self) -> Report:
        self.packages()
        self.user()
        self.virtualenv()
        self.config()
        getattr(self, f"role_{self.o.role}")()
        self.office_ca()
        self.time_service()
        self.unit()
        if self.o.check:
            self.checks()
        return self.report

    def packages(self) -> None:
        wanted = debian(self.o.role)
        if not (self.o.packages and self.live):
            self.report.skipped.append("Debian packages: " + " ".join(wanted))
            return
        missing = [p for p in wanted if self.run("dpkg-query", "-W", "-f=${Status}", p, check=False).stdout.find("install ok installed") < 0]
        if missing:
            self.run("apt-get", "update")
            env_cmd = ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "--no-install-recommends", *missing]
            self.run(*env_cmd)
        self.report.note(bool(missing), "Debian packages" + (": " + " ".join(missing) if missing else ""))

    def user(self) -> None:
        changed = self.write("/etc/sysusers.d/congso.conf", (self.units / "sysusers-congso.conf").read_text())
        # With --root, sysusers reads <root>/etc/sysusers.d/ itself.
        args = ["systemd-sysusers", "/etc/sysusers.d/congso.conf"] if self.live else ["systemd-sysusers", f"--root={self.o.root}"]
        if shutil.which("systemd-sysusers"):
            self.run(*args)
        else:
            self.report.skipped.append("user congso (systemd-sysusers not found)")
        self.report.note(changed, "user congso and its groups")

    def virtualenv(self) -> None:
        venv = self.path(VENV)
        if not self.o.venv:
            self.report.skipped.append(f"virtualenv {VENV}")
            return
        fresh = not (venv / "bin" / "python").exists()
        if fresh:
            self.run(self.o.python, "-m", "venv", "--system-site-packages", str(venv))
        else:
            self._see_system_packages(venv / "pyvenv.cfg")
        python = str(venv / "bin" / "python")
        pip = [python, "-m", "pip", "install", "--quiet", *self.o.pip_args]
        extras = EXTRAS[self.o.role]
        if (self.o.source / "pyproject.toml").exists():
            self.run(*pip, f"{self.o.source}[{','.join(extras)}]" if extras else str(self.o.source))
            what = f"congso from {self.o.source}"
        else:
            # Run from an installed congso: it stays; the role's extras are added.
            wanted = _extra_requirements(extras)
            if wanted:
                self.run(*pip, *wanted)
            what = "the installed congso" + (f" with {', '.join(extras)}" if extras else "")
        if self.o.role in DISPLAY_ROLES:
            # A pygame of the venv's own (pip's wheel, e.g. from a gateway
            # install on the same machine) hides Debian's, whose SDL has KMSDRM.
            _, where = self._probe("import pygame; print(pygame.__file__)")
            if where.startswith(str(venv) + "/"):
                self.run(python, "-m", "pip", "uninstall", "--quiet", "-y", "pygame")
                what += "; the venv's own pygame removed for Debian's"
        self.report.note(True, f"virtualenv {VENV} ({what})")

    def _see_system_packages(self, cfg: Path) -> None:
        # A venv made by an older installer, without the system's packages.
        text = cfg.read_text() if cfg.exists() else ""
        if "include-system-site-packages = false" in text:
            cfg.write_text(text.replace("include-system-site-packages = false", "include-system-site-packages = true"))
            self.report.note(True, f"{VENV} sees the system's packages")

    def config(self) -> None:
        o = self.o
        lines = [
            f"# congso settings for this {o.role} (see the README's Settings table).",
            "# Every key can also be set by CONGSO_<SECTION>_<KEY> in the unit's environment.",
            "[site]",
            f'id = "{o.site}"',
            f'name = "{o.site_name}"',
            'timezone = "Asia/Ho_Chi_Minh"',
            "",
        ]
        if o.role != "gateway":
            lines += ["[node]", f'id = "{o.node_id}"', ""]
        user = "gateway" if o.role == "gateway" else o.node_id
        password = o.mqtt_password or ""
        # The gateway reaches its broker on loopback; a node over the LAN, with TLS only.
        lines += [
            "[mqtt]",
            f'host = "{"127.0.0.1" if o.role == "gateway" else o.gateway_host}"',
            f"port = {broker.DEFAULT_PORT if o.role == 'gateway' else broker.TLS_PORT}",
            *([] if o.role == "gateway" else [f'tls_ca = "{OFFICE_CA}"']),
            f'username = "{user}"',
            (f'password = "{password}"' if password else
             f'password = ""  # from /etc/congso/broker/credentials.json on the gateway ("{user}")'),
            "",
            "[data]",
            'dir = "/var/lib/congso"',
            "",
        ]
        lines += {
            "gateway": [
                "[backup]",
                "# The nightly copy of the office's data (congso-backup.timer, 02:30): set dir to",
                "# a USB stick's mount point; empty keeps it on this SD card (/var/lib/congso/backups).",
                'dir = ""',
                "keep = 14",
                "",
            ],
            # ttyAMA0 is the GPIO 14/15 UART on a Pi 3 and 4 (PL011, with
            # Bluetooth moved off it) and on a Pi 5 (UART0, dtparam=uart0=on);
            # /dev/serial0 is the debug connector's UART on a Pi 5.
            "attendance": ["[fingerprint]", 'port = "/dev/ttyAMA0"', "", "[gpio]",
                           '# green_led = "GPIO17"', '# red_led = "GPIO27"', '# buzzer = "GPIO22"', '# relay = "GPIO23"',
                           '# touch = "GPIO24"', ""],
            # Slides' pictures and clips come from the console's HTTPS server, as this TV.
            "signage": ["[display]", 'driver = "kmsdrm"', "rotation = 0", "", "[signage]",
                        f'media_url = "https://{o.gateway_host}:{WEB_PORT}"', ""],
            "rating": ["[display]", 'driver = "kmsdrm"', "", "[rating]", 'desk_id = "mot-cua-1"', "levels = 3", ""],
        }[o.role]
        self.write(ETC / "congso.toml", "\n".join(lines), mode=0o640, group="congso", keep=True)

    def role_gateway(self) -> None:
        out = self.path(ETC / "broker")
        data = self.path("/var/lib/mosquitto/congso")
        nodes = self.o.nodes or ["door-1", "tv-1", "kiosk-1"]
        before = (out / "acl").read_text() if (out / "acl").exists() else None
        # TLS on the LAN with the office's own CA (made once, kept), plain MQTT on loopback only.
        creds = broker.generate(out, self.o.site, nodes, run_as="mosquitto", data_dir=data, office_tls=True,
                                tls_hosts=[self.o.gateway_host])
        # The generated conf names paths inside the temporary root; on the Pi they are the real ones.
        conf = (out / "mosquitto.conf").read_text().replace(str(self.o.root.resolve()).rstrip("/") + "/", "/") if not self.live else None
        if conf is not None:
            (out / "mosquitto.conf").write_text(conf)
        self.report.note(before != (out / "acl").read_text(), "/etc/congso/broker (users: " + ", ".join(creds) + ")")
        if not self.o.mqtt_password:
            # The gateway's own password goes into its config (0640, group congso).
            cfg = self.path(ETC / "congso.toml")
            text = cfg.read_text()
            marker = 'password = ""  # from /etc/congso/broker/credentials.json on the gateway ("gateway")'
            if marker in text:
                cfg.write_text(text.replace(marker, f'password = "{creds["gateway"]}"'))
        self.write("/etc/systemd/system/mosquitto.service.d/congso.conf", (self.units / "mosquitto-congso.conf").read_text())
        # The key that seals fingerprint templates in the database: 0600 root, outside it; the
        # gateway's unit reads it as a systemd credential (LoadCredential=). Made once, kept.
        from ..gateway import privacy
        key = self.path(ETC / privacy.KEY_FILE)
        made = privacy.create_key(key)
        if self.live:
            shutil.chown(key, "root", "root")
        self.report.note(made, f"{ETC / privacy.KEY_FILE} (0600 root: the fingerprint templates' key; back it up apart)")
        for name in BACKUP_UNITS:  # the nightly backup; enabled with the gateway's unit
            self.write(f"/etc/systemd/system/{name}", (self.units / name).read_text())
        self.web_console()

    def web_console(self) -> None:
        """The console's unit, its HTTPS certificate from the office CA, its [web] settings."""
        self.write(f"/etc/systemd/system/{WEB_UNIT}", (self.units / WEB_UNIT).read_text())
        hostname_file = self.path("/etc/hostname")
        name = hostname_file.read_text().strip() if not self.live and hostname_file.is_file() else None
        # An image being built: the build machine's LAN addresses are not the Pi's
        # (a re-run on the Pi adds its own and issues the certificate again).
        hosts = office_ca.web_hosts([self.o.gateway_host], name=name, addresses=self.live)
        try:
            crt, key, made = office_ca.ensure_web(self.path(ETC / "broker" / "tls"), self.path(WEB_TLS), hosts,
                                                  group="congso" if self.live else None)
        except office_ca.OfficeCaError as e:
            raise InstallError(f"the console's certificate: {e}") from None
        self._web_changed = bool(made)
        self.report.note(bool(made), f"{WEB_TLS}/web.crt and web.key (office CA; {', '.join(hosts)})")
        cfg = self.path(ETC / "congso.toml")
        text = cfg.read_text(encoding="utf-8")
        if not any(line.strip() == "[web]" for line in text.splitlines()):
            # Added once, also to a config an older installer wrote; edits to it are kept.
            cfg.write_text(text.rstrip("\n") + "\n\n" + "\n".join([
                "[web]",
                "# The office console: https://<this gateway>:8443/ from the office PCs (docs/console.md).",
                "# Beyond 127.0.0.1 it serves HTTPS only, with the office CA's certificate.",
                'host = "0.0.0.0"',
                f"port = {WEB_PORT}",
                f'tls_cert = "{WEB_TLS / "web.crt"}"',
                f'tls_key = "{WEB_TLS / "web.key"}"',
                "idle_minutes = 30",
            ]) + "\n", encoding="utf-8")
            self._web_changed = True
            self.report.note(True, f"{ETC / 'congso.toml'} [web] (the console on port {WEB_PORT}, HTTPS)")

    def office_ca(self) -> None:
        """Put the office CA where [mqtt] tls_ca says: the gateway's own, or --ca-file on a node."""
        made = self.path(ETC / "broker" / "tls" / "ca.crt")
        source = Path(self.o.ca_file) if self.o.ca_file else (made if made.is_file() else None)
        if source is None:
            if not self.path(OFFICE_CA).is_file():
                self.report.skipped.append(f"{OFFICE_CA}: copy /etc/congso/broker/tls/ca.crt from the gateway here "
                                           "(or give --ca-file); until then this node cannot connect")
            return
        if not source.is_file():
            raise InstallError(f"--ca-file {source} does not exist")
        text = source.read_text(encoding="ascii", errors="replace")
        if "-----BEGIN CERTIFICATE-----" not in text:
            raise InstallError(f"{source} is not a PEM certificate (the gateway's /etc/congso/broker/tls/ca.crt)")
        self.write(OFFICE_CA, text, mode=0o644)

    def role_attendance(self) -> None:
        self.block(self.boot_file("config.txt"), DOOR_UART)
        cmdline = self.path(self.boot_file("cmdline.txt"))
        if cmdline.exists():
            old = cmdline.read_text()
            words = [w for w in old.split() if not w.startswith(("console=serial0", "console=ttyAMA0", "console=ttyS0"))]
            new = " ".join(words) + "\n"
            if new != old:
                cmdline.write_text(new)
            self.report.note(new != old, f"{self.boot_file('cmdline.txt')} (no serial console)")
        self.write("/etc/modprobe.d/congso-pn533.conf", PN533_BLACKLIST)
        self.write("/etc/polkit-1/rules.d/50-congso-pcscd.rules", POLKIT_RULE)

    def role_signage(self) -> None:
        self.block(self.boot_file("config.txt"), TV_CONFIG)

    def role_rating(self) -> None:
        self.block(self.boot_file("config.txt"), ["dtoverlay=vc4-kms-v3d"])

    def time_service(self) -> None:
        if self.o.role == "gateway":
            allow = f"allow {self.o.lan}" if self.o.lan else "allow"
            text = ("# Installed by congso: the gateway serves time to the office's nodes,\n"
                    "# and keeps serving (as stratum 10) when the internet is gone.\n"
                    f"{allow}\nlocal stratum 10 orphan\n")
        else:
            existing = self.path("/etc/chrony/conf.d/congso.conf")
            if existing.exists() and "serves time" in existing.read_text():
                self.report.note(False, "/etc/chrony/conf.d/congso.conf (this machine is the gateway: it serves time)")
                return
            text = ("# Installed by congso: this node takes its time from the office gateway.\n"
                    f"server {self.o.gateway_host} iburst prefer\n")
        self.write("/etc/chrony/conf.d/congso.conf", text)

    def unit(self) -> None:
        name = f"congso-{self.o.role}.service"
        # The gateway's companions: the console and the nightly backup's timer.
        timers = [WEB_UNIT, BACKUP_UNITS[1]] if self.o.role == "gateway" else []
        self.write(f"/etc/systemd/system/{name}", (self.units / name).read_text())
        # A symlink to the unit's path inside the root: dangling when seen from outside.
        enabled = self.path(f"/etc/systemd/system/multi-user.target.wants/{name}").is_symlink()
        if not self.image:
            self.run("systemctl", "daemon-reload")
            self.run("systemctl", "enable", "--now", name, *timers)
            if self.o.role == "gateway":
                self.run("systemctl", "restart", "mosquitto.service")
                if self._web_changed:  # a new certificate or [web] section: the console reads them at start
                    self.run("systemctl", "restart", WEB_UNIT)
        else:
            # Links only: nothing runs in an image (or a chroot) to start it.
            self.run("systemctl", f"--root={self.o.root}", "enable", name, *timers)
            starting = f"{name} and {WEB_UNIT}" if self.o.role == "gateway" else name
            self.report.skipped.append(f"starting {starting} (image-building mode: they start at the first boot)")
        self.report.note(not enabled, f"{name} enabled")

    # -- checks: what was installed works, for real --------------------------------
    def checks(self) -> None:
        """Each check of this role; InstallError with every failure and its fix."""
        failures = []
        for name, ok, detail, fix in self._check_results():
            if ok is None:
                self.report.skipped.append(f"check {name}: {detail}")
            elif ok:
                self.report.kept.append(f"check {name}: {detail}")
            else:
                failures.append(f"check {name} failed: {detail}\n  fix: {fix}")
        if failures:
            raise InstallError("what was installed does not work:\n" + "\n".join(failures))

    def _probe(self, code: str) -> tuple[bool, str]:
        python = self.path(VENV / "bin" / "python")
        if not os.access(python, os.X_OK):
            return False, f"no {VENV}/bin/python"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SDL_", "PYTHON"))}
        env["PYGAME_HIDE_SUPPORT_PROMPT"] = "1"
        result = subprocess.run([str(python), "-c", code], capture_output=True, text=True, env=env, timeout=300)
        lines = (result.stdout.strip() or result.stderr.strip()).splitlines()
        return result.returncode == 0, lines[-1] if lines else ""

    def _check_results(self):
        role, pip = self.o.role, f"{VENV}/bin/pip"
        ok, out = self._probe("import congso.cli; print('imports')")
        yield "congso", ok, out, f"sudo {pip} install {self.o.source}"
        if role == "gateway":
            ok, out = self._probe("import argon2, uvicorn, congso.web.app; print('the console (congso web run) imports: '"
                                  " f'uvicorn {uvicorn.__version__}')")
            yield "console", ok, out, f"sudo {pip} install {self.o.source} (fastapi, uvicorn, jinja2, argon2-cffi)"
        if role in DISPLAY_ROLES:
            ok, out = self._probe(
                "import pygame, sys; from congso.devices.display import compiled_video_drivers, has_driver\n"
                "drivers = compiled_video_drivers(); where = 'Debian' if pygame.__file__.startswith('/usr/lib/') else pygame.__file__\n"
                "print(f'pygame {pygame.version.ver} ({where}), SDL {\".\".join(map(str, pygame.get_sdl_version()))}: {\", \".join(drivers or [\"?\"])}')\n"
                "sys.exit(0 if has_driver(drivers, 'kmsdrm') and drivers is not None else 1)")
            yield ("pygame has KMSDRM", ok, out,
                   f"sudo {pip} uninstall -y pygame; sudo apt install python3-pygame (Debian's pygame, on Debian's SDL with KMSDRM)")
        if "gpio" in EXTRAS[role]:
            ok, out = self._probe("import lgpio, os; print('lgpio imports from', os.path.dirname(lgpio.__file__))")
            yield "lgpio imports", ok, out, f"sudo {pip} install lgpio (Debian 12 has no python3-lgpio; pip's wheel works in the venv)"
            if self.image:
                yield "lgpio sees a GPIO chip", None, "needs the running Pi (image-building mode)", ""
            else:
                ok, out = self._probe(
                    "import glob, lgpio\n"
                    "chips = sorted(glob.glob('/dev/gpiochip*'))\n"
                    "labels = []\n"
                    "for c in chips:\n"
                    "    h = lgpio.gpiochip_open(int(c[len('/dev/gpiochip'):])); labels.append(f'{c} {lgpio.gpio_get_chip_info(h)[2]}'); lgpio.gpiochip_close(h)\n"
                    "print(', '.join(labels)); raise SystemExit(0 if labels else 1)")
                yield ("lgpio sees a GPIO chip", ok, out or "no /dev/gpiochip*",
                       "run on the Pi itself; the congso user needs the gpio group (sudo adduser congso gpio)")
        if "card" in EXTRAS[role]:
            ok, out = self._probe("import smartcard, os; print('pyscard imports from', os.path.dirname(smartcard.__file__))")
            yield "pyscard imports", ok, out, "sudo apt install python3-pyscard (the venv sees Debian's, built for the Pi)"
            if self.image:
                yield "pyscard reaches pcscd", None, "needs the running Pi (image-building mode)", ""
            else:
                ok, out = self._probe(
                    "from smartcard.System import readers\n"
                    "r = readers(); print(f'pcscd answers: {len(r)} reader(s)' + (': ' + ', '.join(map(str, r)) if r else ''))")
                yield "pyscard reaches pcscd", ok, out, "sudo systemctl enable --now pcscd.socket (and sudo apt install pcscd libccid)"


    # -- uninstall -------------------------------------------------------------------
    def uninstall(self, purge: bool = False) -> Report:
        name = f"congso-{self.o.role}.service"
        unit = self.path(f"/etc/systemd/system/{name}")
        if unit.exists():
            if self.live:
                self.run("systemctl", "disable", "--now", name, check=False)
            else:
                self.run("systemctl", f"--root={self.o.root}", "disable", name, check=False)
        removed = [f"/etc/systemd/system/{name}"]
        chrony = self.path("/etc/chrony/conf.d/congso.conf")
        if chrony.exists() and (self.o.role == "gateway") == ("serves time" in chrony.read_text()):
            removed.append("/etc/chrony/conf.d/congso.conf")
        if self.o.role == "gateway":
            removed.append("/etc/systemd/system/mosquitto.service.d/congso.conf")
            if self.path(f"/etc/systemd/system/{WEB_UNIT}").exists():
                if self.live:
                    self.run("systemctl", "disable", "--now", WEB_UNIT, check=False)
                else:
                    self.run("systemctl", f"--root={self.o.root}", "disable", WEB_UNIT, check=False)
            removed.append(f"/etc/systemd/system/{WEB_UNIT}")
            if self.path(f"/etc/systemd/system/{BACKUP_UNITS[1]}").exists():
                self.run("systemctl", *([] if self.live else [f"--root={self.o.root}"]), "disable", BACKUP_UNITS[1], check=False)
            removed += [f"/etc/systemd/system/{n}" for n in BACKUP_UNITS]
        if self.o.role == "attendance":
            removed += ["/etc/modprobe.d/congso-pn533.conf", "/etc/polkit-1/rules.d/50-congso-pcscd.rules"]
        for target in removed:
            path = self.path(target)
            if path.exists():
                path.unlink()
                self.report.changed.append(f"removed {target}")
        config_txt = self.path(self.boot_file("config.txt"))
        if config_txt.exists() and MARK[0].format(role=self.o.role) in config_txt.read_text():
            config_txt.write_text(_strip_block(config_txt.read_text(), self.o.role))
            self.report.changed.append(f"removed the congso {self.o.role} block of {self.boot_file('config.txt')}")
        if purge:
            for target in (ETC, Path("/var/lib/congso"), PREFIX, Path("/var/lib/mosquitto/congso"), Path("/etc/sysusers.d/congso.conf")):
                path = self.path(target)
                if path.is_dir():
                    shutil.rmtree(path)
                    self.report.changed.append(f"removed {target}")
                elif path.exists():
                    path.unlink()
                    self.report.changed.append(f"removed {target}")
        else:
            self.report.kept += [str(ETC), "/var/lib/congso", str(PREFIX)]
        if self.live:
            self.run("systemctl", "daemon-reload", check=False)
        return self.report


def _strip_block(text: str, role: str) -> str:
    begin, end = (m.format(role=role) for m in MARK)
    if begin not in text:
        return text
    head, _, rest = text.partition(begin)
    _, _, tail = rest.partition(end)
    return (head.rstrip("\n") + "\n" + tail.lstrip("\n")).lstrip("\n") if head.strip() else tail.lstrip("\n")
