"""The TLS listener (8883 in production) with the office's own CA, on by default (issue 14.11)."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from congso.ops import broker as broker_mod
from congso.protocol import settings as settings_mod
from congso.protocol.node import NodeRuntime

from conftest import SITE, run_congso, wait_for
from mqtt_helpers import RawClient


def make_ca_and_server_cert(d: Path) -> broker_mod.TlsFiles:
    """An office CA and a server certificate for 127.0.0.1, made with openssl."""

    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=UBND xa Ky Chau CA",
        "-keyout", str(d / "ca.key"), "-out", str(d / "ca.crt"))
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", str(d / "server.key"), "-out", str(d / "server.csr"))
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", str(d / "server.csr"), "-CA", str(d / "ca.crt"), "-CAkey", str(d / "ca.key"),
        "-CAcreateserial", "-days", "30", "-extfile", str(d / "ext.cnf"), "-out", str(d / "server.crt"))
    for name in ("ca.crt", "server.crt", "server.key"):
        os.chmod(d / name, 0o644)  # mosquitto reads them after dropping to its own user
    return broker_mod.TlsFiles(cert=str(d / "server.crt"), key=str(d / "server.key"), ca=str(d / "ca.crt"))


@pytest.fixture
def tls_broker():
    d = Path(tempfile.mkdtemp(prefix="congso-tls-"))
    os.chmod(d, 0o755)
    tls = make_ca_and_server_cert(d)
    plain_port, tls_port = broker_mod.free_port(), broker_mod.free_port()
    creds = broker_mod.generate(d / "conf", SITE, ["door-1"], port=plain_port, bind="127.0.0.1", tls=tls, tls_port=tls_port)
    proc = broker_mod.BrokerProcess(d / "conf", tls_port).start()
    yield d, tls, tls_port, creds
    proc.stop()
    shutil.rmtree(d, ignore_errors=True)


def door_over_tls(port: int, password: str, ca: str, data_dir) -> NodeRuntime:
    env = {
        "CONGSO_SITE_ID": SITE,
        "CONGSO_NODE_ID": "door-1",
        "CONGSO_MQTT_PORT": str(port),
        "CONGSO_MQTT_USERNAME": "door-1",
        "CONGSO_MQTT_PASSWORD": password,
        "CONGSO_MQTT_TLS_CA": ca,
        "CONGSO_DATA_DIR": str(data_dir),
    }
    return NodeRuntime(settings_mod.load(environ=env), kind="attendance")


def test_node_connects_over_tls_with_the_office_ca(tls_broker, tmp_path):
    d, tls, port, creds = tls_broker
    conf = (d / "conf" / "mosquitto.conf").read_text()
    assert f"listener {port} 127.0.0.1" in conf and f"cafile {tls.ca}" in conf
    rt = door_over_tls(port, creds["door-1"], tls.ca, tmp_path / "door-1")
    rt.start()
    try:
        assert rt.link.wait_connected(10), rt.link.last_error
    finally:
        rt.stop()


def test_tls_refuses_a_server_the_office_ca_did_not_sign(tls_broker, tmp_path):
    d, tls, port, creds = tls_broker
    other = tmp_path / "other"
    other.mkdir()
    stranger = make_ca_and_server_cert(other)
    rt = door_over_tls(port, creds["door-1"], stranger.ca, tmp_path / "door-1")
    rt.start()
    try:
        wait_for(lambda: rt.link.last_error and "certificate verify failed" in rt.link.last_error, 10, "TLS refusal")
        assert not rt.link.connected.is_set()
    finally:
        rt.stop()


# -- issue 14.11: TLS by default ---------------------------------------------------
def lan_address() -> str | None:
    """This machine's address on its network, if it has one other than loopback."""
    from congso.ops import office_ca

    found = [h for h in office_ca.default_hosts() if h[0].isdigit() and not h.startswith("127.")]
    return found[0] if found else None


def door(host: str, port: int, password: str, ca: str, data_dir) -> NodeRuntime:
    env = {"CONGSO_SITE_ID": SITE, "CONGSO_NODE_ID": "door-1", "CONGSO_MQTT_HOST": host, "CONGSO_MQTT_PORT": str(port),
           "CONGSO_MQTT_USERNAME": "door-1", "CONGSO_MQTT_PASSWORD": password, "CONGSO_MQTT_TLS_CA": ca,
           "CONGSO_DATA_DIR": str(data_dir)}
    return NodeRuntime(settings_mod.load(environ=env), kind="attendance")


@pytest.fixture
def office_dir():
    d = Path(tempfile.mkdtemp(prefix="congso-office-tls-"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_broker_config_makes_the_office_ca_and_keeps_plain_mqtt_off_the_lan(office_dir, tmp_path):
    plain_port, tls_port = broker_mod.free_port(), broker_mod.free_port()
    out = office_dir / "broker"
    made = run_congso("broker", "config", "--site", SITE, "--out", str(out), "--nodes", "door-1",
                      "--port", str(plain_port), "--tls-port", str(tls_port))
    assert made.returncode == 0, made.stderr
    tls = out / "tls"
    mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)  # noqa: E731
    assert mode(tls / "ca.key") == 0o600 and mode(tls / "server.key") == 0o600 and mode(tls / "ca.crt") == 0o644
    if os.geteuid() == 0:  # root's CA key; the broker's own key for the user it drops to
        assert os.stat(tls / "ca.key").st_uid == 0
        assert os.stat(tls / "server.key").st_uid == pwd.getpwnam("mosquitto").pw_uid
    assert mode(out / "mosquitto.conf") == 0o640 and mode(out / "credentials.json") == 0o600
    conf = (out / "mosquitto.conf").read_text()
    assert f"listener {plain_port} 127.0.0.1\n" in conf and f"listener {tls_port}\n" in conf
    assert f"cafile {tls / 'ca.crt'}" in conf
    creds = json.loads((out / "credentials.json").read_text())

    with broker_mod.BrokerProcess(out, tls_port):
        # A node with the office CA connects over TLS (by address and by name).
        for host in ("127.0.0.1", "localhost"):
            rt = door(host, tls_port, creds["door-1"], str(tls / "ca.crt"), tmp_path / f"door-{host}")
            rt.start()
            try:
                assert rt.link.wait_connected(10), rt.link.last_error
            finally:
                rt.stop()
        # The gateway, on this machine, keeps the plain loopback listener.
        gw = RawClient(plain_port, "gateway", creds["gateway"])
        try:
            assert gw.accepted
        finally:
            gw.close()
        lan = lan_address()
        if lan is not None:
            # From the LAN: no plain MQTT at all, TLS with a certificate for this address.
            with pytest.raises(OSError):
                socket.create_connection((lan, plain_port), timeout=5).close()
            rt = door(lan, tls_port, creds["door-1"], str(tls / "ca.crt"), tmp_path / "door-lan")
            rt.start()
            try:
                assert rt.link.wait_connected(10), rt.link.last_error
            finally:
                rt.stop()


def test_rerun_keeps_the_office_ca_and_reissues_the_server_certificate(office_dir):
    out = office_dir / "broker"
    broker_mod.generate(out, SITE, ["door-1"], office_tls=True, tls_hosts=["gw-old.local"])
    ca = (out / "tls" / "ca.crt").read_bytes()
    cert = (out / "tls" / "server.crt").read_bytes()
    broker_mod.generate(out, SITE, ["door-1", "tv-1"], office_tls=True, tls_hosts=["gw-old.local"])
    assert (out / "tls" / "server.crt").read_bytes() == cert  # nothing changed, nothing reissued
    broker_mod.generate(out, SITE, ["door-1", "tv-1"], office_tls=True, tls_hosts=["gw-new.local"])
    assert (out / "tls" / "ca.crt").read_bytes() == ca  # the nodes keep the CA they were given
    assert (out / "tls" / "server.crt").read_bytes() != cert
    assert "gw-new.local" in (out / "tls" / "server.hosts").read_text()
    checked = subprocess.run(["openssl", "verify", "-CAfile", str(out / "tls" / "ca.crt"), str(out / "tls" / "server.crt")],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


def test_mosquitto_conf_with_a_bridge_password_is_not_world_readable(office_dir):
    out = office_dir / "broker"
    bridge = broker_mod.Bridge("province.example:8883", SITE, "s3cret-bridge-password")
    broker_mod.generate(out, SITE, ["door-1"], bridge=bridge)
    conf = out / "mosquitto.conf"
    assert "s3cret-bridge-password" in conf.read_text()
    st = os.stat(conf)
    assert stat.S_IMODE(st.st_mode) == 0o640
    if os.geteuid() == 0:
        assert st.st_uid == 0 and st.st_gid == pwd.getpwnam("mosquitto").pw_gid
    as_nobody = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "cat", str(conf)],
                               capture_output=True, text=True)
    assert as_nobody.returncode != 0 and "Permission denied" in as_nobody.stderr


def test_a_node_without_the_office_ca_file_says_what_to_copy(tmp_path):
    with pytest.raises(ValueError, match=r"tls_ca .*missing-ca.crt does not exist: copy the office CA"):
        door("127.0.0.1", 8883, "x", str(tmp_path / "missing-ca.crt"), tmp_path / "door-1")
