"""Console benchmark: its pages on a year of data, its memory, and ingest beside it, in one run.

    .venv/bin/python bench/console.py [--requests N] [--events-per-node M] [--rounds R] [--quick]

1. A gateway database with a year of an office's data is made (not timed):
   60 staff scanning 4 times a day for 250 working days (60,000 attendance
   events), 20,000 dossiers, 5,000 ratings.
2. One real Mosquitto, a real ``congso gateway run`` and a real ``congso web
   run`` on that database. Logged in as an admin over real HTTP, N requests
   each (after warming up) of the dashboard, the dossier list, the month
   timesheet page and the month XLSX download: p50 and p95.
3. The console's RSS (now and its peak) after all that.
4. Ingest: 2 real ``congso simulate node`` processes with M events each in
   their outboxes deliver them to the gateway; rounds alternate without any
   console load and with a client asking the console 20 pages a second
   (``--load-rps``). Events/s of both, side by side, and their ratio.

Targets (issue #16, docs/performance.md): every page p95 <= 150 ms, the month
XLSX <= 1 s, console RSS <= 90 MB, ingest under console load >= 0.9 of ingest
without.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import re
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ingest  # noqa: E402  (the ingest bench's broker, gateway and node helpers)

from congso.gateway import accounts, staff  # noqa: E402
from congso.gateway.db import open_db  # noqa: E402
from congso.tools import harness  # noqa: E402

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
NODES = ["node-1", "node-2"]
PASSWORD = "bench-console-password"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def working_days(last: date, count: int) -> list[date]:
    days, d = [], last
    while len(days) < count:
        if d.weekday() < 5:
            days.append(d)
        d -= timedelta(days=1)
    return sorted(days)


def make_year(db_path: Path, staff_n: int, days_n: int, dossiers_n: int, ratings_n: int) -> dict:
    """A year of one office in the gateway database, written directly (not timed)."""
    rng = random.Random(16)
    db = open_db(db_path)
    today = datetime.now(ZONE).date()
    days = working_days(today - timedelta(days=1), days_n)
    ids = [f"NV{i + 1:03d}" for i in range(staff_n)]
    family = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Võ", "Đặng", "Bùi"]
    given = ["Văn An", "Thị Bình", "Hữu Cường", "Thị Dung", "Minh Đức", "Thu Hà", "Quốc Huy", "Thị Lan"]
    for i, sid in enumerate(ids):
        staff.add(db, sid, f"{family[i % 8]} {given[(i // 8) % 8]} {i + 1}", "Văn phòng" if i % 2 else "Một cửa")
    now_iso = datetime.now(ZONE).isoformat(timespec="seconds")
    rows, seq = [], 0
    for d in days:
        for sid in ids:
            for hh, mm in ((7, 20), (11, 31), (13, 25), (17, 2)):
                seq += 1
                t = datetime(d.year, d.month, d.day, hh, mm + rng.randrange(0, 15), rng.randrange(60), tzinfo=ZONE)
                rows.append((str(uuid.uuid4()), "door-1", seq, t.isoformat(), d.isoformat(), 1, now_iso, "{}",
                             "card", f"{rng.getrandbits(32):08X}", sid, None))
    with db.conn:
        db.conn.executemany(
            "INSERT INTO attendance_events(event_id, node_id, seq, ts, local_date, clock_synced, received_at, payload,"
            " method, credential, staff_id, match_score) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    statuses = ["received", "processing", "supplement_required", "ready", "returned"]
    procedures = ["Chứng thực bản sao", "Đăng ký khai sinh", "Đăng ký kết hôn", "Xác nhận cư trú", "Cấp giấy phép xây dựng"]
    drows, hrows = [], []
    for i in range(dossiers_n):
        received = datetime.combine(days[rng.randrange(len(days))], datetime.min.time(), ZONE) + timedelta(hours=8)
        due = received + timedelta(days=rng.choice((1, 3, 5, 10, 15)))
        status = statuses[min(4, int(rng.random() * 5))] if due.date() < today else rng.choice(statuses[:3])
        code = f"H{received:%y%m%d}-{i:05d}"
        drows.append((code, f"{rng.choice(family)} {rng.choice(given)}", rng.choice(procedures), received.isoformat(),
                      due.isoformat(), status, str(1 + i % 3), received.isoformat(), received.isoformat()))
        hrows.append((code, status, received.isoformat(), "bench"))
    with db.conn:
        db.conn.executemany("INSERT INTO dossiers(code, applicant, procedure, received_at, due_at, status, desk,"
                            " status_changed_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?)", drows)
        db.conn.executemany("INSERT INTO dossier_history(code, status, at, source) VALUES (?,?,?,?)", hrows)
    levels = ["very_satisfied", "satisfied", "dissatisfied"]
    rrows = []
    for i in range(ratings_n):
        d = days[rng.randrange(len(days))]
        t = datetime(d.year, d.month, d.day, 9, rng.randrange(60), tzinfo=ZONE)
        rrows.append((str(uuid.uuid4()), "kiosk-1", i + 1, t.isoformat(), d.isoformat(), 1, now_iso, "{}", "1",
                      rng.choice(levels), "[]", None, rng.choice(ids[:10]), None))
    with db.conn:
        db.conn.executemany(
            "INSERT INTO rating_events(event_id, node_id, seq, ts, local_date, clock_synced, received_at, payload,"
            " desk_id, level, reasons, session_id, officer_id, dossier_code) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rrows)
    accounts.add_user(db, "bench-admin", "admin", PASSWORD)
    db.conn.close()
    return {"attendance": len(rows), "dossiers": dossiers_n, "ratings": ratings_n, "month": days[-1].strftime("%Y-%m")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def login(base: str) -> httpx.Client:
    c = httpx.Client(base_url=base, follow_redirects=False, timeout=30)
    form = c.get("/login")
    r = c.post("/login", data={"username": "bench-admin", "password": PASSWORD,
                               "csrf_token": CSRF_RE.search(form.text).group(1)})
    if r.status_code != 303:
        raise RuntimeError(f"bench login failed: {r.status_code} {r.text[:200]}")
    return c


def timed(client: httpx.Client, url: str, n: int, warm: int = 3) -> list[float]:
    for _ in range(warm):
        client.get(url)
    out = []
    for _ in range(n):
        t = time.perf_counter()
        r = client.get(url)
        out.append(time.perf_counter() - t)
        if r.status_code != 200:
            raise RuntimeError(f"GET {url}: {r.status_code} {r.text[:300]}")
    return out


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def rss_mb(pid: int) -> tuple[float, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def _load_process(base: str, urls: list[str], rps: float, workers: int, stop, results) -> None:
    # The office's browsers run on other PCs: here the load runs at the lowest
    # priority, so its own CPU is not what the ingest figure measures.
    os.nice(19)
    clients = [login(base) for _ in range(workers)]
    lock, counts, latencies = threading.Lock(), [0, 0], []
    t0 = time.monotonic()

    def run(worker: int) -> None:
        client, i = clients[worker], worker
        while not stop.is_set():
            wait = t0 + i / rps - time.monotonic()
            if wait > 0:
                stop.wait(wait)
            t = time.perf_counter()
            try:
                ok = client.get(urls[i % len(urls)]).status_code == 200
            except httpx.HTTPError:
                ok = False
            with lock:
                latencies.append(time.perf_counter() - t)
                counts[0 if ok else 1] += 1
            i += workers

    threads = [threading.Thread(target=run, args=(w,), daemon=True) for w in range(workers)]
    for t in threads:
        t.start()
    stop.wait()
    for t in threads:
        t.join(30)
    results.put((counts[0], counts[1], latencies, time.monotonic() - t0))


class Load:
    """Clients asking the console ``rps`` pages a second in all, on a fixed schedule, until stopped.

    ``workers`` clients share the schedule, so the rate offered holds while a
    page takes longer than 1/rps; what the console actually served is counted.
    They run in a child process at nice 19 (see ``_load_process``).
    """

    def __init__(self, base: str, urls: list[str], rps: float, workers: int = 4):
        ctx = mp.get_context("spawn")
        self.stop, self.results = ctx.Event(), ctx.Queue()
        self.proc = ctx.Process(target=_load_process, args=(base, urls, rps, workers, self.stop, self.results))

    def __enter__(self):
        self.proc.start()
        time.sleep(1.0)  # its logins done before the timed delivery starts
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.done, self.failed, self.latencies, self.seconds = self.results.get(timeout=60)
        self.proc.join(30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=60, help="timed requests per page")
    ap.add_argument("--events-per-node", type=int, default=4000)
    ap.add_argument("--rounds", type=int, default=2, help="ingest rounds without and with load, alternating")
    ap.add_argument("--load-rps", type=float, default=20.0)
    ap.add_argument("--quick", action="store_true", help="a smaller office, 15 requests, 1 round of 1000 events")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    sizes = (60, 250, 20_000, 5_000)
    if a.quick:
        sizes, a.requests, a.events_per_node, a.rounds = (60, 40, 2000, 500), 15, 1000, 1

    work = Path(tempfile.mkdtemp(prefix="congso-bench-console-"))
    broker = harness.Broker(ingest.SITE, NODES, log_path=work / "mosquitto.log")
    b = ingest.Bench(work, broker)
    results: dict = {}
    try:
        print(f"congso console bench; work dir {work}", flush=True)
        print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
        t = time.monotonic()
        year = make_year(b.gateway_db, *sizes)
        print(f"made a year of data in {time.monotonic() - t:.1f} s (not timed): {year['attendance']} attendance events, "
              f"{year['dossiers']} dossiers, {year['ratings']} ratings; month {year['month']}", flush=True)
        broker.start()
        ingest.start_gateway(b)
        port = free_port()
        env = b.env("gateway", work / "gateway")
        env.update(CONGSO_WEB_PORT=str(port), CONGSO_WEB_HOST="127.0.0.1")
        console = b.spawn("console", ["web", "run"], env, stdout="null")
        base = f"http://127.0.0.1:{port}"
        ingest.wait_until("the console", lambda: _up(base), b.procs)

        client = login(base)
        month = year["month"]
        pages = {
            "dashboard /": "/",
            "dossier list /dossiers": "/dossiers",
            "month timesheet page": f"/reports?month={month}",
            "month timesheet XLSX": f"/reports/attendance.xlsx?month={month}",
        }
        print(f"\n{'page (' + str(a.requests) + ' requests each)':40}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}  target")
        for name, url in pages.items():
            ts = timed(client, url, a.requests)
            target = 1000 if "XLSX" in name else 150
            verdict = "met" if pct(ts, 95) * 1000 <= target else "NOT MET"
            print(f"{name:40}{pct(ts, 50) * 1000:>9.1f}{pct(ts, 95) * 1000:>9.1f}{max(ts) * 1000:>9.1f}  "
                  f"p95 <= {target} ms {verdict}", flush=True)
            results[name] = ts
        rss, peak = rss_mb(console.pid)
        print(f"\nconsole RSS {rss:.1f} MB, peak {peak:.1f} MB (target <= 90 MB: {'met' if peak <= 90 else 'NOT MET'})",
              flush=True)

        # Ingest side by side: alternating rounds, so a slow spell of the machine hits both.
        m = a.events_per_node
        quiet, loaded, load_info = [], [], []
        stored = 0
        for r in range(a.rounds):
            for with_load in (False, True):
                for node in NODES:
                    b.fill_outbox(node, m - 1)
                stored += m
                if with_load:
                    with Load(base, list(pages.values())[:3], a.load_rps) as load:
                        seconds, _ = ingest.deliver(b, NODES, stored)
                    loaded.append(len(NODES) * m / seconds)
                    load_info.append((load.done / load.seconds, load.failed, pct(load.latencies, 95) if load.latencies else 0))
                else:
                    seconds, _ = ingest.deliver(b, NODES, stored)
                    quiet.append(len(NODES) * m / seconds)
                ingest.check_exactly_once(b, NODES, stored)
                print(f"round {r + 1} {'with console load' if with_load else 'no console load  '}: "
                      f"{len(NODES) * m / seconds:7.0f} events/s ({len(NODES) * m} events in {seconds:.2f} s, exactly once)"
                      + (f"; console served {load_info[-1][0]:.1f} pages/s, {load_info[-1][1]} failed, "
                         f"p95 {load_info[-1][2] * 1000:.0f} ms" if with_load else ""), flush=True)
        q, l_ = statistics.median(quiet), statistics.median(loaded)
        print(f"\n{'ingest, events/s':40}{'median':>10}")
        print(f"{'  without console load':40}{q:>10.0f}")
        print(f"{'  with the console under ' + format(a.load_rps, 'g') + ' pages/s':40}{l_:>10.0f}")
        verdict = "(quick run: not judged)" if a.quick else ("met" if l_ / q >= 0.9 else "NOT MET")
        print(f"{'  ratio (target >= 0.9)':40}{l_ / q:>10.2f}  {verdict}")
        rss, peak = rss_mb(console.pid)
        print(f"console RSS after the load {rss:.1f} MB, peak {peak:.1f} MB")
    finally:
        b.stop_all()
        broker.cleanup()
        if a.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _up(base: str) -> bool:
    try:
        return httpx.get(base + "/healthz", timeout=2).json().get("ok") is True
    except (httpx.HTTPError, json.JSONDecodeError, ValueError):
        return False


if __name__ == "__main__":
    main()
