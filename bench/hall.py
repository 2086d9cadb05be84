"""The waiting hall's TV: slides, a video handoff, an urgent notice, memory with a full cache, and a browser beside it.

    .venv/bin/python bench/hall.py [--seconds 60] [--quick]

1. slide change, in this process (SDL dummy video, the TV's own pages and
   Renderer): a picture slide replaced by the next one at 1920x1080 and at
   3840x2160 (65-inch commune TVs are 4K), from the frame's instructions to
   the picture presented, p50/p99/max. Side by side: **preloaded** (what the
   TV does: the next slide's picture is decoded and scaled while the current
   one shows) and **cold** (decoded and scaled at the change).
2. a whole hall on loopback, each a real process: Mosquitto, the gateway,
   the console (``congso web run``) and the TV at 1920x1080. The clerk adds
   a poster and a short H.264 clip (``congso announce add --image/--video``);
   the TV fetches them by SHA-256 as itself and plays them:
   - **video handoff**: the longest time without a picture around a clip:
     the TV's last frame to the player's start, the player's exit to the
     TV's next frame (the TV's health, ``video_handoff``), with mpv
     ``--vo=null`` (no screen here: on a Pi it is ``--vo=drm``);
   - **urgent notice latency**: the console's POST /announcements/urgent to
     the notice drawn on the TV (its screen.txt, written at the frame that
     drew it), p50 and max over several notices;
   - **TV memory with 200 MB of cached media**: the TV's own media cache
     filled with 200 MB (kept files of earlier slides, named by hash as the
     TV keeps them) while it rotates the board and the slides: RSS and PSS.
3. the same slides for a minute, side by side: ``congso signage run``
   rotating three picture slides every 10 s from its cache (no network), and
   headless Chromium showing the same three pictures rotating in a page (how
   browser-based players such as Anthias, PiSignage and Xibo play them):
   CPU seconds and peak PSS of each whole process tree, and the ratios.

Needs ffmpeg (the clip) and mpv (the player), as ``make test`` installs;
Chromium for part 3 (``make bench`` installs it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import pygame  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from signage import _tree_usage, chromium_binary, chromium_run, measure  # noqa: E402  (bench/signage.py)
from signage_helpers import NOW, full_view, picture_slide  # noqa: E402

from congso.protocol import messages  # noqa: E402
from congso.signage_node import pages  # noqa: E402
from congso.tools import demo_media, harness  # noqa: E402
from congso.ui import Renderer  # noqa: E402

SITE = "bench-hall"
TV = "tv-1"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "bench-hall-console-password"
SHOT_PAUSE_S = 0.6  # the TV writes its screenshot files at most twice a second


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def figures(values_ms: list[float]) -> str:
    return f"p50 {pct(values_ms, 50):7.1f} ms   p99 {pct(values_ms, 99):7.1f} ms   max {max(values_ms):7.1f} ms"


def posters(folder: Path, size: tuple[int, int], n: int) -> list[tuple[str, int, Path]]:
    """``n`` different posters at ``size`` as JPEG (what a province sends), each (sha256, bytes, path)."""
    out = []
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = demo_media.poster([(f"Thông báo số {i + 1}", size[1] // 9, demo_media.WHITE),
                                 ("Nộp hồ sơ trực tuyến, không cần đến UBND xã", size[1] // 22, demo_media.GOLD)], size)
        path = folder / f"poster-{size[0]}x{size[1]}-{i}.jpg"
        img.save(path, "JPEG", quality=90)
        data = path.read_bytes()
        out.append((hashlib.sha256(data).hexdigest(), len(data), path))
    return out


# -- 1. slide change ----------------------------------------------------------------------------

def slide_change(size: tuple[int, int], rounds: int, work: Path) -> None:
    pics = posters(work / "pictures", size, 3)
    items = [picture_slide(sha, n, size, slide_id=f"s{i}") for i, (sha, n, _) in enumerate(pics)]
    view = full_view(states={"announcements": {"v": 1, "version": 1, "items": items}},
                     media={sha: str(path) for sha, _, path in pics})
    pygame.display.quit()
    pygame.display.init()
    screen = pygame.display.set_mode(size)
    slots = [s for s in pages.slots(view, size, ["slides"]) if s[0] == "slides"]
    if len(slots) < 2:
        raise RuntimeError(f"expected one slot per picture slide, got {slots}")
    results = {}
    for mode in ("preloaded", "cold"):
        r = Renderer(screen)
        r.draw(pages.frame(view, size, slots[0]))
        times = []
        for i in range(rounds * len(slots)):
            nxt = slots[(i + 1) % len(slots)]
            if mode == "preloaded":
                r.preload(pages.frame(view, size, nxt))  # while the current slide shows
            else:
                r = Renderer(screen)  # nothing decoded ahead
            t = time.perf_counter()
            r.draw(pages.frame(view, size, nxt))
            pygame.display.flip()
            times.append((time.perf_counter() - t) * 1000)
        results[mode] = times
    print(f"  {size[0]}x{size[1]}  preloaded (the TV)  {figures(results['preloaded'])}")
    print(f"  {size[0]}x{size[1]}  cold                {figures(results['cold'])}")


# -- 2. a whole hall ----------------------------------------------------------------------------

class Hall:
    def __init__(self, work: Path):
        self.work = work
        self.procs: list[harness.Proc] = []
        self.broker = harness.Broker(SITE, [TV, "kiosk-1"]).start()
        self.gw = work / "gateway"
        self.tv_dir = work / "tv"
        self.shots = work / "shots"
        env = self.broker.env("gateway", self.gw)
        harness.start_gateway(self.spawn, {**env, "CONGSO_HEALTH_INTERVAL_S": "1"})
        self.web, self.url = harness.start_console(self.spawn, {**env, "CONGSO_WEB_BROKER_PASSWD": str(self.broker.conf / "passwd")})
        self.tv = None

    def spawn(self, args, env, name=None, **options):
        p = harness.Proc(args, env, self.work / "logs" / f"{name or args[0]}-{len(self.procs)}.log", name=name, **options)
        self.procs.append(p)
        return p

    def congso(self, *args: str) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONGSO_")}
        env.update(CONGSO_DATA_DIR=str(self.gw), CONGSO_SITE_ID=SITE)
        r = subprocess.run([sys.executable, "-m", "congso", *args], env=env, capture_output=True, text=True, timeout=120)
        if r.returncode:
            raise RuntimeError(f"congso {' '.join(args)}: {r.stdout}{r.stderr}")
        return r.stdout

    def start_tv(self, **extra: str) -> None:
        env = self.broker.env(TV, self.tv_dir, SDL_VIDEODRIVER="dummy", CONGSO_DISPLAY_WIDTH="1920",
                              CONGSO_DISPLAY_HEIGHT="1080", CONGSO_SIGNAGE_CEC="none", CONGSO_CLOCK_SYNCED="yes",
                              CONGSO_SIGNAGE_ON_HOURS="00:00-24:00", CONGSO_HEALTH_INTERVAL_S="1",
                              CONGSO_SIGNAGE_ON_DAYS="monday,tuesday,wednesday,thursday,friday,saturday,sunday",
                              CONGSO_SIGNAGE_MEDIA_URL=self.url, CONGSO_LOG_LEVEL="WARNING",
                              CONGSO_SIGNAGE_VIDEO_PLAYER="mpv,--vo=null,--ao=null,--really-quiet", **extra)
        self.tv = self.spawn(["signage", "run", "--screenshot-dir", str(self.shots)], env, name="tv")

    def health(self) -> dict:
        try:
            with sqlite3.connect(f"file:{self.gw / 'gateway.sqlite'}?mode=ro", uri=True, timeout=5) as c:
                row = c.execute("SELECT last_health FROM nodes WHERE node_id=?", (TV,)).fetchone()
        except sqlite3.Error:
            return {}
        return json.loads(row[0]) if row and row[0] else {}

    def screen_text(self) -> str:
        try:
            return (self.shots / "screen.txt").read_text(encoding="utf-8")
        except OSError:
            return ""

    def close(self) -> None:
        harness.terminate_all(self.procs)
        for p in self.procs:
            p.close()
        self.broker.stop()


def video_handoff(hall: Hall, clips: int) -> None:
    clip = demo_media.make_clip(hall.work / "clip.mp4", seconds=4)
    poster = demo_media.make_poster(hall.work / "poster.png")
    hall.congso("announce", "add", "--title", "Áp phích", "--image", str(poster), "--seconds", "3")
    hall.congso("announce", "add", "--title", "Video VNeID", "--video", str(clip))
    hall.start_tv(CONGSO_SIGNAGE_PAGES="dossiers:2,slides")
    seen: dict[tuple, dict] = {}
    deadline = time.monotonic() + 30 + clips * 15
    while len(seen) < clips and time.monotonic() < deadline:
        h = hall.health().get("video_handoff")
        if h and h.get("ok") and h.get("played_s"):
            seen.setdefault((h.get("before_ms"), h.get("after_ms"), h.get("played_s")), h)
        time.sleep(0.3)
    if not seen:
        print(f"  no clip was played within the time (TV log: {hall.tv.log_path})")
        return
    before = [h["before_ms"] for h in seen.values()]
    after = [h["after_ms"] for h in seen.values()]
    print(f"  {len(seen)} clips: TV's last frame -> player  max {max(before):6.1f} ms; "
          f"player's exit -> TV's frame  max {max(after):6.1f} ms; longest gap {max(before + after):6.1f} ms (target <= 1000 ms)")
    changes = [hall.health().get("slide_change_ms")]
    if changes[0] is not None:
        print(f"  the TV's last page/slide change in health: {changes[0]:.1f} ms (loop start to present)")


def urgent_latency(hall: Hall, notices: int) -> None:
    import httpx

    from congso.gateway import accounts
    from congso.gateway.db import open_db

    db = open_db(hall.gw / "gateway.sqlite")
    try:
        if accounts.get_user(db, "bench-admin") is None:
            accounts.add_user(db, "bench-admin", "admin", PASSWORD)
    finally:
        db.conn.close()
    # One still page and no ticker: the TV's screen.txt is then written at the very frame
    # that draws the notice (file shots are at most 2 a second otherwise).
    hall.tv.terminate()
    hall.start_tv(CONGSO_SIGNAGE_PAGES="dossiers", CONGSO_SIGNAGE_TICKER_HZ="0")
    deadline = time.monotonic() + 20
    while "UBND" not in hall.screen_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    c = httpx.Client(base_url=hall.url, follow_redirects=False, timeout=30)
    form = c.get("/login")
    r = c.post("/login", data={"username": "bench-admin", "password": PASSWORD, "csrf_token": CSRF_RE.search(form.text).group(1)})
    if r.status_code != 303:
        raise RuntimeError(f"console login failed: {r.status_code}")
    total, posts = [], []
    for i in range(notices):
        title = f"Khẩn số {i + 1}: mất điện lúc 15:00"
        page = c.get("/announcements")
        token = CSRF_RE.search(page.text).group(1)
        t = time.monotonic()
        r = c.post("/announcements/urgent", data={"title": title, "body": "Xin quý khách thông cảm.", "minutes": "5",
                                                  "csrf_token": token})
        posts.append((time.monotonic() - t) * 1000)
        if r.status_code not in (200, 303):
            raise RuntimeError(f"POST /announcements/urgent: {r.status_code} {r.text[:200]}")
        while title not in hall.screen_text():
            if time.monotonic() - t > 10:
                raise RuntimeError(f"the notice did not show within 10 s (TV log {hall.tv.log_path})")
            time.sleep(0.01)
        total.append((time.monotonic() - t) * 1000)
        clear = CSRF_RE.search(c.get("/announcements").text).group(1)
        c.post("/announcements/urgent/clear", data={"csrf_token": clear})
        while title in hall.screen_text():
            time.sleep(0.05)
        time.sleep(SHOT_PAUSE_S)  # the next notice's frame is not held back by this one's screenshot file
    print(f"  {notices} notices: the console's request -> drawn on the TV  {figures(total)}  (target <= 2000 ms)")
    print(f"  of which the console's POST answered in  p50 {pct(posts, 50):.1f} ms")


def memory_with_cache(hall: Hall, mb: int, seconds: float) -> None:
    cache = hall.tv_dir / "media"
    cache.mkdir(parents=True, exist_ok=True)
    written = 0
    i = 0
    while written < mb * 2**20:
        data = os.urandom(8 * 2**20)  # kept files of earlier slides: as big as 4K posters and clips
        (cache / hashlib.sha256(data).hexdigest()).write_bytes(data)
        written += len(data)
        i += 1
    hall.tv.terminate()
    hall.start_tv(CONGSO_SIGNAGE_PAGES="dossiers:3,slides,calendar:3", CONGSO_SIGNAGE_MEDIA_CACHE_MB=str(mb + 100))
    time.sleep(8)
    peak_rss = peak_pss = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            with open(f"/proc/{hall.tv.proc.pid}/status") as f:
                rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) * 1024
        except (OSError, StopIteration):
            rss = 0
        _, pss = _tree_usage(hall.tv.proc.pid)
        peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
        time.sleep(0.25)
    held = hall.health().get("media_cache", {})
    print(f"  cache {written / 2**20:.0f} MB in {i} kept files + the hall's slides (health: {held}); "
          f"over {seconds:.0f} s of board, poster and clip: the TV process's peak RSS {peak_rss / 2**20:.1f} MiB "
          f"(target <= 100 MB); PSS of its tree, mpv included while a clip plays, {peak_pss / 2**20:.1f} MiB")


# -- 3. the same slides beside a browser --------------------------------------------------------

def tv_slides_run(pics, size, seconds: float, warmup: float) -> tuple[float, int]:
    data = Path(tempfile.mkdtemp(prefix="bench-hall-tv-"))
    (data / "state").mkdir(parents=True)
    (data / "media").mkdir()
    items = [picture_slide(sha, n, size, slide_id=f"s{i}", seconds=10) for i, (sha, n, _) in enumerate(pics)]
    for sha, _, path in pics:
        shutil.copy(path, data / "media" / sha)
    (data / "state" / "announcements.json").write_bytes(messages.dumps({"v": 1, "version": 1, "items": items}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONGSO_")}
    env.update({"SDL_VIDEODRIVER": "dummy", "CONGSO_DATA_DIR": str(data), "CONGSO_NODE_ID": TV, "CONGSO_MQTT_PORT": "1",
                "CONGSO_DISPLAY_WIDTH": str(size[0]), "CONGSO_DISPLAY_HEIGHT": str(size[1]), "CONGSO_SIGNAGE_CEC": "none",
                "CONGSO_SIGNAGE_ON_HOURS": "00:00-24:00", "CONGSO_CLOCK_SYNCED": "yes", "CONGSO_SIGNAGE_PAGES": "slides",
                "CONGSO_SIGNAGE_ON_DAYS": "monday,tuesday,wednesday,thursday,friday,saturday,sunday",
                "CONGSO_LOG_LEVEL": "WARNING"})
    try:
        return measure([sys.executable, "-m", "congso", "signage", "run"], seconds, env, warmup)
    finally:
        shutil.rmtree(data, ignore_errors=True)


def slides_html(pics, size) -> str:
    imgs = "".join(f"<img class='s{' on' if i == 0 else ''}' src='{path.as_uri()}'>" for i, (_, _, path) in enumerate(pics))
    return f"""<!doctype html><html lang="vi"><meta charset="utf-8"><style>
body{{margin:0;width:{size[0]}px;height:{size[1]}px;background:#000;overflow:hidden;font-family:'DejaVu Sans',sans-serif}}
header{{background:#003870;color:#fff;height:108px;display:flex;align-items:center;justify-content:space-between;padding:0 24px;font-size:44px}}
.s{{display:none;width:100%;height:{size[1] - 108 - 66}px;object-fit:contain}} .s.on{{display:block}}
footer{{position:fixed;bottom:0;height:66px;width:100%;background:#003870}}
</style><body><header><span>UBND xã Kỳ Châu</span><span id="clock"></span></header>{imgs}<footer></footer>
<script>
const s=[...document.querySelectorAll('.s')];let i=0;
setInterval(()=>{{s[i].classList.remove('on');i=(i+1)%s.length;s[i].classList.add('on')}},10000);
const c=document.getElementById('clock');const t=()=>{{const d=new Date();c.textContent=d.toLocaleTimeString('vi-VN',{{hour:'2-digit',minute:'2-digit'}})}};t();setInterval(t,1000);
</script></body></html>"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="The measured windows of parts 2 and 3.")
    ap.add_argument("--rounds", type=int, default=20, help="Slide changes per picture in part 1.")
    ap.add_argument("--quick", action="store_true", help="Shorter windows and fewer rounds (a check that it runs).")
    args = ap.parse_args()
    if args.quick:
        args.seconds, args.rounds = 15.0, 4
    work = Path(tempfile.mkdtemp(prefix="bench-hall-"))
    try:
        print("1. a picture slide replaced by the next (instructions to the picture presented):")
        for size in ((1920, 1080), (3840, 2160)):
            slide_change(size, args.rounds, work)
        pygame.display.quit()
        if not (shutil.which("ffmpeg") and shutil.which("mpv")):
            print("\n2. skipped: needs ffmpeg and mpv (apt-get install ffmpeg mpv)")
        else:
            print("\n2. a whole hall on loopback (broker, gateway, console, TV at 1920x1080):")
            hall = Hall(work / "hall")
            try:
                video_handoff(hall, clips=2 if args.quick else 4)
                urgent_latency(hall, notices=3 if args.quick else 10)
                memory_with_cache(hall, 200, args.seconds)
            finally:
                hall.close()
        size = (1920, 1080)
        pics = posters(work / "same", size, 3)
        warmup = 5.0
        print(f"\n3. three picture slides rotating every 10 s at {size[0]}x{size[1]}, {args.seconds:.0f} s after "
              f"{warmup:.0f} s of start-up, whole process trees:")
        cpu_c, pss_c = tv_slides_run(pics, size, args.seconds, warmup)
        print(f"  congso signage run   CPU {cpu_c:6.2f} s ({cpu_c / args.seconds * 100:5.1f} % of a core)   peak PSS {pss_c / 2**20:7.1f} MiB")
        if chromium_binary() is None:
            print("  headless Chromium    not installed: apt-get install chromium (or make bench) for the ratios")
            return 0
        cpu_b, pss_b = chromium_run(size, args.seconds, warmup, slides_html(pics, size))
        print(f"  headless Chromium    CPU {cpu_b:6.2f} s ({cpu_b / args.seconds * 100:5.1f} % of a core)   peak PSS {pss_b / 2**20:7.1f} MiB")
        print(f"  ratio Chromium/congso: CPU {cpu_b / max(cpu_c, 1e-3):.1f}x (the 15x target is the board's: bench/signage.py), memory {pss_b / max(pss_c, 1):.1f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
