"""The office for the real-browser tests: broker, gateway, a TV, a door, a kiosk and ``congso web run``.

Everything is a real process, started once for the module (``start_office``):

- the gateway on its own database (``office.db_path``);
- the hall TV (``congso signage run`` on SDL's dummy screen, calendar page only,
  a text dump of every frame in ``office.tv_shots/screen.txt``);
- the door (``congso attendance run``) with the fingerprint module emulator on a
  pty in this process (``office.finger``) and, when this process could start
  its own pcscd, the card reader on vpcd's virtual reader (``office.card_reader``);
- the rating kiosk (``congso rating run``) at desk ``mot-cua-1``;
- the console (``congso web run``) on a free loopback port (``office.url``).

``Browser`` is Debian's chromium through Selenium with Debian's chromedriver
(never a download: the paths are given, Selenium Manager is never asked),
headless at a fixed 1280x900 page. ``browser.shot(name)`` saves the page
as ``test-out/console/<name>.png``: the pictures of docs/console.md (copied
to ``docs/console/``). A test that fails leaves the page it failed on in
``test-out/console-failed/<test>.png``.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from congso.gateway import accounts, staff
from congso.gateway.db import open_db
from congso.protocol.statecache import StateCache
from congso.tools import harness
from congso.tools.harness import Proc, wait_for

from conftest import query, run_congso

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
OUT = Path(__file__).resolve().parent.parent / "test-out" / "console"
FAILED_OUT = OUT.parent / "console-failed"
WINDOW = (1280, 900)
PASSWORD = "mat-khau-trinh-duyet-10"
OFFICE_NAME = "UBND xã Kỳ Châu"
DESK = "mot-cua-1"
TV_SIZE = (1280, 720)
PINS = {"CONGSO_GPIO_GREEN_LED": "GPIO17", "CONGSO_GPIO_RED_LED": "GPIO18",
        "CONGSO_GPIO_BUZZER": "GPIO22", "CONGSO_GPIO_RELAY": "GPIO27", "CONGSO_GPIO_RELAY_PULSE_S": "0.5"}

# The office's people: (staff_id, name, department).
STAFF = [("NV001", "Nguyễn Thị Thu Hà", "Bộ phận một cửa"),
         ("NV002", "Trần Văn Bình", "Văn phòng"),
         ("NV003", "Lê Thị Hồng", "Tư pháp - Hộ tịch")]


class Procs:
    """Real processes for a whole module (the suite's ``spawn`` is per test)."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.all: list[Proc] = []

    def spawn(self, args: list[str], env: dict[str, str], name: str) -> Proc:
        p = Proc(args, env, self.log_dir / f"{name}.log", name=name)
        self.all.append(p)
        return p

    def close(self) -> None:
        harness.terminate_all(self.all, timeout=10)
        for p in self.all:
            p.close()


class Office:
    def __init__(self, root: Path, broker, procs: Procs):
        self.root, self.broker, self.procs = root, broker, procs
        self.gw_dir = root / "gateway"
        self.db_path = self.gw_dir / "gateway.sqlite"
        self.tv_dir, self.tv_shots = root / "tv-1", root / "tv-shots"
        self.door_dir, self.kiosk_dir = root / "door-1", root / "kiosk-1"
        self.finger = None
        self.card_reader = False
        self.card_skip_reason = ""
        self.url = ""

    # -- the gateway's database ---------------------------------------------------
    @contextlib.contextmanager
    def db(self):
        db = open_db(self.db_path)
        try:
            yield db
        finally:
            db.conn.close()

    def user(self, name: str, role: str, staff_id: str | None = None, desks=()) -> str:
        """A console user with ``PASSWORD`` (through ``congso.gateway.accounts``, as ``congso web user add``)."""
        with self.db() as db:
            if accounts.get_user(db, name) is None:
                accounts.add_user(db, name, role, PASSWORD, staff_id)
            if desks:
                accounts.set_desks(db, name, list(desks))
        return name

    def query(self, sql: str, params=()) -> list[tuple]:
        return query(self.db_path, sql, params)

    def cli(self, *args: str) -> str:
        r = run_congso(*args, **self.broker.env("gateway", self.gw_dir))
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout

    # -- what the nodes keep ------------------------------------------------------
    def tv_text(self) -> str:
        try:
            return (self.tv_shots / "screen.txt").read_text(encoding="utf-8")
        except FileNotFoundError:
            return ""

    def tv_state(self, name: str) -> dict | None:
        return StateCache(self.tv_dir / "state").load(name)

    def kiosk_state(self, desk: str = DESK) -> dict | None:
        return StateCache(self.kiosk_dir / "state").load(f"desk/{desk}")

    def node_screenshot(self, node: str, path: Path) -> Path:
        """``congso node screenshot NODE -o PATH``: what the screen shows now, through the gateway."""
        self.cli("node", "screenshot", node, "-o", str(path))
        return path

    def scan_finger(self, finger: str, staff_id: str, timeout: float = 20) -> str:
        """Place ``finger`` at the door until it is accepted for ``staff_id`` (the roster may still be on its
        way); the event id of the accepted scan."""
        deadline = time.monotonic() + timeout
        while True:
            self.finger.place(finger)
            line = self.door.readline_until("feedback ", max(1.0, deadline - time.monotonic()))
            self.finger.lift()
            words = line.split()
            if words[1:5] == ["accepted", "finger", words[3], staff_id]:
                return words[5]
            if time.monotonic() > deadline:
                raise AssertionError(f"{finger} not accepted for {staff_id} at the door: {line}; log:\n{self.door.tail()}")
            time.sleep(0.5)

    def tap_card(self, uid: str, timeout: float = 10) -> str:
        """A card on the door's reader (vpcd's virtual card through this module's pcscd), then off; the door's line."""
        from congso.devices.virtualcard import VirtualCard

        card = VirtualCard(uid)
        try:
            card.insert()
            line = self.door.readline_until("feedback ", timeout)
            card.remove()
        finally:
            card.close()
        time.sleep(0.4)  # past the reader's debounce: the next tap is a tap of its own
        return line

    def online(self, node: str) -> bool:
        return self.query("SELECT state FROM nodes WHERE node_id=?", (node,)) == [("online",)]


def _door_env(office: Office, card_backend: str, finger_port: str) -> dict[str, str]:
    return office.broker.env("door-1", office.door_dir, GPIOZERO_PIN_FACTORY="mock", CONGSO_CARD_BACKEND=card_backend,
                             CONGSO_CARD_READER="Virtual PCD 00 00", CONGSO_CARD_DEBOUNCE_S="0.3",
                             CONGSO_FINGERPRINT_BACKEND="serial", CONGSO_FINGERPRINT_PORT=finger_port,
                             CONGSO_ATTENDANCE_FINGER_POLL_S="0.05", CONGSO_ATTENDANCE_ENROLL_TIMEOUT_S="30",
                             CONGSO_ATTENDANCE_REPEAT_WINDOW_S="2", **PINS)


def start_office(root: Path, broker, procs: Procs, *, pcscd_ok: bool, emulators: list) -> Office:
    """Gateway, TV, door, kiosk and console, all connected; the staff list in the database.

    The fingerprint emulator is appended to ``emulators`` (for the caller to stop);
    ``pcscd_ok``: this process runs its own pcscd, so the door reads cards on vpcd.
    """
    from congso.devices.fingerprint.emulator import FingerprintEmulator

    office = Office(root, broker, procs)
    office.gateway = harness.start_gateway(procs.spawn, broker.env("gateway", office.gw_dir, CONGSO_SITE_NAME=OFFICE_NAME))
    with office.db() as db:
        for staff_id, name, department in STAFF:
            staff.add(db, staff_id, name, department)

    office.tv = procs.spawn(
        ["signage", "run", "--screenshot-dir", str(office.tv_shots)],
        broker.env("tv-1", office.tv_dir, SDL_VIDEODRIVER="dummy", CONGSO_DISPLAY_WIDTH=str(TV_SIZE[0]),
                   CONGSO_DISPLAY_HEIGHT=str(TV_SIZE[1]), CONGSO_SIGNAGE_CEC="none",
                   CONGSO_SIGNAGE_ON_HOURS="00:00-24:00", CONGSO_SITE_NAME=OFFICE_NAME,
                   CONGSO_SIGNAGE_ON_DAYS="monday,tuesday,wednesday,thursday,friday,saturday,sunday",
                   CONGSO_SIGNAGE_PAGES="calendar", CONGSO_SIGNAGE_CHECK_HZ="10"),
        name="tv")

    office.finger = FingerprintEmulator(timing=0.1)
    emulators.append(office.finger)  # the caller stops it, even when a start below fails
    office.card_reader = pcscd_ok
    office.door = procs.spawn(["attendance", "run"],
                              _door_env(office, "pcsc" if pcscd_ok else "none", office.finger.start()), name="door")

    office.kiosk = procs.spawn(
        ["rating", "run"],
        broker.env("kiosk-1", office.kiosk_dir, CONGSO_RATING_DESK_ID=DESK, CONGSO_DISPLAY_WIDTH="1280",
                   CONGSO_DISPLAY_HEIGHT="720", SDL_VIDEODRIVER="dummy", GPIOZERO_PIN_FACTORY="mock",
                   CONGSO_SITE_NAME=OFFICE_NAME),
        name="kiosk")

    office.console, office.url = harness.start_console(
        procs.spawn, broker.env("gateway", office.gw_dir, CONGSO_SITE_NAME=OFFICE_NAME))
    for node, proc in (("tv-1", office.tv), ("door-1", office.door), ("kiosk-1", office.kiosk)):
        wait_for(lambda: office.online(node), 30, f"{node} online at the gateway", proc)
    wait_for(lambda: "Lịch công tác" in office.tv_text(), 20, "the TV's calendar page", office.tv)
    return office


# -- the browser ------------------------------------------------------------------

class Browser:
    """One headless chromium; ``go``, ``fill``, ``click``, waits, and ``shot``."""

    def __init__(self, base_url: str, profile: Path, downloads: Path):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never fetch a browser or a driver
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--no-first-run", "--disable-quic", "--no-proxy-server", f"--window-size={WINDOW[0]},{WINDOW[1]}",
                    f"--user-data-dir={profile}", "--lang=vi"):
            options.add_argument(arg)
        downloads.mkdir(parents=True, exist_ok=True)
        options.add_experimental_option("prefs", {
            "download.default_directory": str(downloads), "download.prompt_for_download": False,
            "download.directory_upgrade": True, "safebrowsing.enabled": False,
            "intl.accept_languages": "vi-VN,vi"})
        self.driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
        self.driver.set_window_size(*WINDOW)
        # The page itself is 1280x900 (the window's frame takes nothing from it), so every picture is that size.
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                    {"width": WINDOW[0], "height": WINDOW[1], "deviceScaleFactor": 1, "mobile": False})
        self.driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
        self.driver.implicitly_wait(0)
        self.base_url = base_url
        self.downloads = downloads

    def quit(self) -> None:
        self.driver.quit()

    # -- moving around ----------------------------------------------------------------
    def go(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    @property
    def path(self) -> str:
        from urllib.parse import urlsplit

        parts = urlsplit(self.driver.current_url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def find(self, css: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list:
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def fill(self, css: str, text: str) -> None:
        el = self.find(css)
        el.clear()
        el.send_keys(text)

    def set_value(self, css: str, value: str) -> None:
        """For date and time inputs, whose typing depends on the browser's locale."""
        self.driver.execute_script(
            "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('change', {bubbles: true}));",
            self.find(css), value)

    def text(self, css: str = "body") -> str:
        return self.find(css).text

    def wait(self, predicate, timeout: float = 10, what: str = "the page") -> None:
        """Until ``predicate()`` is true; on time-out the page's text is in the message."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if predicate():
                    return
            except Exception:  # an element being replaced (a live part refreshing)
                pass
            if time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout}s waiting for {what} at {self.path}; page:\n{self.safe_text()[:3000]}")

    def wait_text(self, words: str, timeout: float = 10, css: str = "body") -> None:
        self.wait(lambda: words in self.text(css), timeout, repr(words))

    def safe_text(self) -> str:
        try:
            return self.text()
        except Exception as e:
            return f"(no page text: {e})"

    def mark(self) -> None:
        """A flag in the page's window: ``same_page()`` is true until the page is loaded again."""
        self.driver.execute_script("window.__congso_same_page = true;")

    def same_page(self) -> bool:
        return self.driver.execute_script("return window.__congso_same_page === true;") is True

    def click(self, css: str, timeout: float = 10) -> None:
        """Click ``css``, again if a live part replaced it meanwhile (a stale element)."""
        from selenium.common.exceptions import StaleElementReferenceException

        deadline = time.monotonic() + timeout
        while True:
            try:
                self.find(css).click()
                return
            except StaleElementReferenceException:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.1)

    def fetch_bytes(self, path: str) -> bytes:
        """GET ``path`` from inside the page (its session cookie), e.g. an image the page shows."""
        import base64

        data = self.driver.execute_async_script("""
            const done = arguments[arguments.length - 1];
            fetch(arguments[0], {credentials: "same-origin"}).then(r => {
              if (!r.ok) { done("error " + r.status); return; }
              return r.arrayBuffer().then(b => {
                let s = ""; const a = new Uint8Array(b);
                for (let i = 0; i < a.length; i += 8192) s += String.fromCharCode.apply(null, a.subarray(i, i + 8192));
                done("ok " + btoa(s));
              });
            }).catch(e => done("error " + e));""", path)
        assert data.startswith("ok "), f"GET {path}: {data}"
        return base64.b64decode(data[3:])

    def node_screen(self, node: str) -> bytes:
        """The console's «Chụp màn hình» for ``node`` on the devices page; the PNG the page then shows."""
        self.go("/devices")
        self.click(f"#node-{node} form[action='/devices/{node}/screenshot'] button")
        self.wait_text(f"Đã chụp màn hình {node}.", 30)
        img = self.find(f"#screen-{node} img")
        self.wait(lambda: self.driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) > 0,
                  10, f"the picture of {node} in the page")
        return self.fetch_bytes(img.get_attribute("src"))

    # -- the pictures of docs/console.md ---------------------------------------------
    def shot(self, name: str) -> Path:
        OUT.mkdir(parents=True, exist_ok=True)
        path = OUT / f"{name}.png"
        assert self.driver.save_screenshot(str(path)), f"no screenshot {path}"
        return path

    # -- logging in -------------------------------------------------------------------
    def login(self, name: str, password: str = PASSWORD) -> None:
        self.go("/login")
        self.fill("input[name=username]", name)
        self.fill("input[name=password]", password)
        self.find("form[action='/login'] button[type=submit]").click()
        self.wait(lambda: not self.path.startswith("/login"), 10, f"{name} logged in")

    def logout(self) -> None:
        self.find("form.logout button[type=submit]").click()
        self.wait(lambda: self.path.startswith("/login"), 10, "the login page after logging out")

    def wait_download(self, suffix: str, timeout: float = 20) -> Path:
        """The one finished file ending in ``suffix`` in the download directory."""
        found: list[Path] = []

        def done() -> bool:
            partial = list(self.downloads.glob("*.crdownload"))
            found[:] = [p for p in self.downloads.glob(f"*{suffix}") if p.stat().st_size > 0]
            return bool(found) and not partial

        wait_for(done, timeout, f"a downloaded *{suffix} in {self.downloads}")
        return found[0]
