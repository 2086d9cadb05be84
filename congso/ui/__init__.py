"""Screens as data: layout functions return instructions, the renderer draws them.

In the style of info-beamer packages: a page is a pure function from the
state to a list of instructions (``instructions``), testable without a
screen; ``Renderer`` is the only piece that touches pygame.
"""

from . import layout, vietnamese
from .instructions import QR, Arc, Box, Circle, Fill, Instruction, Line, Polygon, Text, texts
from .renderer import DrawnText, Renderer, qr_surface

__all__ = [
    "QR", "Arc", "Box", "Circle", "Fill", "Instruction", "Line", "Polygon", "Text", "texts",
    "DrawnText", "Renderer", "qr_surface", "layout", "vietnamese",
]
