"""Province scale: two offices bridge their topics to a central broker; the roll-up sums them."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from congso.ops import broker as broker_mod
from congso.protocol import settings as settings_mod
from congso.protocol.node import NodeRuntime

from conftest import run_congso, wait_for


class Office:
    def __init__(self, site: str, central_port: int, central_password: str):
        self.site = site
        self.dir = Path(tempfile.mkdtemp(prefix=f"congso-{site}-"))
        os.chmod(self.dir, 0o755)
        self.port = broker_mod.free_port()
        bridge = broker_mod.Bridge(f"127.0.0.1:{central_port}", site, central_password)
        self.credentials = broker_mod.generate(self.dir / "conf", site, ["door-1", "kiosk-1"], port=self.port,
                                               bind="127.0.0.1", bridge=bridge)
        self.process = broker_mod.BrokerProcess(self.dir / "conf", self.port).start()

    def env(self, user: str, data_dir: Path) -> dict[str, str]:
        env = {"CONGSO_SITE_ID": self.site, "CONGSO_MQTT_HOST": "127.0.0.1", "CONGSO_MQTT_PORT": str(self.port),
               "CONGSO_MQTT_USERNAME": user, "CONGSO_MQTT_PASSWORD": self.credentials[user],
               "CONGSO_CLOCK_SYNCED": "yes", "CONGSO_HEALTH_INTERVAL_S": "1", "CONGSO_DATA_DIR": str(data_dir),
               "CONGSO_MQTT_RECONNECT_MAX_S": "2"}
        if user != "gateway":
            env["CONGSO_NODE_ID"] = user
        return env

    def close(self):
        self.process.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def central():
    d = Path(tempfile.mkdtemp(prefix="congso-central-"))
    os.chmod(d, 0o755)
    port = broker_mod.free_port()
    creds = broker_mod.generate_central(d / "conf", ["ky-chau", "ky-tan"], port=port, bind="127.0.0.1")
    proc = broker_mod.BrokerProcess(d / "conf", port).start()
    yield port, creds, proc
    proc.kill()
    shutil.rmtree(d, ignore_errors=True)


def vote(level):
    return {"desk_id": "mot-cua-1", "level": level, "reasons": [], "session_id": None, "officer_id": None, "dossier_code": None}


def checkin(staff):
    return {"method": "card", "credential": f"04{staff[-3:]}AABB", "staff_id": staff, "match_score": None}


def test_two_offices_roll_up_at_the_province(spawn, tmp_path, central):
    port, creds, central_proc = central
    offices = [Office("ky-chau", port, creds["ky-chau"]), Office("ky-tan", port, creds["ky-tan"])]
    nodes = []
    try:
        plan = {"ky-chau": (["NV001", "NV002"], ["very_satisfied", "very_satisfied", "dissatisfied"]),
                "ky-tan": (["NV010"], ["satisfied"])}
        for office in offices:
            gw = start_gateway_for(spawn, office, tmp_path / office.site / "gateway")
            door = NodeRuntime(settings_mod.load(environ=office.env("door-1", tmp_path / office.site / "door")), kind="attendance")
            kiosk = NodeRuntime(settings_mod.load(environ=office.env("kiosk-1", tmp_path / office.site / "kiosk")), kind="rating")
            for rt in (door, kiosk):
                rt.start()
                nodes.append(rt)
            staff, levels = plan[office.site]
            for s in staff:
                door.record("attendance", checkin(s))
            for level in levels:
                kiosk.record("rating", vote(level))
            wait_for(lambda: door.outbox.depth() == 0 and kiosk.outbox.depth() == 0, 20, f"{office.site} acks", gw)

        def rolled():
            out = run_congso("province", "--host", "127.0.0.1", "--port", str(port), "--password", creds["province"], "--json")
            assert out.returncode == 0, out.stderr
            return {row["site"]: row for row in map(json.loads, out.stdout.splitlines())}

        wait_for(lambda: rolled().get("TOTAL", {}).get("votes_month") == 4 and rolled()["TOTAL"]["checked_in"] == 3,
                 30, "both offices at the province")
        rows = rolled()
        assert rows["ky-chau"]["checked_in"] == 2 and rows["ky-chau"]["votes_month"] == 3
        assert rows["ky-chau"]["satisfied_pct_month"] == pytest.approx(66.7)
        assert rows["ky-tan"]["checked_in"] == 1 and rows["ky-tan"]["satisfied_pct_month"] == 100.0
        assert rows["TOTAL"]["satisfied_month"] == 3 and rows["TOTAL"]["satisfied_pct_month"] == 75.0
        assert rows["ky-chau"]["nodes_online"] == 2

        # The central broker goes away; an office goes on, and its bridge
        # delivers what happened meanwhile when the province is back.
        central_proc.stop()
        kiosk = nodes[3]
        kiosk.record("rating", vote("dissatisfied"))
        wait_for(lambda: kiosk.outbox.depth() == 0, 20, "the office acks without the province")
        central_proc.start()
        wait_for(lambda: rolled().get("ky-tan", {}).get("votes_month") == 2, 40, "the bridge catching up")
        table = run_congso("province", "--host", "127.0.0.1", "--port", str(port), "--password", creds["province"])
        assert "ky-chau" in table.stdout and "TOTAL" in table.stdout

        # Each office may write only its own site at the province.
        acl = (central_proc.config_dir / "acl").read_text()
        assert "user ky-chau\ntopic write congso/ky-chau/#" in acl and "user province\ntopic read congso/#" in acl
    finally:
        for rt in nodes:
            rt.stop()
        for office in offices:
            office.close()


def start_gateway_for(spawn, office: Office, data_dir: Path):
    gw = spawn(["gateway", "run"], office.env("gateway", data_dir), name=f"gateway-{office.site}")
    wait_for(lambda: "gateway connected to" in gw.tail(), 20, "gateway connected", gw)
    return gw


def test_wrong_password_at_the_province_is_a_clear_error(central):
    port, creds, _ = central
    out = run_congso("province", "--host", "127.0.0.1", "--port", str(port), "--password", "wrong")
    assert out.returncode == 1 and "refused" in out.stderr
