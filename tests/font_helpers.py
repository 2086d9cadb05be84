"""A font that lacks most Vietnamese letters, for the tests that must see one refused.

pip's pygame ships freesansbold.ttf without them, but Debian's python3-pygame
(the one a Pi's TV uses) links that name to GNU FreeFont, which has them: so
the tests cut their own from DejaVu Sans, Latin-1 and đ only.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path


@functools.cache
def latin_only_font() -> str:
    from fontTools import subset

    from congso.devices.display import find_font

    out = Path(tempfile.mkdtemp(prefix="congso-fonts-")) / "latin-only.ttf"
    options = subset.Options()
    font = subset.load_font(find_font(), options)
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=[*range(0x20, 0x7F), *range(0xA0, 0x100), 0x110, 0x111])
    subsetter.subset(font)
    subset.save_font(font, str(out), options)
    return str(out)
