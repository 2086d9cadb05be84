"""The optional TLS listener (8883 in production) with the office's own CA."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from congso.ops import broker as broker_mod
from congso.protocol import settings as settings_mod
from congso.protocol.node import NodeRuntime

from conftest import SITE, wait_for


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
