"""Thiết bị: what ``congso nodes`` shows, and the identify, reload and screenshot buttons.

The list is ``registry.list_nodes`` (the same rows as ``congso nodes``),
worded for the office. A button queues a command through
``gateway.remote`` (``congso node identify|reload|screenshot``) and waits
for the node's answer in the thread pool, so the wait holds up no other
page. The outcome comes back as a flash message; a node the registry calls
offline is not sent anything (it says so at once). A screenshot is kept in
the console's memory (``Console.screenshots[node] = (png, taken_at)``),
shown on the dashboard and here, never written to the database.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ...gateway import registry, remote
from ...protocol import liveness
from .. import access, page

router = APIRouter()

KIND_VI = {
    "attendance": "Máy chấm công",
    "signage": "Màn hình TV",
    "rating": "Máy đánh giá",
    "gateway": "Máy chủ",
}
LIVENESS_VI = {
    liveness.ONLINE: "Đang hoạt động",
    liveness.SILENT: "Không phản hồi",
    liveness.OFFLINE: "Mất kết nối",
}
DEVICE_VI = {
    "fingerprint": "vân tay",
    "card": "đầu đọc thẻ",
    "display": "màn hình",
    "cec": "điều khiển TV (CEC)",
    "outbox": "bộ đệm sự kiện",
    "buzzer": "còi",
    "green_led": "đèn xanh",
    "red_led": "đèn đỏ",
}
DEVICE_STATE_VI = {"ok": "tốt", "missing": "không thấy", "error": "lỗi"}
# The buttons each kind of node answers (its role's command table): a door has no
# reload and no screen; the gateway is not a node to command.
KIND_COMMANDS = {
    "attendance": ("identify",),
    "signage": ("identify", "reload", "screenshot"),
    "rating": ("identify", "reload", "screenshot"),
}
SCREEN_KINDS = tuple(k for k, cmds in KIND_COMMANDS.items() if "screenshot" in cmds)

# How long a button waits for the node (seconds): remote's defaults.
WAIT_S = dict(remote.DEFAULT_TIMEOUT_S)
COMMANDS = {"identify": "nhận diện", "reload": "tải lại", "screenshot": "chụp màn hình"}
BACK_TO = ("/", "/devices")


def ago_vi(seconds: float | None) -> str:
    if seconds is None:
        return "chưa bao giờ"
    if seconds < 90:
        return f"{seconds:.0f} giây trước"
    if seconds < 5400:
        return f"{seconds / 60:.0f} phút trước"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} giờ trước".replace(".", ",")
    return f"{seconds / 86400:.0f} ngày trước"


def device_vi(name: str) -> str:
    """A device of a node's health in the office's words (a kiosk's ``buttons[2]``: "nút bấm 3")."""
    if name.startswith("buttons[") and name.endswith("]") and name[8:-1].isdigit():
        return f"nút bấm {int(name[8:-1]) + 1}"
    return DEVICE_VI.get(name, name)


def problem_vi(what: str, detail) -> str:
    """One of ``registry.problems`` in the office's words."""
    if what == "duplicate":
        return "Hai thiết bị đang dùng chung mã này (thẻ nhớ bị sao chép?)"
    if what == "offline":
        return "Mất kết nối"
    if what == "silent":
        return f"Không phản hồi đã {detail:.0f} giây (chương trình bị treo?)" if detail is not None else "Không phản hồi"
    if what == "device":
        name, status = detail
        return f"Thiết bị {device_vi(name)}: {DEVICE_STATE_VI.get(status, status)}"
    return str(what)


@dataclass
class NodeRow:
    """One node as the pages show it (``registry.NodeView`` plus the office's words)."""

    view: registry.NodeView
    found: list[tuple[str, object]]  # registry.problems

    @property
    def problems(self) -> list[str]:
        return [problem_vi(w, d) for w, d in self.found]

    @property
    def other_problems(self) -> list[str]:
        """The problems besides being offline (which the state already says)."""
        return [problem_vi(w, d) for w, d in self.found if w != "offline"]

    @property
    def id(self) -> str:
        return self.view.node_id

    @property
    def kind_vi(self) -> str:
        return KIND_VI.get(self.view.kind or "", self.view.kind or "?")

    @property
    def state_vi(self) -> str:
        return LIVENESS_VI.get(self.view.liveness, self.view.liveness)

    @property
    def state_class(self) -> str:
        return {liveness.ONLINE: "good", liveness.SILENT: "warn"}.get(self.view.liveness, "bad")

    @property
    def seen_vi(self) -> str:
        return ago_vi(self.view.last_seen_s)

    @property
    def clock_vi(self) -> str:
        return {True: "Đã đồng bộ", False: "Đồng hồ chưa đồng bộ", None: "Chưa rõ"}[self.view.clock_synced]

    @property
    def devices_vi(self) -> list[tuple[str, str, bool]]:
        return [(device_vi(k), DEVICE_STATE_VI.get(str(s), str(s)), s == "ok")
                for k, s in sorted(self.view.devices.items())]

    @property
    def has_screen(self) -> bool:
        return self.view.kind in SCREEN_KINDS

    @property
    def commands(self) -> tuple[str, ...]:
        return KIND_COMMANDS.get(self.view.kind or "", ())

    @property
    def offline(self) -> bool:
        return self.view.liveness == liveness.OFFLINE


def node_rows(request: Request) -> list[NodeRow]:
    """Every node of the registry with its problems now (``registry.node_problems``), in Vietnamese."""
    db, now = page.db(request), page.console(request).now()
    found = registry.node_problems(db, now)
    return [NodeRow(v, found.get(v.node_id, [])) for v in registry.list_nodes(db, now)]


def screens(request: Request, rows: list[NodeRow]) -> list[dict]:
    """The TVs and kiosks with the last screenshot the console took of each (or None)."""
    shots = page.console(request).screenshots
    out = []
    for r in rows:
        if r.has_screen:
            shot = shots.get(r.id)
            out.append({"node": r, "taken_at": shot[1] if shot else None,
                        "stamp": int(shot[1].timestamp()) if shot else 0})
    return out


@router.get("/devices")
@access.requires("devices.view")
def devices_page(request: Request):
    rows = node_rows(request)
    return page.render(request, "devices.html", active="/devices", title="Thiết bị", rows=rows,
                       screens=screens(request, rows))


@router.get("/fragments/devices")
@access.requires("devices.view")
def devices_fragment(request: Request):
    return page.render(request, "devices_table.html", rows=node_rows(request))


@router.get("/devices/{node_id}/screen.png")
@access.requires("dashboard.view")
def screen_png(request: Request, node_id: str):
    shot = page.console(request).screenshots.get(node_id)
    if shot is None:
        raise HTTPException(404, "no screenshot of this node yet")
    return Response(content=shot[0], media_type="image/png")


def _back(values: dict) -> str:
    target = values.get("next") or "/devices"
    return target if target in BACK_TO else "/devices"


def _seconds(value: float) -> str:
    return f"{value:g}".replace(".", ",")


def _outcome_vi(node_id: str, cmd: str, e: remote.RemoteError) -> str:
    detail = str(e)
    prefix = f"{cmd} on {node_id}: "
    if detail.startswith(prefix):
        detail = detail[len(prefix):]
    what = COMMANDS[cmd].capitalize()
    if e.status == "refused":
        return f"{what} {node_id}: thiết bị báo lỗi: {detail}"
    if e.status == "expired":
        return (f"{what} {node_id}: lệnh chưa gửi được và đã hết hạn (không gửi nữa). "
                f"Máy chủ congso có đang chạy không? ({detail})")
    if e.status == "no reply":
        return f"{what} {node_id}: đã gửi nhưng thiết bị không trả lời trong {_seconds(WAIT_S.get(cmd, 0))} giây. ({detail})"
    return f"{what} {node_id}: không thực hiện được ({detail})"


def _command(request: Request, values: dict, node_id: str, cmd: str):
    c = page.console(request)
    db = page.db(request)
    node = registry.get_node(db, node_id, c.now())
    if node is None:
        raise HTTPException(404, f"no node {node_id} in the registry")
    back = _back(values)
    what = COMMANDS[cmd].capitalize()
    if cmd not in KIND_COMMANDS.get(node.kind or "", ()):
        return page.done(request, back, f"{what} {node_id}: thiết bị này không có lệnh đó.")
    if node.liveness == liveness.OFFLINE:
        page.audit(request, f"node.{cmd}", node_id, {"outcome": "offline, not sent"})
        return page.done(request, back, f"{what} {node_id}: thiết bị đang mất kết nối "
                                        f"(lần cuối {ago_vi(node.last_seen_s)}), lệnh không được gửi.")
    try:
        if cmd == "screenshot":
            png = remote.screenshot(db, node_id, None, WAIT_S[cmd], c.tz)
            result = {"bytes": len(png)}
        else:
            result = remote.ask(db, node_id, cmd, {}, WAIT_S[cmd], c.tz)
    except remote.RemoteError as e:
        page.audit(request, f"node.{cmd}", node_id, {"outcome": e.status, "error": str(e)})
        return page.done(request, back, _outcome_vi(node_id, cmd, e))
    if cmd == "screenshot":
        c.screenshots[node_id] = (png, c.now())
        page.audit(request, "node.screenshot", node_id, {"outcome": "done", "bytes": len(png)})
        anchor = "#screens" if back == "/" else f"#screen-{node_id}"
        return page.done(request, back + anchor, f"Đã chụp màn hình {node_id}.")
    page.audit(request, f"node.{cmd}", node_id, {"outcome": "done"})
    done_vi = {"identify": f"{node_id} đã nhận lệnh nhận diện (nháy đèn, kêu bíp hoặc nháy màn hình).",
               "reload": f"{node_id} đã tải lại cài đặt và dữ liệu."}[cmd]
    return page.done(request, back, done_vi)


async def _act(request: Request, node_id: str, cmd: str):
    values = await page.form(request)
    # The wait for the node blocks: in the thread pool, so every other page keeps answering.
    return await run_in_threadpool(_command, request, values, node_id, cmd)


@router.post("/devices/{node_id}/identify")
@access.requires("devices.act")
async def identify(request: Request, node_id: str):
    return await _act(request, node_id, "identify")


@router.post("/devices/{node_id}/reload")
@access.requires("devices.act")
async def reload(request: Request, node_id: str):
    return await _act(request, node_id, "reload")


@router.post("/devices/{node_id}/screenshot")
@access.requires("devices.act")
async def screenshot(request: Request, node_id: str):
    return await _act(request, node_id, "screenshot")
