"""A desk session ends on the kiosk's own clock, with the gateway hung (SIGSTOP) and the broker up.

The gateway opens a real session (``congso desk open``) and publishes it
retained; the test shortens its ``expires_at`` in the gateway's database so
the gateway republishes it to end in a few seconds, then freezes the
gateway. Nothing clears the retained topic any more: the kiosk alone must
stop showing the officer at ``expires_at`` and send the next vote for the
desk alone. The vote waits in the kiosk's outbox until the gateway runs
again, and arrives without the session.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from congso.protocol import messages

from conftest import fresh_broker, query, run_congso, start_gateway, wait_for
from rating_helpers import add_staff
from test_rating_kiosk import Harness

OUT = Path(__file__).resolve().parent.parent / "test-out" / "rating"
DESK = "mot-cua-1"

# A broker of this module's own: what other modules' kiosks left queued for the
# gateway (votes made with no gateway running) must not reach these gateways.
broker = pytest.fixture(scope="module")(fresh_broker)


@pytest.fixture
def kiosk(broker, tmp_path, monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    settings = broker.settings("kiosk-1", tmp_path / "kiosk", CONGSO_RATING_DESK_ID=DESK, CONGSO_DISPLAY_WIDTH=1280,
                               CONGSO_DISPLAY_HEIGHT=720, CONGSO_RATING_LOCKOUT_S=0.3, CONGSO_RATING_THANKS_S=0.2)
    k = Harness(settings, MockFactory())
    assert k.app.runtime.link.wait_connected(10)
    yield k
    k.close()


def test_the_session_expires_at_the_kiosk_while_the_gateway_is_stopped(broker, spawn, tmp_path, kiosk):
    data = tmp_path / "gateway"
    gw = start_gateway(spawn, broker, data)
    db = data / "gateway.sqlite"
    env = broker.env("gateway", data)
    add_staff(db, {"NV003": "Lê Thị Cúc"})
    out = run_congso("desk", "open", "--desk", DESK, "--officer", "NV003", "--dossier", "000.00.12.H56-261201-0001",
                     "--minutes", "1", **env)
    assert out.returncode == 0, out.stderr
    # The session ends in 4 s: the gateway republishes it with that expires_at.
    ends = (datetime.now(timezone.utc) + timedelta(seconds=4)).astimezone(timezone(timedelta(hours=7)))
    ends = ends.replace(microsecond=0)  # stored to the second
    conn = sqlite3.connect(db, timeout=10)
    with conn:
        conn.execute("UPDATE desk_sessions SET expires_at=?", (ends.isoformat(timespec="seconds"),))
    conn.close()
    wait_for(lambda: (kiosk.app.kiosk.session or {}).get("expires_at") == ends.isoformat(timespec="seconds"), 10,
             "the shortened session at the kiosk", gw)
    kiosk.settle()
    assert kiosk.texts()["officer"] == "Cán bộ phục vụ: Lê Thị Cúc  ·  Hồ sơ: 000.00.12.H56-261201-0001"

    os.kill(gw.proc.pid, signal.SIGSTOP)
    try:
        # Still shown until expires_at ...
        assert datetime.now(timezone.utc) < ends - timedelta(seconds=1), "the setup took too long for this test"
        kiosk.settle()
        assert "officer" in kiosk.texts()
        # ... and gone within a second of it (the loop wakes at least once a second), the retained session still there.
        wait_for(lambda: "officer" not in kiosk.texts(), (ends - datetime.now(timezone.utc)).total_seconds() + 1.5,
                 "the officer's name gone at expires_at")
        gone_at = datetime.now(timezone.utc)
        assert gone_at >= ends and (gone_at - ends).total_seconds() < 1.5
        kiosk.screenshot("session-expired-gateway-stopped")
        kiosk.touch("level:0")
        assert kiosk.app.kiosk.screen == "thanks"
        (pending,) = kiosk.app.runtime.outbox.after(0, 10)
        vote = json.loads(pending.payload)
        assert (vote["session_id"], vote["officer_id"], vote["dossier_code"]) == (None, None, None)
        assert messages.parse_ts(vote["ts"]) >= ends
    finally:
        os.kill(gw.proc.pid, signal.SIGCONT)
    wait_for(lambda: kiosk.app.runtime.outbox.depth() == 0, 20, "the vote acked once the gateway runs", gw)
    rows = query(db, "SELECT session_id, officer_id, dossier_code FROM rating_events")
    assert rows == [(None, None, None)]
    wait_for(lambda: query(db, "SELECT closed_by FROM desk_sessions") == [("expired",)], 40,
             "the gateway closing the session as expired", gw)
    gw.terminate()
