"""Rating kiosk benchmark: touch to thank-you frame, idle CPU, memory, in one run.

    .venv/bin/python bench/rating.py [--touches N] [--idle-s S] [--quick]

1. latency: the real kiosk app (SDL dummy video at 1280x720, gpiozero mock
   pins) connected to a real Mosquitto. A FINGERDOWN event is posted at a
   level button's centre (from the layout's own targets) and the time is
   taken when the thank-you frame has been drawn and presented. Two modes,
   interleaved in blocks so that machine noise hits both alike:
   - commit: the real path, the vote committed to the SQLite outbox
     (WAL, synchronous=FULL) before the thank-you;
   - no-commit: the same with the commit replaced by a no-op, so the
     difference is the price of durability;
   and a third, button: a GPIO press (mock pin driven low) with the commit.
2. idle: a real `congso rating run` process on the idle screen, connected
   to the broker: CPU seconds used over S seconds, and its RSS; side by side
   with a bare pygame process that opens the same dummy display and waits
   for events (the floor any pygame kiosk pays).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import pygame  # noqa: E402
from gpiozero.pins.mock import MockFactory  # noqa: E402

from congso.tools import harness  # noqa: E402
from congso.protocol import settings as settings_mod  # noqa: E402
from congso.rating_node import screens  # noqa: E402
from congso.rating_node.app import KioskApp  # noqa: E402

SITE = "bench"
SIZE = (1280, 720)
BUTTONS = ["GPIO17", "GPIO27", "GPIO22"]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


class ThanksClock:
    """Wraps Display.present: the moment the thank-you frame reaches the screen."""

    def __init__(self, app: KioskApp):
        self.app = app
        self.event = threading.Event()
        self.at = 0.0
        present = app.display.present

        def timed():
            present()
            if app.kiosk.screen == "thanks" and not self.event.is_set():
                self.at = time.perf_counter()
                self.event.set()
        app.display.present = timed


def latency(env: dict, touches: int, block: int) -> dict[str, list[float]]:
    settings = settings_mod.load(environ=env)
    factory = MockFactory()
    app = KioskApp(settings, pin_factory=factory)
    thread = threading.Thread(target=app.run, daemon=True)
    thread.start()
    assert app.ready.wait(20)
    app.runtime.link.wait_connected(10)
    clock = ThanksClock(app)
    real_commit = app.kiosk.commit
    results: dict[str, list[float]] = {"commit": [], "no-commit": [], "button": []}
    modes = list(results)
    n = 0
    while n < touches:
        for mode in modes:
            app.call(lambda: setattr(app.kiosk, "commit", real_commit if mode != "no-commit" else (lambda f: f)))
            for i in range(block):
                while app.kiosk.screen != "idle" or app.kiosk.view(time.monotonic()).locked:
                    time.sleep(0.002)
                app.call(lambda: None)
                clock.event.clear()
                level = i % 2
                t0 = time.perf_counter()
                if mode == "button":
                    pin = factory.pin(BUTTONS[level])
                    pin.drive_low()
                    pin.drive_high()
                else:
                    x, y = screens.center(app.screen, f"level:{level}")
                    pygame.event.post(pygame.event.Event(pygame.FINGERDOWN, x=x / SIZE[0], y=y / SIZE[1], dx=0.0,
                                                         dy=0.0, touch_id=1, finger_id=0, pressure=1.0))
                assert clock.event.wait(10), f"no thank-you frame ({mode})"
                results[mode].append((clock.at - t0) * 1000)
        n += block
    committed = app.runtime.outbox.depth()  # no gateway here: every committed vote is still in the outbox
    app.stop()
    thread.join(10)
    results["_votes"] = [committed]
    return results


def cpu_and_rss(pid: int, seconds: float) -> tuple[float, float]:
    tick = os.sysconf("SC_CLK_TCK")

    def cpu():
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick

    before = cpu()
    time.sleep(seconds)
    used = cpu() - before
    rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
               if line.startswith("VmRSS")) / 1024
    return used, rss


BARE = """
import os, pygame
pygame.display.init(); pygame.font.init()
pygame.display.set_mode((1280, 720))
while pygame.event.wait(1000).type != pygame.QUIT:  # SDL turns SIGTERM into QUIT
    pass
"""


def idle(env: dict, seconds: float, work: Path) -> dict[str, tuple[float, float]]:
    out = {}
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CONGSO_")}
    full_env.update(env)
    full_env["GPIOZERO_PIN_FACTORY"] = "mock"
    for name, cmd in (("kiosk", [sys.executable, "-m", "congso", "rating", "run"]),
                      ("bare pygame", [sys.executable, "-c", BARE])):
        with open(work / f"{name.replace(' ', '-')}.log", "wb") as log:
            proc = subprocess.Popen(cmd, env=full_env, stdout=log, stderr=log)
        try:
            time.sleep(5)  # start-up, first frame, connect
            assert proc.poll() is None, (work / f"{name}.log").read_text()[-2000:]
            out[name] = cpu_and_rss(proc.pid, seconds)
        finally:
            proc.terminate()
            proc.wait(15)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--touches", type=int, default=300, help="Touches per mode.")
    ap.add_argument("--idle-s", type=float, default=20.0, help="Seconds of idle measured.")
    ap.add_argument("--quick", action="store_true", help="60 touches per mode, 5 s idle: a smoke test.")
    ap.add_argument("--keep", action="store_true", help="Keep the work directory.")
    args = ap.parse_args()
    if args.quick:
        args.touches, args.idle_s = 60, 5.0
    work = Path(tempfile.mkdtemp(prefix="congso-bench-rating-"))
    broker = harness.Broker(SITE, ["kiosk-1", "kiosk-2"], log_path=work / "mosquitto.log").start()
    port, creds = broker.port, broker.credentials
    base = {"CONGSO_SITE_ID": SITE, "CONGSO_MQTT_PORT": str(port), "CONGSO_CLOCK_SYNCED": "yes",
            "CONGSO_RATING_DESK_ID": "mot-cua-1", "CONGSO_DISPLAY_WIDTH": str(SIZE[0]),
            "CONGSO_DISPLAY_HEIGHT": str(SIZE[1]), "CONGSO_LOG_LEVEL": "WARNING"}
    try:
        lat_env = {**base, "CONGSO_NODE_ID": "kiosk-1", "CONGSO_MQTT_USERNAME": "kiosk-1",
                   "CONGSO_MQTT_PASSWORD": creds["kiosk-1"], "CONGSO_DATA_DIR": str(work / "kiosk-1"),
                   "CONGSO_GPIO_BUTTONS": ",".join(BUTTONS), "CONGSO_RATING_LOCKOUT_S": "0.01",
                   "CONGSO_RATING_THANKS_S": "0.01", "CONGSO_RATING_PRESS_GUARD_S": "0"}
        lat = latency(lat_env, args.touches, block=20)
        idle_env = {**base, "CONGSO_NODE_ID": "kiosk-2", "CONGSO_MQTT_USERNAME": "kiosk-2",
                    "CONGSO_MQTT_PASSWORD": creds["kiosk-2"], "CONGSO_DATA_DIR": str(work / "kiosk-2")}
        idl = idle(idle_env, args.idle_s, work)
    finally:
        broker.kill()
        broker.cleanup()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"work directory kept: {work}")
    print(f"touch/press -> thank-you frame presented, {SIZE[0]}x{SIZE[1]} SDL dummy, ms "
          f"({len(lat['commit'])} per mode, interleaved in blocks of 20)")
    print(f"  {'mode':<12}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}")
    for mode in ("commit", "no-commit", "button"):
        v = lat[mode]
        print(f"  {mode:<12}{statistics.median(v):8.2f}{pct(v, 90):8.2f}{pct(v, 99):8.2f}{max(v):8.2f}")
    print(f"  durability costs {statistics.median(lat['commit']) - statistics.median(lat['no-commit']):.2f} ms at the median"
          f" ({lat['_votes'][0]} votes in the outbox: commit and button modes)")
    print(f"idle over {args.idle_s:g} s:")
    print(f"  {'process':<14}{'CPU s':>8}{'CPU %':>8}{'RSS MiB':>9}")
    for name, (cpu, rss) in idl.items():
        print(f"  {name:<14}{cpu:8.2f}{100 * cpu / args.idle_s:8.2f}{rss:9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
