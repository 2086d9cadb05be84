"""Backups that lose nothing: a copy made during a burst, put back, and every event found once.

Real Mosquitto, a real ``congso gateway run`` process, real simulated nodes
and the real ``congso gateway backup`` / ``restore`` commands. A restore
takes the gateway back to the copy's moment; the nodes still keep what was
acked since (``[outbox] keep_acked_days``), and the restarted gateway asks
each of them for it (``resend``).
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from congso.protocol import messages
from congso.protocol.outbox import Outbox

from conftest import SITE, query, run_congso, start_gateway, wait_for

pytestmark = pytest.mark.slow

NODES = {"node-a": "attendance", "node-b": "rating"}
TABLE = {"attendance": "attendance_events", "rating": "rating_events"}


def stored(db) -> int:
    return query(db, "SELECT (SELECT count(*) FROM attendance_events) + (SELECT count(*) FROM rating_events)")[0][0]


def committed(node_proc) -> dict[int, str]:
    """seq -> event_id of every event the node committed (and so gave feedback for) so far."""
    lines = node_proc.out_path.read_text(encoding="utf-8").splitlines(keepends=True)
    return {int(p[1]): p[2] for p in (line.split() for line in lines if line.endswith("\n") and line.startswith("committed "))}


def start_nodes(spawn, broker, tmp_path, rate="40"):
    return {
        node: spawn(["simulate", "node", "--kind", kind, "--rate", rate, "--seed", str(i)], broker.env(node, tmp_path / node), name=node)
        for i, (node, kind) in enumerate(NODES.items())
    }


def held(db, node) -> dict[int, str]:
    rows = query(db, f"SELECT seq, event_id FROM {TABLE[NODES[node]]} WHERE node_id=?", (node,))
    assert len(rows) == len({seq for seq, _ in rows}), f"{node}: a seq stored twice"
    return dict(rows)


def only_copy(directory):
    copies = sorted(directory.glob(f"gateway-{SITE}-*.sqlite"))
    assert len(copies) == 1, copies
    return copies[0]


def test_backup_during_a_burst_then_restore_loses_nothing(private_broker, spawn, tmp_path):
    data, usb = tmp_path / "gateway", tmp_path / "usb"
    usb.mkdir()
    env = private_broker.env("gateway", data)
    gw = start_gateway(spawn, private_broker, data)
    db = data / "gateway.sqlite"
    nodes = start_nodes(spawn, private_broker, tmp_path)
    wait_for(lambda: stored(db) >= 150, 60, "the burst under way", gw)

    done = run_congso("gateway", "backup", "--dir", str(usb), **env)
    assert done.returncode == 0, done.stderr
    copy = only_copy(usb)
    assert "backup written" in done.stdout and copy.name in done.stdout
    in_copy = query(copy, "SELECT (SELECT count(*) FROM attendance_events) + (SELECT count(*) FROM rating_events)")[0][0]
    assert in_copy >= 150

    # The burst goes on; what the gateway acks now the nodes would once have deleted.
    wait_for(lambda: stored(db) >= in_copy + 400, 60, "more events after the backup", gw)

    refused = run_congso("gateway", "restore", str(copy), **env)
    assert refused.returncode != 0 and "a gateway is running" in refused.stderr and "systemctl stop congso-gateway" in refused.stderr
    assert stored(db) > in_copy  # nothing was touched

    assert gw.terminate() == 0
    # node-b goes off with the gateway: it must still get the request, once it is back.
    assert nodes["node-b"].terminate() == 0
    before_restore = stored(db)
    done = run_congso("gateway", "restore", str(copy), **env)
    assert done.returncode == 0, done.stderr
    assert stored(db) == in_copy < before_restore
    (aside,) = data.glob("gateway.sqlite.replaced-*[0-9]")
    assert stored(aside) == before_restore  # the replaced database is kept, whole
    assert not (data / "gateway.sqlite-wal").exists() or (data / "gateway.sqlite-wal").stat().st_size == 0

    gw = start_gateway(spawn, private_broker, data)
    # node-a goes on making events meanwhile; every one it committed so far must arrive.
    wait_for(lambda: "asked node-a" in gw.tail(100_000), 30, "the gateway asks node-a", gw)
    expected = {"node-a": committed(nodes["node-a"]), "node-b": committed(nodes["node-b"])}

    def all_there(node):
        return set(expected[node].items()) <= set(held(db, node).items())

    wait_for(lambda: all_there("node-a"), 120, "every event of node-a back at the gateway", gw)
    # While node-b is off, what the gateway acked after the copy is only in node-b's outbox. (It is asked
    # once it shows up, or, if its last events were still queued for the gateway, by an ack its session keeps.)
    assert not all_there("node-b")
    nodes["node-b"] = spawn(["simulate", "node", "--kind", "rating", "--count", "0"], private_broker.env("node-b", tmp_path / "node-b"), name="node-b")
    wait_for(lambda: all_there("node-b"), 120, "every event of node-b back once it is on again", gw)
    for node in NODES:
        have = held(db, node)
        # Every event exactly once: seqs 1..max with no gap, each with the event_id the node made.
        assert sorted(have) == list(range(1, max(have) + 1)), node
        assert all(have[seq] == eid for seq, eid in expected[node].items()), node
    assert gw.alive()
    for proc in nodes.values():
        assert proc.terminate() == 0, proc.tail()
    assert gw.terminate() == 0


def test_backup_is_a_whole_database_while_writes_go_on_and_rotation_keeps_n(private_broker, spawn, tmp_path):
    data, usb = tmp_path / "gateway", tmp_path / "usb"
    usb.mkdir()
    (usb / "holiday-photos.jpg").write_bytes(b"not ours")  # a stick holds other things too
    env = private_broker.env("gateway", data)
    gw = start_gateway(spawn, private_broker, data)
    db = data / "gateway.sqlite"
    nodes = start_nodes(spawn, private_broker, tmp_path, rate="0")  # flat out: the database changes all the time
    wait_for(lambda: stored(db) >= 500, 60, "the burst under way", gw)
    made = []
    for _ in range(4):
        done = run_congso("gateway", "backup", "--dir", str(usb), "--keep", "2", **env)
        assert done.returncode == 0, done.stderr
        made.append(next(line.split()[2].rstrip(":") for line in done.stdout.splitlines() if line.startswith("backup written")))
    kept = sorted(p.name for p in usb.glob(f"gateway-{SITE}-*.sqlite"))
    assert [str(usb / k) for k in kept] == sorted(made[-2:])  # the two newest, named by office time
    assert (usb / "holiday-photos.jpg").exists() and not list(usb.glob("*.partial"))
    counts = []
    for name in kept:
        copy = usb / name
        assert not copy.with_name(name + "-wal").exists()  # one self-contained file
        conn = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
            assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] >= 6
            counts.append(conn.execute("SELECT count(*) FROM attendance_events").fetchone()[0])
        finally:
            conn.close()
    assert counts == sorted(counts) and counts[-1] > 0
    for proc in nodes.values():
        assert proc.terminate() == 0
    assert gw.terminate() == 0


def test_backup_errors_are_clear(tmp_path):
    data = tmp_path / "gateway"
    env = {"CONGSO_DATA_DIR": str(data), "CONGSO_SITE_ID": SITE}
    nothing = run_congso("gateway", "backup", "--dir", str(tmp_path), **env)
    assert nothing.returncode == 1 and "no gateway database" in nothing.stderr
    run_congso("gateway", "backup", **env)  # still nothing: an error, not a crash
    _make_gateway_db(data)
    unmounted = run_congso("gateway", "backup", **env, CONGSO_BACKUP_DIR=str(tmp_path / "media" / "usb"))
    assert unmounted.returncode == 1 and "is the USB stick mounted" in unmounted.stderr
    assert not (tmp_path / "media").exists()  # never created on the SD card
    # No [backup] dir: a copy under the data dir, with a warning to set one.
    default = run_congso("gateway", "backup", **env)
    assert default.returncode == 0, default.stderr
    assert len(list((data / "backups").glob("*.sqlite"))) == 1 and "USB stick" in default.stderr
    # A damaged database is never written out as if it were a backup.
    _damage(data / "gateway.sqlite")
    damaged = run_congso("gateway", "backup", "--dir", str(tmp_path), **env)
    assert damaged.returncode == 1 and "may be damaged" in damaged.stderr and "congso gateway check-db" in damaged.stderr
    assert not list(tmp_path.glob("gateway-*"))


def test_backup_onto_a_full_stick_is_a_clear_error(tmp_path):
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode != 0:
        pytest.skip("needs unshare (util-linux) and user namespaces to mount a small file system")
    data, stick = tmp_path / "gateway", tmp_path / "stick"
    stick.mkdir()
    _make_gateway_db(data, padding=2_000_000)
    # A real 256 KiB file system (tmpfs in a mount namespace of our own): the stick is full.
    script = (f"mount -t tmpfs -o size=256k tmpfs {stick} && "
              f"head -c 100000 /dev/zero > {stick}/other-files && "
              f"CONGSO_DATA_DIR={data} CONGSO_SITE_ID={SITE} {sys.executable} "
              f"-m congso gateway backup --dir {stick}; echo exit=$?; ls -a {stick}")
    out = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=60)
    assert "exit=1" in out.stdout, out.stdout + out.stderr
    assert "not enough room in" in out.stderr and "MB free" in out.stderr
    assert "gateway-" not in out.stdout  # no partial copy left on the stick


def test_restore_refuses_what_is_not_a_good_copy(tmp_path):
    data = tmp_path / "gateway"
    env = {"CONGSO_DATA_DIR": str(data), "CONGSO_SITE_ID": SITE}
    _make_gateway_db(data)
    original = (data / "gateway.sqlite").read_bytes()

    text = tmp_path / "notes.txt"
    text.write_text("not a database\n" * 100)
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE t(x)").connection.commit()
    newer = tmp_path / "newer.sqlite"
    shutil.copy(data / "gateway.sqlite", newer)
    conn = sqlite3.connect(newer)
    conn.execute("INSERT INTO schema_migrations(name, applied_at) VALUES ('0999_from_the_future', 'x')")
    conn.commit()
    conn.close()
    broken = tmp_path / "broken.sqlite"
    shutil.copy(data / "gateway.sqlite", broken)
    _damage(broken)

    for file, says in ((tmp_path / "missing.sqlite", "does not exist"), (text, "not a readable SQLite database"),
                       (other, "not a congso gateway database"), (newer, "written by a newer congso"),
                       (broken, "")):
        done = run_congso("gateway", "restore", str(file), **env)
        assert done.returncode == 1 and says in done.stderr, (file, done.stderr)
        assert "Traceback" not in done.stderr
    assert (data / "gateway.sqlite").read_bytes() == original  # nothing replaced
    assert not list(data.glob("gateway.sqlite.replaced-*")) and not list(data.glob("*.restoring"))


def test_outbox_keeps_acked_events_and_prunes_them_by_age(tmp_path):
    path = tmp_path / "outbox.sqlite"
    fields = {"method": "card", "credential": "04A1B2C3D4E5F6", "staff_id": None, "match_score": None}
    box = Outbox(path, "door-1", keep_acked_days=35)
    events = [box.add("attendance", fields, "2026-12-01T08:00:00+07:00", True) for _ in range(4)]
    assert box.ack([e["event_id"] for e in events[:3]]) == 3
    assert box.depth() == 1  # what health reports: only the unacked one
    assert [e.seq for e in box.after(0, 10)] == [4]
    assert [e.event_id for e in box.acked_after(1, 10)] == [events[1]["event_id"], events[2]["event_id"]]
    assert box.kept_summary(1) == {"acked_kept": 2, "unacked": 1, "oldest_kept_seq": 1}
    # The gateway's request rides on an ack; a bad one is refused like any bad ack.
    assert messages.decode("ack", b'{"v":1,"event_ids":[],"resend_after_seq":1}')["resend_after_seq"] == 1
    with pytest.raises(messages.MessageError, match="resend_after_seq"):
        messages.decode("ack", b'{"v":1,"event_ids":[],"resend_after_seq":-1}')
    # 36 days later (the rows aged by hand): the next ack prunes them.
    box._db.execute("UPDATE acked SET acked_at = acked_at - 36 * 86400 WHERE seq <= 2")
    box.close()
    box = Outbox(path, "door-1", keep_acked_days=35)
    box.ack([events[3]["event_id"]])
    assert [e.seq for e in box.acked_after(0, 10)] == [3, 4]
    box.close()
    # 0 days: deleted at the ack, as before.
    box = Outbox(tmp_path / "none.sqlite", "door-1", keep_acked_days=0)
    box.ack([box.add("attendance", fields, "2026-12-01T08:00:00+07:00", True)["event_id"]])
    assert box.acked_after(0, 10) == [] and box.depth() == 0
    box.close()


def _make_gateway_db(data, padding: int = 0):
    from congso.gateway.db import open_db

    db = open_db(data / "gateway.sqlite")
    if padding:
        db.conn.execute("CREATE TABLE pad(x)")  # only to make the file big
        db.conn.execute("INSERT INTO pad VALUES (randomblob(?))", (padding,))
        db.conn.commit()
    db.conn.close()


def test_the_gateway_install_enables_the_nightly_backup(tmp_path):
    root = tmp_path / "root"
    (root / "usr/lib/systemd").mkdir(parents=True)
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    source = Path(__file__).resolve().parent.parent
    done = run_congso("install", "gateway", "--root", str(root), "--source", str(source), "--no-packages", "--no-venv",
                      "--no-check", "--nodes", "door-1", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (root / "etc/systemd/system/timers.target.wants/congso-backup.timer").is_symlink()
    timer = (root / "etc/systemd/system/congso-backup.timer").read_text()
    assert "OnCalendar=*-*-* 02:30:00 Asia/Ho_Chi_Minh" in timer and "Persistent=true" in timer
    service = (root / "etc/systemd/system/congso-backup.service").read_text()
    assert "gateway backup" in service and "User=congso" in service
    config = (root / "etc/congso/congso.toml").read_text()
    assert "[backup]" in config and "keep = 14" in config
    # systemd's own check of both units (the venv's congso stands in as a script).
    exe = root / "opt/congso/venv/bin/congso"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    for unit in ("congso-backup.service", "congso-backup.timer"):
        checked = subprocess.run(["systemd-analyze", "verify", f"--root={root}", f"/etc/systemd/system/{unit}"],
                                 capture_output=True, text=True)
        assert checked.returncode == 0 and not checked.stderr.strip(), f"{unit}: {checked.stderr}"
    removed = run_congso("uninstall", "gateway", "--root", str(root), "--source", str(source))
    assert removed.returncode == 0, removed.stderr
    assert not (root / "etc/systemd/system/congso-backup.timer").exists()
    assert not (root / "etc/systemd/system/timers.target.wants/congso-backup.timer").exists()


def _damage(path):
    """The events' first page overwritten, as on a dying card."""
    (root,) = query(path, "SELECT rootpage FROM sqlite_master WHERE name='attendance_events'")[0]
    page = query(path, "PRAGMA page_size")[0][0]
    raw = bytearray(path.read_bytes())
    raw[page * (root - 1): page * root] = b"\xff" * page
    path.write_bytes(bytes(raw))
