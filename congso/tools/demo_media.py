"""The demo's poster and short clip, made on the spot (nothing downloaded, nothing binary in the repository).

The province sends communes posters and short videos about online public
services; the demo makes one of each with the same message: a 1920x1080
poster drawn with Pillow in a font that covers Vietnamese, and a 6-second
H.264 clip made by ffmpeg from two such frames with a cross-fade. Without
ffmpeg (a gateway without it cannot take videos either) there is no clip.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from ..vocab.text import nfc

NAVY, WHITE, GOLD, RED = (0, 56, 112), (255, 255, 255), (255, 204, 0), (200, 32, 32)
FONT_FILES = ("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def _font(px: int) -> ImageFont.FreeTypeFont:
    for path in FONT_FILES:
        if Path(path).is_file():
            return ImageFont.truetype(path, px)
    from ..devices.display import find_font  # fontconfig's pick of a font with Vietnamese

    return ImageFont.truetype(find_font(), px)


def _centred(draw: ImageDraw.ImageDraw, y: int, text: str, px: int, fill, width: int) -> int:
    font = _font(px)
    text = nfc(text)
    box = draw.textbbox((0, 0), text, font=font)
    draw.text(((width - (box[2] - box[0])) // 2, y), text, font=font, fill=fill)
    return y + (box[3] - box[1]) + px // 2


def poster(lines: list[tuple[str, int, tuple]], size=(1920, 1080), band=RED) -> Image.Image:
    """A poster: a navy field, a coloured band at the top, centred lines (text, pixel size, colour)."""
    w, h = size
    img = Image.new("RGB", size, NAVY)
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, w, h // 9), fill=band)
    _centred(draw, h // 40, "CỔNG DỊCH VỤ CÔNG QUỐC GIA", h // 18, WHITE, w)
    y = h // 5
    for text, px, colour in lines:
        y = _centred(draw, y, text, px, colour, w)
    draw.rectangle((0, h - h // 14, w, h), fill=GOLD)
    _centred(draw, h - h // 16, "dichvucong.gov.vn", h // 24, NAVY, w)
    return img


def make_poster(path: Path) -> Path:
    poster([("Nộp hồ sơ trực tuyến", 120, WHITE), ("Không cần đến UBND xã", 72, GOLD),
            ("Theo dõi kết quả và thanh toán lệ phí trên điện thoại", 52, WHITE),
            ("Đăng nhập bằng tài khoản định danh điện tử VNeID", 52, WHITE)]).save(path, "PNG")
    return path


def make_clip(path: Path, seconds: int = 6) -> Path | None:
    """A short H.264 clip (1280x720, 25 fps) fading between two frames; None without ffmpeg."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return None
    work = path.parent
    a, b = work / "clip-a.png", work / "clip-b.png"
    poster([("Cài đặt ứng dụng VNeID", 120, WHITE), ("Định danh điện tử mức 2", 72, GOLD)], (1280, 720)).save(a)
    poster([("Làm thủ tục nhanh hơn", 110, WHITE), ("Hỏi cán bộ Một cửa để được hướng dẫn", 56, GOLD)],
           (1280, 720), band=GOLD).save(b)
    half = seconds / 2
    subprocess.run([ffmpeg, "-v", "error", "-y", "-loop", "1", "-t", f"{half + 1}", "-i", str(a), "-loop", "1",
                    "-t", f"{half + 1}", "-i", str(b), "-filter_complex",
                    f"[0][1]xfade=transition=fade:duration=1:offset={half},format=yuv420p", "-r", "25",
                    "-c:v", "libx264", "-preset", "veryfast", "-movflags", "+faststart", "-t", str(seconds), str(path)],
                   check=True, capture_output=True, timeout=120)
    a.unlink(missing_ok=True)
    b.unlink(missing_ok=True)
    return path
