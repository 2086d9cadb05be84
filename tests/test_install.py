"""`congso install ROLE` into a temporary root: units verified by systemd, idempotent, uninstallable."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from congso.ops import broker as broker_mod

from conftest import run_congso

ROLES = ["gateway", "attendance", "signage", "rating"]
SOURCE = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """A Raspberry Pi OS root in miniature: boot files and systemd's own units."""
    root = tmp_path_factory.mktemp("pi-root")
    boot = root / "boot" / "firmware"
    boot.mkdir(parents=True)
    (boot / "config.txt").write_text("# Raspberry Pi config\ndtparam=audio=on\ncamera_auto_detect=1\n")
    (boot / "cmdline.txt").write_text("console=serial0,115200 console=tty1 root=PARTUUID=6c586e13-02 rootfstype=ext4 fsck.repair=yes rootwait\n")
    (root / "usr" / "lib" / "systemd").mkdir(parents=True)
    shutil.copytree("/usr/lib/systemd/system", root / "usr" / "lib" / "systemd" / "system", symlinks=True)
    return root


def install(root: Path, role: str, *extra: str):
    # --no-check: no Debian packages here, so the venv lacks what the checks test (test_checks_* do them).
    result = run_congso("install", role, "--root", str(root), "--source", str(SOURCE), "--no-packages", "--no-check", *extra, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def verify(root: Path, unit: str) -> subprocess.CompletedProcess:
    return subprocess.run(["systemd-analyze", "verify", f"--root={root}", f"/etc/systemd/system/{unit}"],
                          capture_output=True, text=True)


def test_every_role_installs_verifies_and_is_idempotent(image):
    # The first role makes the virtualenv for real (congso itself; its
    # dependencies would come from PyPI on a Pi), the others reuse it.
    install(image, "gateway", "--pip-arg=--no-deps", "--nodes", "door-1,tv-1,kiosk-1", "--lan", "192.168.1.0/24")
    assert os.access(image / "opt/congso/venv/bin/congso", os.X_OK)
    for role in ROLES[1:]:
        install(image, role, "--no-venv", "--gateway-host", "192.168.1.10")

    checked = verify(image, "congso-web.service")  # the console, installed and enabled with the gateway
    assert checked.returncode == 0 and not checked.stderr.strip(), f"congso-web.service: {checked.stderr}"
    assert (image / "etc/systemd/system/multi-user.target.wants/congso-web.service").is_symlink()
    for role in ROLES:
        unit = f"congso-{role}.service"
        checked = verify(image, unit)
        assert checked.returncode == 0 and not checked.stderr.strip(), f"{unit}: {checked.stderr}"
        assert (image / f"etc/systemd/system/multi-user.target.wants/{unit}").is_symlink()
        text = (image / f"etc/systemd/system/{unit}").read_text()
        for needed in ("Type=notify", "WatchdogSec=", "Restart=always", "StartLimitBurst=", "User=congso",
                       "ProtectSystem=strict", "ReadWritePaths=/var/lib/congso", "PrivateTmp=yes", "NoNewPrivileges=yes"):
            assert needed in text, f"{unit} lacks {needed}"
    assert "SupplementaryGroups=dialout gpio" in (image / "etc/systemd/system/congso-attendance.service").read_text()
    assert "video render input" in (image / "etc/systemd/system/congso-signage.service").read_text()

    # Mosquitto runs on the generated config; the drop-in passes systemd's
    # check (the binaries the mosquitto package puts on a Pi, copied in).
    for binary in ("/usr/sbin/mosquitto", "/bin/kill", "/bin/mkdir", "/bin/chown"):
        (image / binary.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(Path(binary).resolve(), image / binary.lstrip("/"))
    checked = verify(image, "mosquitto.service")
    assert checked.returncode == 0, checked.stderr
    conf = (image / "etc/congso/broker/mosquitto.conf").read_text()
    assert "password_file /etc/congso/broker/passwd" in conf and "persistence_location /var/lib/mosquitto/congso/" in conf
    assert str(image) not in conf
    assert "allow_anonymous false" in conf and "autosave_interval 30" in conf
    # hashes only; group mosquitto may read them (the console checks a TV's login for slide files)
    assert oct((image / "etc/congso/broker/passwd").stat().st_mode & 0o777) in ("0o600", "0o640")
    assert "user door-1" in (image / "etc/congso/broker/acl").read_text()

    # Config: 0640, the gateway's own broker password filled in, a node's left to the technician.
    config = image / "etc/congso/congso.toml"
    assert oct(config.stat().st_mode & 0o777) == "0o640"
    assert 'username = "gateway"' in config.read_text() and 'password = ""' not in config.read_text()

    # Time: this machine is the gateway, so it serves the LAN (the nodes installed after it leave that alone).
    assert "allow 192.168.1.0/24" in (image / "etc/chrony/conf.d/congso.conf").read_text()

    # Door: UART on, Bluetooth off it, no serial console, pn533 blacklisted, pcscd allowed.
    boot = (image / "boot/firmware/config.txt").read_text()
    assert "enable_uart=1" in boot and "dtoverlay=disable-bt" in boot and "dtparam=audio=on" in boot
    assert "dtoverlay=vc4-kms-v3d" in boot and "hdmi_force_hotplug=1" in boot  # the TV's and kiosk's blocks too
    assert "console=serial0" not in (image / "boot/firmware/cmdline.txt").read_text()
    assert "console=tty1" in (image / "boot/firmware/cmdline.txt").read_text()
    assert "blacklist pn533_usb" in (image / "etc/modprobe.d/congso-pn533.conf").read_text()
    assert "congso" in (image / "etc/polkit-1/rules.d/50-congso-pcscd.rules").read_text()

    # The user and its device groups.
    passwd = (image / "etc/passwd").read_text()
    group = (image / "etc/group").read_text()
    assert sum(line.startswith("congso:") for line in passwd.splitlines()) == 1
    for g in ("dialout", "gpio", "video", "render", "input"):
        assert any(line.startswith(f"{g}:") and "congso" in line for line in group.splitlines()), g

    # Again: nothing changes, the technician's config edits survive.
    config.write_text(config.read_text() + "\n# edited by the technician\n")
    snapshot = {p: p.read_bytes() for p in image.rglob("*") if p.is_file() and "opt/congso" not in str(p)}
    again = install(image, "attendance", "--no-venv", "--gateway-host", "192.168.1.10")
    assert "changed" not in again, again
    after = {p: p.read_bytes() for p in image.rglob("*") if p.is_file() and "opt/congso" not in str(p)}
    assert after == snapshot
    assert "# edited by the technician" in config.read_text()


def test_a_node_takes_its_time_from_the_gateway(tmp_path):
    install(tmp_path, "signage", "--no-venv", "--gateway-host", "192.168.1.10", "--node-id", "tv-2")
    assert "server 192.168.1.10 iburst prefer" in (tmp_path / "etc/chrony/conf.d/congso.conf").read_text()
    config = (tmp_path / "etc/congso/congso.toml").read_text()
    assert 'id = "tv-2"' in config and 'username = "tv-2"' in config and 'driver = "kmsdrm"' in config
    assert (tmp_path / "boot/firmware/config.txt").read_text().count("vc4-kms-v3d") == 1


def test_uninstall_removes_what_install_added(image, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(image, root, symlinks=True)
    removed = run_congso("uninstall", "attendance", "--root", str(root), "--source", str(SOURCE))
    assert removed.returncode == 0, removed.stderr
    assert not (root / "etc/systemd/system/congso-attendance.service").exists()
    assert not (root / "etc/systemd/system/multi-user.target.wants/congso-attendance.service").exists()
    assert not (root / "etc/modprobe.d/congso-pn533.conf").exists()
    boot = (root / "boot/firmware/config.txt").read_text()
    assert "enable_uart" not in boot and "congso attendance" not in boot and "dtparam=audio=on" in boot
    assert "congso signage" in boot  # the TV on the same machine keeps its block
    assert (root / "etc/congso/congso.toml").exists()  # config and data stay
    purged = run_congso("uninstall", "gateway", "--root", str(root), "--source", str(SOURCE), "--purge")
    assert purged.returncode == 0, purged.stderr
    assert not (root / "etc/congso").exists() and not (root / "opt/congso").exists()


def test_a_corrupt_mosquitto_db_is_moved_aside_and_the_broker_starts(tmp_path):
    conf_dir = Path(__import__("tempfile").mkdtemp(prefix="congso-broker-"))
    os.chmod(conf_dir, 0o755)
    try:
        port = broker_mod.free_port()
        broker_mod.generate(conf_dir, "ky-chau", ["door-1"], port=port, bind="127.0.0.1")
        db = conf_dir / "data" / "mosquitto.db"
        # A store cut short by a power loss during an autosave.
        db.write_bytes(b"\x00\xb5\x00mosquitto db" + b"\x00" * 4 + (6).to_bytes(4, "big") + (2).to_bytes(4, "big") + (500).to_bytes(4, "big") + b"x" * 40)
        shutil.chown(db, "mosquitto", "mosquitto")
        plain = subprocess.run([broker_mod.find_mosquitto(), "-c", str(conf_dir / "mosquitto.conf")], capture_output=True, text=True, timeout=10)
        assert plain.returncode != 0 and "database" in plain.stderr  # what the office would suffer

        checked = run_congso("broker", "check-db", "--config", str(conf_dir / "mosquitto.conf"))
        assert checked.returncode == 0 and "truncated" in checked.stdout and "moved to mosquitto.db.corrupt-" in checked.stdout
        assert not db.exists() and list((conf_dir / "data").glob("mosquitto.db.corrupt-*"))
        with broker_mod.BrokerProcess(conf_dir, port):
            pass  # started and answered on its port
        assert run_congso("broker", "check-db", "--config", str(conf_dir / "mosquitto.conf")).stdout.strip() == "persistence file ok"
    finally:
        shutil.rmtree(conf_dir, ignore_errors=True)


# -- the install's own checks, on real Pythons --------------------------------------

def _venv_python(root: Path, python: str, pythonpath: str = "") -> None:
    """root's /opt/congso/venv/bin/python runs ``python`` (the checks run that file)."""
    bin_dir = root / "opt/congso/venv/bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "python"
    script.write_text("#!/bin/sh\n" + (f"PYTHONPATH={pythonpath} " if pythonpath else "") + f'exec {python} "$@"\n')
    script.chmod(0o755)


def _checks(root: Path, role: str) -> dict:
    from congso.ops.install import Installer, Options

    return {name: (ok, detail, fix) for name, ok, detail, fix in
            Installer(Options(role=role, root=root, source=SOURCE))._check_results()}


def test_checks_refuse_a_pygame_without_kmsdrm(tmp_path):
    # This suite's venv has pip's pygame wheel: its SDL has no KMSDRM, a black TV.
    _venv_python(tmp_path, str(Path(os.sys.executable)))
    ok, detail, fix = _checks(tmp_path, "signage")["pygame has KMSDRM"]
    assert ok is False and "dummy" in detail and "KMSDRM" not in detail
    assert "/opt/congso/venv/bin/pip uninstall -y pygame" in fix and "apt install python3-pygame" in fix


@pytest.mark.skipif(subprocess.run(["/usr/bin/python3", "-c", "import pygame"], capture_output=True).returncode != 0,
                    reason="Debian's python3-pygame is not installed (the Makefile installs it)")
def test_checks_pass_debian_pygame_with_kmsdrm(tmp_path):
    _venv_python(tmp_path, "/usr/bin/python3", pythonpath=str(SOURCE))
    ok, detail, _ = _checks(tmp_path, "signage")["pygame has KMSDRM"]
    assert ok is True and "(Debian)" in detail and "KMSDRM" in detail, detail


def test_checks_of_a_door_name_the_fix_and_skip_what_needs_the_pi(tmp_path):
    _venv_python(tmp_path, str(Path(os.sys.executable)))  # pyscard yes, lgpio no
    checks = _checks(tmp_path, "attendance")
    assert checks["pyscard imports"][0] is True
    assert checks["lgpio imports"][0] is False and "sudo /opt/congso/venv/bin/pip install lgpio" in checks["lgpio imports"][2]
    # Installing into a directory is image-building mode: no Pi running to ask.
    assert checks["lgpio sees a GPIO chip"][0] is None and checks["pyscard reaches pcscd"][0] is None
    run = run_congso("install", "attendance", "--root", str(tmp_path), "--source", str(SOURCE), "--check")
    assert run.returncode == 1
    assert "check lgpio imports failed" in run.stderr and "fix: sudo /opt/congso/venv/bin/pip install lgpio" in run.stderr


def test_an_installed_congso_finds_its_units_without_source(image):
    # The venv test_every_role_installs... made holds congso installed from
    # the source, not in editable mode: the units came with it.
    python = image / "opt/congso/venv/bin/python"
    if not python.exists():
        pytest.skip("needs the venv of test_every_role_installs_verifies_and_is_idempotent")
    found = subprocess.run([str(python), "-c", "from congso.ops.install import find_source; print(find_source())"],
                           capture_output=True, text=True, env={"PATH": os.environ["PATH"]}, cwd=image)  # not the checkout's
    assert found.returncode == 0, found.stderr
    source = Path(found.stdout.strip())
    assert source == image / "opt/congso/venv/share/congso"
    assert (source / "systemd/congso-attendance.service").read_text() == (SOURCE / "systemd/congso-attendance.service").read_text()


def test_the_gateway_makes_the_office_ca_and_each_node_trusts_it(tmp_path):
    """Issue 14.11: TLS on the LAN by default, plain MQTT on loopback, the CA given to each node."""
    office = tmp_path / "gateway"
    install(office, "gateway", "--no-venv", "--gateway-host", "gw.ky-chau.lan")
    tls = office / "etc/congso/broker/tls"
    modes = {name: oct((tls / name).stat().st_mode & 0o777) for name in ("ca.key", "ca.crt", "server.key", "server.crt")}
    assert modes == {"ca.key": "0o600", "ca.crt": "0o644", "server.key": "0o600", "server.crt": "0o644"}
    assert "gw.ky-chau.lan" in (tls / "server.hosts").read_text()
    conf_path = office / "etc/congso/broker/mosquitto.conf"
    assert oct(conf_path.stat().st_mode & 0o777) == "0o640"
    conf = conf_path.read_text()
    assert "listener 1883 127.0.0.1\n" in conf and "listener 8883\n" in conf
    assert "cafile /etc/congso/broker/tls/ca.crt" in conf and "keyfile /etc/congso/broker/tls/server.key" in conf
    gateway_cfg = (office / "etc/congso/congso.toml").read_text()
    assert 'host = "127.0.0.1"' in gateway_cfg and "port = 1883" in gateway_cfg

    # A node installed with --ca-file trusts exactly that CA, over TLS.
    door = tmp_path / "door"
    install(door, "attendance", "--no-venv", "--gateway-host", "gw.ky-chau.lan", "--ca-file", str(tls / "ca.crt"))
    cfg = (door / "etc/congso/congso.toml").read_text()
    assert 'host = "gw.ky-chau.lan"' in cfg and "port = 8883" in cfg and 'tls_ca = "/etc/congso/office-ca.crt"' in cfg
    assert (door / "etc/congso/office-ca.crt").read_bytes() == (tls / "ca.crt").read_bytes()
    from congso.protocol import settings

    assert settings.load(door / "etc/congso/congso.toml", environ={}).mqtt.port == 8883

    # Without it the installer says what to copy, and a wrong file is refused.
    tv = tmp_path / "tv"
    assert "copy /etc/congso/broker/tls/ca.crt from the gateway" in install(tv, "signage", "--no-venv")
    (tmp_path / "not-a-cert.txt").write_text("hello")
    refused = run_congso("install", "rating", "--root", str(tmp_path / "kiosk"), "--source", str(SOURCE), "--no-packages",
                         "--no-venv", "--ca-file", str(tmp_path / "not-a-cert.txt"), timeout=300)
    assert refused.returncode != 0 and "is not a PEM certificate" in refused.stderr


@pytest.mark.skipif(subprocess.run(["/usr/bin/python3", "-c", "import pygame"], capture_output=True).returncode != 0,
                    reason="Debian's python3-pygame is not installed (the Makefile installs it)")
def test_a_tv_on_a_machine_whose_venv_has_pip_pygame_gets_debians(tmp_path):
    # A gateway installed first put pip's pygame (no KMSDRM) into the one
    # venv; installing the TV there must leave Debian's visible, not a black screen.
    from congso.ops.install import Installer, Options

    venv = tmp_path / "opt/congso/venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", str(venv)], check=True)
    subprocess.run([str(venv / "bin/python"), "-m", "pip", "install", "--quiet", "--no-deps", "pygame>=2.5"], check=True)
    installer = Installer(Options(role="signage", root=tmp_path, source=SOURCE, packages=False, pip_args=["--no-deps"]))
    installer.virtualenv()
    assert any("the venv's own pygame removed for Debian's" in c for c in installer.report.changed), installer.report.changed
    ok, detail, _ = {n: (o, d, f) for n, o, d, f in installer._check_results()}["pygame has KMSDRM"]
    assert ok is True and "(Debian)" in detail, detail


# -- the office console's unit and certificate ----------------------------------------

def _service_hardening(text: str) -> list[str]:
    """The [Service] lines from UMask= on: the user, the sandbox, the system-call filter."""
    service = text.split("[Service]", 1)[1].split("\n[", 1)[0].splitlines()
    start = next(i for i, line in enumerate(service) if line.startswith("UMask="))
    return [line for line in service[start:] if line.strip() and not line.startswith("#")]


def test_the_gateway_installs_the_console_with_the_gateways_hardening_and_an_office_ca_certificate(tmp_path, spawn):
    import socket
    import ssl
    import urllib.error
    import urllib.request

    from congso.protocol import settings

    office = tmp_path / "gateway"
    first = install(office, "gateway", "--no-venv", "--gateway-host", "gw.ky-chau.lan")
    unit = (office / "etc/systemd/system/congso-web.service").read_text()
    gateway_unit = (office / "etc/systemd/system/congso-gateway.service").read_text()
    assert unit == (SOURCE / "systemd/congso-web.service").read_text()
    assert _service_hardening(unit) == _service_hardening(gateway_unit)
    assert "ProtectSystem=strict" in _service_hardening(unit) and "CapabilityBoundingSet=" in _service_hardening(unit)
    for needed in ("User=congso", "Group=congso", "Restart=on-failure", "ExecStart=/opt/congso/venv/bin/congso --config /etc/congso/congso.toml web run"):
        assert needed in unit.splitlines(), needed
    after = next(line for line in unit.splitlines() if line.startswith("After="))
    assert "congso-gateway.service" in after
    assert (office / "etc/systemd/system/multi-user.target.wants/congso-web.service").is_symlink()
    assert "congso-web.service" in first

    # The certificate: signed by the broker's office CA, for the names an office PC types.
    tls, ca = office / "etc/congso/tls", office / "etc/congso/broker/tls/ca.crt"
    crt, key = tls / "web.crt", tls / "web.key"
    verified = subprocess.run(["openssl", "verify", "-CAfile", str(ca), str(crt)], capture_output=True, text=True)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    sans = subprocess.run(["openssl", "x509", "-in", str(crt), "-noout", "-ext", "subjectAltName"],
                          capture_output=True, text=True, check=True).stdout
    name = socket.gethostname()
    for wanted in ("DNS:gw.ky-chau.lan", f"DNS:{name}", f"DNS:{name}.local", "IP Address:127.0.0.1"):
        assert wanted in sans, (wanted, sans)
    assert key.stat().st_mode & 0o007 == 0, oct(key.stat().st_mode)  # not world-readable
    assert key.stat().st_mode & 0o777 == 0o640  # the group congso (the console) reads it

    # The config serves it on the LAN.
    cfg = settings.load(office / "etc/congso/congso.toml", environ={})
    assert (cfg.web.host, cfg.web.port) == ("0.0.0.0", 8443)
    assert (cfg.web.tls_cert, cfg.web.tls_key) == ("/etc/congso/tls/web.crt", "/etc/congso/tls/web.key")

    # Again: the certificate is kept, the [web] section not written twice.
    issued = crt.read_bytes()
    again = install(office, "gateway", "--no-venv", "--gateway-host", "gw.ky-chau.lan")
    assert crt.read_bytes() == issued
    assert (office / "etc/congso/congso.toml").read_text().count("[web]") == 1
    assert "changed  /etc/congso/tls" not in again, again

    # The console serves HTTPS with it, and a browser that trusts the office CA accepts it.
    from congso.ops.broker import free_port

    port = free_port()
    web = spawn(["web", "run"], {"CONGSO_DATA_DIR": str(tmp_path / "data"), "CONGSO_WEB_HOST": "127.0.0.1",
                                 "CONGSO_WEB_PORT": str(port), "CONGSO_WEB_TLS_CERT": str(crt),
                                 "CONGSO_WEB_TLS_KEY": str(key)}, name="web")
    context = ssl.create_default_context(cafile=str(ca))
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))
    from congso.tools.harness import wait_for

    def answers() -> bool:
        assert web.alive(), web.tail()
        try:
            with opener.open(f"https://127.0.0.1:{port}/healthz", timeout=2) as r:
                return r.status == 200
        except urllib.error.URLError as e:
            if isinstance(e.reason, ssl.SSLError):
                raise
            return False
    wait_for(answers, timeout=30, what="the console over HTTPS", proc=web)

    # Uninstalled with the gateway.
    removed = run_congso("uninstall", "gateway", "--root", str(office), "--source", str(SOURCE))
    assert removed.returncode == 0, removed.stderr
    assert not (office / "etc/systemd/system/congso-web.service").exists()
    assert not (office / "etc/systemd/system/multi-user.target.wants/congso-web.service").exists()
