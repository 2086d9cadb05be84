"""One TV frame drawn off-screen, for the office console's previews.

    python -m congso.signage_node.preview --page calendar [--week 0] [--index 0] [--width 1280 --height 720] < view.json > frame.png

Standard input is one JSON object: the retained state the TV would hold,
exactly as the gateway's builders publish it, and the moment to draw::

    {"site_name": "UBND xã Kỳ Châu", "now": "2026-12-01T09:30:00+07:00",
     "states": {"calendar": {...work_calendar.board(...)...},
                "announcements": {...announcements.board(...)...}}}

Standard output is the PNG of the whole screen (header, page, ticker), drawn
by the TV's own page functions (``pages.py``) and the ``ui`` renderer on
pygame's dummy video driver: what a TV of that size shows at ``now``. The
last line on standard error is ``pages N``, how many pages the rotation
has for that page and week (a week of many entries runs over several).

It runs as a child process, so the console never loads pygame (its memory
budget), and it reads only JSON: it imports nothing of the gateway.
Exit status 2 for a bad request (said on standard error), 0 otherwise.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from datetime import datetime

MAX_SIDE = 4096
MAX_INPUT = 4 * 1024 * 1024


class PreviewError(ValueError):
    pass


def _view(request: dict):
    from . import pages

    if not isinstance(request, dict):
        raise PreviewError("standard input must be one JSON object")
    try:
        now = datetime.fromisoformat(str(request["now"]))
    except (KeyError, ValueError):
        raise PreviewError('"now" must be an RFC 3339 time with its offset') from None
    if now.tzinfo is None:
        raise PreviewError('"now" needs its UTC offset (office time)')
    states = request.get("states") or {}
    if not isinstance(states, dict):
        raise PreviewError('"states" must be an object: state name -> payload')
    return pages.View(site_name=str(request.get("site_name") or ""), now=now, states=states)


def slots_of(view, size, page: str, week: int) -> list[tuple]:
    """The rotation's slots of ``page`` (for the calendar: of ``week``, 0 this week, 1 next)."""
    from . import pages

    found = [s for s in pages.slots(view, size, [page])]
    if page == "calendar":
        found = [s for s in found if s[1] == week]
        if not found and view.states.get("calendar") is not None:
            found = [("calendar", week, 0)]  # the TV shows next week only when it has entries; the preview always
    return found


def render(request: dict, page: str, size: tuple[int, int], week: int = 0, index: int = 0,
           font: str | None = None) -> tuple[bytes, int]:
    """(PNG bytes, number of pages) of ``page`` as the TV draws it."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    os.environ["PYGAME_HIDE_SUPPORT_PROMPT"] = "1"
    import pygame

    from ..devices.display import find_font
    from ..ui import Renderer
    from . import pages

    view = _view(request)
    w, h = size
    found = slots_of(view, size, page, week)
    slot = found[min(max(index, 0), len(found) - 1)] if found else None
    fh = pages.footer_height(size)
    pygame.font.init()
    surface = pygame.Surface((w, h))
    main, foot = surface.subsurface((0, 0, w, h - fh)), surface.subsurface((0, h - fh, w, fh))
    font_path = find_font(font or "")
    main_r, foot_r = Renderer(main, font_path), Renderer(foot, font_path)
    main_r.draw(pages.frame(view, size, slot))
    text = pages.ticker_text(view)
    # The ticker still (as with ticker_hz = 0): the text starts at its label.
    width = foot_r.measure(text, pages.ticker_font(size))[0] if text else 0
    foot_r.draw(pages.ticker(text, size, w - pages.px(150, size), width))
    buf = io.BytesIO()
    pygame.image.save(surface, buf, "preview.png")
    return buf.getvalue(), max(1, len(found))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m congso.signage_node.preview", description=__doc__.split("\n\n")[0])
    parser.add_argument("--page", required=True, choices=("calendar", "announcements"))
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--week", type=int, default=0, choices=(0, 1), help="calendar: 0 this week, 1 next week")
    parser.add_argument("--index", type=int, default=0, help="which page of it (0 the first)")
    parser.add_argument("--font", default="", help="font file ([display] font); else the TV's own choice")
    args = parser.parse_args(argv)
    if not (64 <= args.width <= MAX_SIDE and 64 <= args.height <= MAX_SIDE):
        print(f"--width and --height must be from 64 to {MAX_SIDE} pixels", file=sys.stderr)
        return 2
    raw = sys.stdin.buffer.read(MAX_INPUT + 1)
    if len(raw) > MAX_INPUT:
        print(f"the input is over {MAX_INPUT} bytes", file=sys.stderr)
        return 2
    try:
        request = json.loads(raw)
        png, n = render(request, args.page, (args.width, args.height), args.week, args.index, args.font)
    except (ValueError, KeyError, TypeError) as e:  # PreviewError, bad JSON, a payload of the wrong shape
        print(f"cannot draw the preview: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    sys.stdout.buffer.write(png)
    sys.stdout.buffer.flush()
    print(f"pages {n}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
