"""The package's shape, held by a test: who may import whom (docs/architecture.md).

- no node role (attendance_node, signage_node, rating_node) and no ``ui``
  module imports ``congso.gateway``: a TV or a kiosk never carries the
  office's database code, and the vocabulary they share lives in ``vocab``;
- the gateway imports no node role;
- the web console imports no node role, no device, no ``ui`` and no pygame;
- ``vocab`` imports only the standard library and itself, so anything may
  import it (the gateway, every node, the CLI, a web console).

Imports are read with ``ast`` (inside functions too), nothing is executed.
"""

from __future__ import annotations

import ast
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import congso

PACKAGE = Path(congso.__file__).resolve().parent
NODE_ROLES = ("congso.attendance_node", "congso.signage_node", "congso.rating_node")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, name: str | None = None) -> list[tuple[int, str]]:
    """(line, absolute module) for every import in ``path`` (module ``name``); ``from x import y`` also yields x.y."""
    name = name or _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            out.append((node.lineno, base))
            # `from congso import gateway` imports congso.gateway.
            out += [(node.lineno, f"{base}.{alias.name}") for alias in node.names if alias.name != "*"]
    return out


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _all_imports() -> list[tuple[str, str, int, str]]:
    """(module, path, line, imported) for every congso module."""
    rows = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        for line, imported in _imports(path):
            rows.append((module, str(path.relative_to(PACKAGE.parent)), line, imported))
    return rows


IMPORTS = _all_imports()


def _violations(rule) -> list[str]:
    return [f"{path}:{line} imports {imported}" for module, path, line, imported in IMPORTS if rule(module, imported)]


def test_the_walk_sees_the_package():
    # Guards the test itself: a walk that found nothing would pass everything.
    modules = {m for m, *_ in IMPORTS}
    assert {"congso.gateway.state", "congso.signage_node.pages", "congso.vocab.levels"} <= modules
    assert ("congso.signage_node.pages", "congso.vocab.dossiers") in {(m, i) for m, _, _, i in IMPORTS}


def test_no_node_role_and_no_ui_module_imports_the_gateway():
    def rule(module, imported):
        return any(_within(module, p) for p in (*NODE_ROLES, "congso.ui")) and _within(imported, "congso.gateway")

    assert _violations(rule) == []


def test_the_gateway_imports_no_node_role():
    def rule(module, imported):
        return _within(module, "congso.gateway") and any(_within(imported, p) for p in NODE_ROLES)

    assert _violations(rule) == []


def test_the_console_imports_no_node_role_no_device_and_no_drawing():
    # The console is a shell over the gateway's library; a TV preview is drawn
    # by a child process (signage_node.preview), so pygame never loads into it
    # (its memory budget is 90 MB) and a TV bug never takes the console down.
    def rule(module, imported):
        return _within(module, "congso.web") and (
            any(_within(imported, p) for p in (*NODE_ROLES, "congso.devices", "congso.ui")) or _within(imported, "pygame"))

    assert _violations(rule) == []
    assert any(_within(m, "congso.web") and _within(i, "congso.gateway") for m, _, _, i in IMPORTS)


def test_vocab_imports_only_the_standard_library_and_itself():
    def rule(module, imported):
        if not _within(module, "congso.vocab"):
            return False
        top = imported.split(".")[0]
        return not (_within(imported, "congso.vocab") or (top != "congso" and top in sys.stdlib_module_names))

    assert _violations(rule) == []


def test_the_walk_resolves_relative_and_late_imports(tmp_path):
    # What a node module that reached into the gateway would look like: caught.
    probe = tmp_path / "probe.py"
    probe.write_text("from ..gateway import dossiers\n\ndef f():\n    from congso.gateway.state import Context\n"
                     "    import congso.gateway.db\n")
    found = {imported for _, imported in _imports(probe, "congso.signage_node.probe")}
    assert {"congso.gateway.dossiers", "congso.gateway.state.Context", "congso.gateway.db"} <= found


# -- the vocabulary agrees with the wire contract, and the screens agree with each other ---------

def test_vocab_lists_are_the_contracts():
    from congso.protocol import messages
    from congso.vocab import dossiers, levels

    assert levels.CODES == messages.RATING_LEVELS
    assert tuple(lv.code for lv in levels.scale(3)) == messages.RATING_LEVELS_3
    assert dossiers.STATUSES == messages.DOSSIER_STATUSES
    assert set(dossiers.STATUS_VI) == set(dossiers.STATUSES) | {"overdue"}
    assert set(dossiers.STATUS_COLORS) == set(dossiers.STATUS_VI)


@pytest.fixture
def headless(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("PYGAME_HIDE_SUPPORT_PROMPT", "1")


def test_the_tv_and_the_kiosk_show_each_level_with_the_same_label_and_colour(headless):
    from congso.rating_node import screens
    from congso.rating_node.kiosk import Kiosk, Rules
    from congso.signage_node import pages
    from congso.ui import Box, Circle, Text
    from congso.vocab import levels

    tz = ZoneInfo("Asia/Ho_Chi_Minh")
    now = datetime(2026, 11, 25, 9, 41, tzinfo=tz)
    codes = levels.CODES
    counts = {code: i + 1 for i, code in enumerate(codes)}
    view = pages.View("UBND xã Kỳ Châu", now, {"ratings": {"today": counts, "month": counts, "satisfied_pct_month": 30.0}})
    tv = pages.ratings_page(view, (1280, 720))
    on_tv = {}
    for before, ins in zip(tv, tv[1:]):
        if isinstance(ins, Text) and ins.tag.startswith("level-"):
            assert isinstance(before, Circle)
            on_tv[ins.tag.removeprefix("level-")] = (ins.text, before.color)

    kiosk = Kiosk(levels.scale(5), "mot-cua-1", lambda frame: frame, Rules(), wall=lambda: now)
    drawn = screens.layout(kiosk.view(0.0), (1280, 720)).instructions
    on_kiosk, last_box = {}, None
    for ins in drawn:
        if isinstance(ins, Box):
            last_box = ins
        if isinstance(ins, Text) and ins.tag.startswith("level:"):
            code = levels.scale(5)[int(ins.tag.split(":")[1])].code
            on_kiosk[code] = (ins.text, last_box.color)

    assert set(on_tv) == set(on_kiosk) == set(codes)
    assert on_tv == on_kiosk
    # Five levels, five colours a citizen can tell apart.
    assert len({color for _, color in on_tv.values()}) == len(codes)
