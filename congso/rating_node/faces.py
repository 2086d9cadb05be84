"""Faces drawn by the program from circles, arcs and lines (no emoji font).

One face per level, from its ``mood`` (+1 broad smile ... -1 deep frown):
the mouth's curve follows the mood, eyebrows slant down on the unhappy
faces. Pure: returns drawing instructions.
"""

from __future__ import annotations

from ..ui import Arc, Circle, Line
from ..ui.instructions import Instruction

FACE_FILL = (255, 214, 74)      # a yellow that reads as a face on every level colour
FACE_DIM = (200, 200, 200)      # during the lockout
INK = (60, 40, 20)


def face(center: tuple[int, int], radius: int, mood: float, dim: bool = False) -> list[Instruction]:
    cx, cy = center
    r = max(8, radius)
    line = max(2, r // 12)
    out: list[Instruction] = [
        Circle((cx, cy), r, FACE_DIM if dim else FACE_FILL),
        Circle((cx, cy), r, INK, width=line),
    ]
    # Eyes.
    eye_dx, eye_y, eye_r = round(r * 0.36), cy - round(r * 0.25), max(2, round(r * 0.11))
    for sign in (-1, 1):
        out.append(Circle((cx + sign * eye_dx, eye_y), eye_r, INK))
    # Brows on unhappy faces: inner ends raised (worried) as the mood drops.
    if mood < 0:
        lift = round(r * 0.12 * -mood)
        for sign in (-1, 1):
            outer = (cx + sign * round(r * 0.55), eye_y - round(r * 0.22))
            inner = (cx + sign * round(r * 0.18), eye_y - round(r * 0.22) - lift)
            out.append(Line(outer, inner, INK, line))
    # Mouth: an arc whose depth follows |mood|, opening up for a smile and
    # down for a frown; a straight line for neutral.
    mouth_w = round(r * 1.0)
    depth = round(r * 0.45 * abs(mood))
    mouth_y = cy + round(r * 0.38)
    if depth < 3:
        out.append(Line((cx - mouth_w // 2, mouth_y), (cx + mouth_w // 2, mouth_y), INK, line + 1))
    else:
        # Smile: the lower half of an ellipse (180..360 degrees); frown: the
        # upper half of one below the mouth line. pygame leaves pinholes in a
        # thick arc, so it is drawn twice, one pixel apart.
        top, start, stop = (mouth_y - depth, 180, 360) if mood > 0 else (mouth_y, 0, 180)
        for dy in (0, 1):
            out.append(Arc((cx - mouth_w // 2, top + dy, mouth_w, 2 * depth), start, stop, INK, line + 1))
    return out
