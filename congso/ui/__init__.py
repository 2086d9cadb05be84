"""Screens as data: layout functions return instructions, the renderer draws them.

In the style of info-beamer packages: a page is a pure function from the
state to a list of instructions (``instructions``), testable without a
screen; ``Renderer`` is the only piece that touches pygame.
"""

from . import layout
from .instructions import QR, Arc, Box, Circle, Fill, Image, Instruction, Line, Polygon, Text, texts


def __getattr__(name: str):
    # The renderer pulls in pygame (20 MB, a banner on stdout): only when drawn.
    if name in ("DrawnText", "Renderer", "qr_surface"):
        from . import renderer

        return getattr(renderer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "QR", "Arc", "Box", "Circle", "Fill", "Image", "Instruction", "Line", "Polygon", "Text", "texts",
    "DrawnText", "Renderer", "qr_surface", "layout",
]
