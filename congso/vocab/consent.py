"""The consent a person signs before a fingerprint of theirs is kept (Law 91/2025/QH15).

Each text has an id (the month it was first used); ``finger_consents.text_id``
records which one a person signed, so a later rewording never changes what
an earlier signature meant. Add a new text under a new id; never edit one in
use. Pure data: no I/O.
"""

from __future__ import annotations

CONSENT_TEXTS: dict[str, str] = {
    "2026-01": (
        "Tôi đồng ý để cơ quan thu thập và lưu mẫu vân tay của tôi trong máy chấm công "
        "với mục đích duy nhất là chấm công (không lưu ảnh vân tay). "
        "Mẫu vân tay được lưu cho đến khi tôi nghỉ việc, rồi được xóa khỏi mọi máy chấm công. "
        "Tôi có quyền rút lại sự đồng ý này bất cứ lúc nào (khi đó mẫu vân tay của tôi được xóa "
        "và tôi chấm công bằng thẻ), và có quyền yêu cầu được xem, nhận bản sao dữ liệu cá nhân "
        "của mình, theo Luật Bảo vệ dữ liệu cá nhân số 91/2025/QH15."
    ),
}

CURRENT = "2026-01"


def text(text_id: str | None = None) -> str:
    """The consent text ``text_id`` (the current one by default); KeyError for an unknown id."""
    return CONSENT_TEXTS[text_id or CURRENT]
