"""Signage benchmark: what a frame costs, and the TV node against a browser over the same minute.

    .venv/bin/python bench/signage.py [--size 1920x1080] [--seconds 60] [--quick]

1. frames, in this process (SDL dummy video, the real pages and Renderer):
   - page change: the next page of the rotation drawn (instructions built
     and drawn; text surfaces warm after the first round, as on a TV that
     has shown each page once), p50/p99;
   - idle frame: what the render loop pays on a tick when nothing changed
     (frame built, compared, not drawn), p50/p99;
   - ticker step: the footer strip redrawn, p50/p99;
   - present: the picture put on the (dummy) screen.
2. the same minute, side by side, each a real process tree with a 1920x1080
   board of the same data (14 dossiers, this week's calendar, two notices,
   satisfaction), rotating pages every 15 s and a moving ticker:
   - `congso signage run` (dummy video, state from its kept files);
   - headless Chromium showing an equivalent HTML page (CSS animation for
     the ticker, a script for the clock and the rotation), the way
     browser-based players (Anthias, PiSignage, Xibo) draw;
   CPU seconds (user + system, the whole process tree) and peak memory
   (PSS summed over the tree, so shared pages count once; sampled every
   0.25 s), with the ratios.

Chromium is optional: `apt-get install chromium`. Without it, part 2 prints
the congso figures and says how to get the comparison.
"""

from __future__ import annotations

import argparse
import html
import os
import shutil
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

from signage_helpers import NOW, full_view  # noqa: E402

from congso.protocol import messages  # noqa: E402
from congso.signage_node import pages  # noqa: E402
from congso.ui import Renderer  # noqa: E402


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def ms(values: list[float]) -> str:
    return f"p50 {pct(values, 50) * 1000:7.2f} ms   p99 {pct(values, 99) * 1000:7.2f} ms"


# -- 1. frames ---------------------------------------------------------------------------

def frames(size: tuple[int, int], rounds: int) -> None:
    pygame.display.init()
    pygame.font.init()
    screen = pygame.display.set_mode(size)
    w, h = size
    fh = pages.footer_height(size)
    surface = pygame.Surface(size)
    main = Renderer(surface.subsurface((0, 0, w, h - fh)))
    footer = Renderer(surface.subsurface((0, h - fh, w, fh)))
    view = full_view()
    slots = pages.slots(view, size, list(pages.PAGE_NAMES))
    text = pages.ticker_text(view)
    width = footer.measure(text, pages.ticker_font(size))[0]

    cold = []
    for slot in slots:  # first time each page is drawn: every string rendered
        t = time.perf_counter()
        main.draw(pages.frame(view, size, slot))
        cold.append(time.perf_counter() - t)
    change, idle, tick, present = [], [], [], []
    for r in range(rounds):
        for slot in slots:
            t = time.perf_counter()
            main.draw(pages.frame(view, size, slot))
            change.append(time.perf_counter() - t)
            for _ in range(3):
                t = time.perf_counter()
                drew = main.draw(pages.frame(view, size, slot))
                idle.append(time.perf_counter() - t)
                assert not drew
            t = time.perf_counter()
            footer.draw(pages.ticker(text, size, len(tick) * 12, width))
            tick.append(time.perf_counter() - t)
            t = time.perf_counter()
            screen.blit(surface, (0, 0))
            pygame.display.flip()
            present.append(time.perf_counter() - t)
    print(f"frames at {w}x{h} ({len(slots)} pages, {rounds} rounds):")
    print(f"  first draw of a page   {ms(cold)}   (every string rendered)")
    print(f"  page change            {ms(change)}")
    print(f"  idle frame             {ms(idle)}   (built and compared, nothing drawn)")
    print(f"  ticker step            {ms(tick)}   (footer strip only)")
    print(f"  present (dummy video)  {ms(present)}")
    pygame.display.quit()


# -- 2. the same minute ----------------------------------------------------------------------

def _tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def _tree_usage(pid: int) -> tuple[float, int]:
    """(CPU seconds of live processes in the tree, PSS sum in bytes)."""
    tick = os.sysconf("SC_CLK_TCK")
    cpu, rss = 0.0, 0
    for p in _tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / tick
            # PSS: pages shared between the tree's processes (Chromium's
            # zygote, the libraries) counted once in all, not once per process.
            with open(f"/proc/{p}/smaps_rollup") as f:
                pss = next(line for line in f if line.startswith("Pss:"))
            rss += int(pss.split()[1]) * 1024
        except (OSError, IndexError, ValueError, StopIteration):
            continue
    return cpu, rss


def measure(args: list[str], seconds: float, env: dict | None = None, warmup: float = 5.0) -> tuple[float, int]:
    """Run ``args`` for warmup + seconds; CPU seconds over the last ``seconds`` and peak tree RSS."""
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        time.sleep(warmup)
        cpu0, _ = _tree_usage(proc.pid)
        peak = 0
        end = time.monotonic() + seconds
        cpu1 = cpu0
        while time.monotonic() < end:
            cpu, rss = _tree_usage(proc.pid)
            cpu1 = max(cpu1, cpu)
            peak = max(peak, rss)
            time.sleep(0.25)
        if proc.poll() is not None:
            raise RuntimeError(f"{args[0]} exited early with {proc.returncode}")
        return cpu1 - cpu0, peak
    finally:
        try:
            os.killpg(proc.pid, 15)
        except ProcessLookupError:
            pass
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()


def congso_run(size, seconds: float, warmup: float) -> tuple[float, int]:
    data = Path(tempfile.mkdtemp(prefix="bench-signage-"))
    view = full_view()
    (data / "state").mkdir(parents=True)
    for name, payload in view.states.items():
        (data / "state" / f"{name}.json").write_bytes(messages.dumps(payload))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONGSO_")}
    env.update({"SDL_VIDEODRIVER": "dummy", "CONGSO_DATA_DIR": str(data), "CONGSO_NODE_ID": "tv-1",
                "CONGSO_MQTT_PORT": "1", "CONGSO_DISPLAY_WIDTH": str(size[0]), "CONGSO_DISPLAY_HEIGHT": str(size[1]),
                "CONGSO_SIGNAGE_CEC": "none", "CONGSO_SIGNAGE_ON_HOURS": "00:00-24:00", "CONGSO_CLOCK_SYNCED": "yes",
                "CONGSO_SIGNAGE_ON_DAYS": "monday,tuesday,wednesday,thursday,friday,saturday,sunday",
                "CONGSO_LOG_LEVEL": "WARNING"})
    try:
        return measure([sys.executable, "-m", "congso", "signage", "run"], seconds, env, warmup)
    finally:
        shutil.rmtree(data, ignore_errors=True)


def board_html(size) -> str:
    """The same board as a web page, as a browser-based player would show it."""
    view = full_view()
    e = html.escape
    rows = "".join(
        f"<tr class='{'late' if pages.is_overdue(d['status'], d['due_at'], NOW) else ''}'><td>{e(d['code'])}</td>"
        f"<td>{e(d['applicant'])}</td><td>{e(d['procedure'])}</td><td>{e(d['due_at'])}</td>"
        f"<td>{e(pages.STATUS_VI[d['status']])}</td></tr>" for d in view.states["dossiers"]["dossiers"][:11])
    counts = "".join(f"<div class='tile'><b>{n}</b><span>{e(pages.STATUS_VI[k])}</span></div>"
                     for k, n in view.states["dossiers"]["counts"].items() if k != "returned")
    cal = "".join(f"<tr><td>{e(x['start'])}</td><td>{e(', '.join(x['leaders']))}</td><td>{e(x['title'])}</td></tr>"
                  for x in view.states["calendar"]["entries"])
    ann = "".join(f"<section class='page'><h1>{e(a['title'])}</h1><p>{e(a['body'])}</p></section>"
                  for a in view.states["announcements"]["items"])
    ticker = e(pages.ticker_text(view))
    return f"""<!doctype html><html lang="vi"><meta charset="utf-8"><style>
body{{margin:0;width:{size[0]}px;height:{size[1]}px;font-family:'DejaVu Sans',sans-serif;background:#f4f6f9;overflow:hidden}}
header{{background:#003870;color:#fff;height:108px;display:flex;align-items:center;justify-content:space-between;padding:0 24px;font-size:44px}}
.page{{display:none;padding:20px}} .page.on{{display:block}} table{{width:100%;border-collapse:collapse;font-size:30px}}
td{{padding:12px}} tr:nth-child(even){{background:#e6ebf2}} tr.late{{background:#c82020;color:#fff}}
.tiles{{display:flex;gap:14px}} .tile{{flex:1;background:#2864b4;color:#fff;border-radius:12px;text-align:center;font-size:24px;padding:8px}}
.tile b{{display:block;font-size:48px}} footer{{position:fixed;bottom:0;height:66px;width:100%;background:#003870;color:#fff;overflow:hidden;font-size:33px}}
footer span{{position:absolute;white-space:nowrap;line-height:66px;animation:m 40s linear infinite}}
@keyframes m{{from{{transform:translateX({size[0]}px)}}to{{transform:translateX(-100%)}}}}
</style><body><header><span>UBND xã Kỳ Châu</span><span id="clock"></span></header>
<section class="page on"><h1>Tình hình giải quyết hồ sơ</h1><div class="tiles">{counts}</div><table>{rows}</table></section>
<section class="page"><h1>Lịch công tác tuần này</h1><table>{cal}</table></section>{ann}
<section class="page"><h1>Mức độ hài lòng</h1><p style="font-size:160px">96%</p></section>
<footer><span>{ticker}</span></footer>
<script>
const pages=[...document.querySelectorAll('.page')];let i=0;
setInterval(()=>{{pages[i].classList.remove('on');i=(i+1)%pages.length;pages[i].classList.add('on')}},15000);
const c=document.getElementById('clock');const t=()=>{{const d=new Date();c.textContent=d.toLocaleDateString('vi-VN')+' '+d.toLocaleTimeString('vi-VN',{{hour:'2-digit',minute:'2-digit'}})}};t();setInterval(t,1000);
</script></body></html>"""


def chromium_binary() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def chromium_run(size, seconds: float, warmup: float, page_html: str | None = None) -> tuple[float, int]:
    """Headless Chromium showing ``page_html`` (default: the board) for warmup + seconds."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-chromium-"))
    page = tmp / "board.html"
    page.write_text(page_html or board_html(size), encoding="utf-8")
    args = [chromium_binary(), "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
            f"--user-data-dir={tmp / 'profile'}", f"--window-size={size[0]},{size[1]}", "--remote-debugging-port=0",
            "--hide-scrollbars", "--mute-audio", page.as_uri()]
    try:
        return measure(args, seconds, None, warmup)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--seconds", type=float, default=60.0, help="The measured window of part 2.")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="20 s windows, 5 rounds.")
    args = ap.parse_args()
    size = tuple(int(x) for x in args.size.lower().split("x"))
    if args.quick:
        args.seconds, args.rounds = 20.0, 5
    frames(size, args.rounds)

    warmup = 5.0
    print(f"\nthe same {args.seconds:.0f} s at {size[0]}x{size[1]} (after {warmup:.0f} s of start-up), whole process tree:")
    cpu_c, rss_c = congso_run(size, args.seconds, warmup)
    print(f"  congso signage run   CPU {cpu_c:6.2f} s ({cpu_c / args.seconds * 100:5.1f} % of a core)   peak PSS {rss_c / 2**20:7.1f} MiB")
    if chromium_binary() is None:
        print("  headless Chromium    not installed: apt-get install chromium  (then run this again for the ratios)")
        return 0
    cpu_b, rss_b = chromium_run(size, args.seconds, warmup)
    print(f"  headless Chromium    CPU {cpu_b:6.2f} s ({cpu_b / args.seconds * 100:5.1f} % of a core)   peak PSS {rss_b / 2**20:7.1f} MiB")
    print(f"  ratio Chromium/congso: CPU {cpu_b / max(cpu_c, 1e-3):.1f}x, memory {rss_b / max(rss_c, 1):.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
