"""Install a congso role on Raspberry Pi OS bookworm (or Debian 12).

``congso install ROLE`` (or ``systemd/install.sh ROLE``) does, idempotently:

1. Debian packages for the role (apt-get; only those missing);
2. the ``congso`` user and its device groups (systemd-sysusers);
3. a virtualenv in /opt/congso/venv with congso installed from the source
   tree (for a TV or kiosk, pygame is built against Debian's SDL, which has
   the kmsdrm driver that pip's wheel lacks);
4. /etc/congso/congso.toml from a template (0640, root:congso), never
   overwritten once it exists: the technician's edits are kept;
5. the systemd unit, enabled (and started when installing on the live system);
6. per role: the gateway gets Mosquitto on congso's generated configuration
   (per-node users, ACL, persistence in /var/lib/mosquitto/congso, a check
   that moves a corrupt persistence file aside before each start) and chrony
   serving time to the office LAN; a node gets chrony pointed at the
   gateway; the door gets its UART (enable_uart, Bluetooth moved off the
   PL011, no serial console) and pn533_usb blacklisted (it would take the
   NFC reader from pcscd) plus a polkit rule letting congso use pcscd; the
   TV and kiosk get the KMS overlay (and the TV hdmi hotplug, so a TV
   switched off at boot still gets a picture later).

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

from . import broker

ROLES = ("gateway", "attendance", "signage", "rating")
PREFIX = Path("/opt/congso")
VENV = PREFIX / "venv"
ETC = Path("/etc/congso")
MARK = "# >>> congso {role} >>>", "# <<< congso {role} <<<"

COMMON_PACKAGES = ["python3-venv", "python3-dev", "gcc", "tzdata", "chrony"]
PACKAGES = {
    "gateway": ["mosquitto", "mosquitto-clients", "sqlite3"],
    "attendance": ["pcscd", "libccid", "pcsc-tools", "libpcsclite-dev", "swig"],
    # pygame built against Debian's SDL (kmsdrm); v4l-utils gives cec-ctl for the TV.
    "signage": ["fonts-dejavu-core", "v4l-utils", "libsdl2-dev", "libsdl2-ttf-dev", "libsdl2-image-dev",
                "libsdl2-mixer-dev", "libfreetype-dev", "libportmidi-dev", "libjpeg-dev", "pkg-config"],
    "rating": ["fonts-dejavu-core", "libsdl2-dev", "libsdl2-ttf-dev", "libsdl2-image-dev",
               "libsdl2-mixer-dev", "libfreetype-dev", "libportmidi-dev", "libjpeg-dev", "pkg-config"],
}

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


@dataclass
class Options:
    role: str
    root: Path = Path("/")
    source: Path = Path(__file__).resolve().parents[2]
    site: str = "ky-chau"
    site_name: str = "UBND xã Kỳ Châu"
    node_id: str = ""
    gateway_host: str = "gateway.local"
    nodes: list[str] = field(default_factory=list)  # gateway: the node ids of the office
    mqtt_password: str = ""
    lan: str = ""  # chrony "allow" on the gateway; empty: any client
    packages: bool = True
    venv: bool = True
    pip_args: list[str] = field(default_factory=list)
    python: str = sys.executable


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
        self.report = Report()

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
        self.time_service()
        self.unit()
        return self.report

    def packages(self) -> None:
        wanted = COMMON_PACKAGES + PACKAGES[self.o.role]
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
            self.run(self.o.python, "-m", "venv", str(venv))
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *self.o.pip_args]
        if self.o.role in ("signage", "rating") and "--no-deps" not in self.o.pip_args:
            # The wheel's SDL has no kmsdrm: build pygame on Debian's SDL.
            self.run(*pip, "--no-binary", "pygame", "pygame>=2.5,<3")
        self.run(*pip, str(self.o.source))
        self.report.note(True, f"virtualenv {VENV} (congso from {self.o.source})")

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
        lines += [
            "[mqtt]",
            f'host = "{"127.0.0.1" if o.role == "gateway" else o.gateway_host}"',
            "port = 1883",
            f'username = "{user}"',
            (f'password = "{password}"' if password else
             f'password = ""  # from /etc/congso/broker/credentials.json on the gateway ("{user}")'),
            "",
            "[data]",
            'dir = "/var/lib/congso"',
            "",
        ]
        lines += {
            "gateway": [],
            "attendance": ["[fingerprint]", 'port = "/dev/serial0"', "", "[gpio]",
                           '# green_led = "GPIO17"', '# red_led = "GPIO27"', '# buzzer = "GPIO22"', '# relay = "GPIO23"',
                           '# touch = "GPIO24"', ""],
            "signage": ["[display]", 'driver = "kmsdrm"', "rotation = 0", ""],
            "rating": ["[display]", 'driver = "kmsdrm"', "", "[rating]", 'desk_id = "mot-cua-1"', "levels = 3", ""],
        }[o.role]
        self.write(ETC / "congso.toml", "\n".join(lines), mode=0o640, group="congso", keep=True)

    def role_gateway(self) -> None:
        out = self.path(ETC / "broker")
        data = self.path("/var/lib/mosquitto/congso")
        nodes = self.o.nodes or ["door-1", "tv-1", "kiosk-1"]
        before = (out / "acl").read_text() if (out / "acl").exists() else None
        creds = broker.generate(out, self.o.site, nodes, run_as="mosquitto", data_dir=data)
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

    def role_attendance(self) -> None:
        self.block(self.boot_file("config.txt"), ["enable_uart=1", "# Bluetooth off the PL011 UART: /dev/serial0 is the fingerprint module.", "dtoverlay=disable-bt"])
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
        self.block(self.boot_file("config.txt"), ["dtoverlay=vc4-kms-v3d", "# A TV switched off at boot still gets a picture when switched on.", "hdmi_force_hotplug=1"])

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
        self.write(f"/etc/systemd/system/{name}", (self.units / name).read_text())
        # A symlink to the unit's path inside the root: dangling when seen from outside.
        enabled = self.path(f"/etc/systemd/system/multi-user.target.wants/{name}").is_symlink()
        if self.live:
            self.run("systemctl", "daemon-reload")
            self.run("systemctl", "enable", "--now", name)
            if self.o.role == "gateway":
                self.run("systemctl", "restart", "mosquitto.service")
        else:
            self.run("systemctl", f"--root={self.o.root}", "enable", name)
        self.report.note(not enabled, f"{name} enabled")

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
