"""The door's commands: enroll, delete_finger, export_finger, import_finger, identify.

Each takes the command's ``args`` and returns the reply's ``result``;
raising gives the gateway ``ok:false`` with the message (the runtime
prefixes "<command> failed: "). Fingerprint commands take the module
from the scan loop (``FingerSource.exclusive``) so the loop does not
steal the images of an enrolment.
"""

from __future__ import annotations

import base64
import binascii
import logging

from congso.devices.fingerprint import SensorError
from congso.devices.fingerprint.errors import NO_FINGER
from congso.protocol import clock, messages, topics

log = logging.getLogger(__name__)


def _fingers(node):
    if node.fingers is None:
        raise RuntimeError("this door has no fingerprint module ([fingerprint] backend = none)")
    return node.fingers


def _slot(args: dict, required: bool = True) -> int | None:
    slot = args.get("slot")
    if slot is None and not required:
        return None
    if not isinstance(slot, int) or isinstance(slot, bool) or slot < 0:
        raise ValueError(f"slot must be a whole number >= 0, got {slot!r}")
    return slot


def enroll(node, args: dict) -> dict:
    """``{"staff_id", "slot"?}``: capture the finger twice, store it; ``{"slot", "staff_id"}``.

    The person is guided by the door: green blinking and a beep = place the
    finger; green and a beep = lift it; green blinking again = place it
    again; green and a beep = done. Red and a long beep = it failed.
    """
    staff_id = args.get("staff_id")
    if not isinstance(staff_id, str) or not staff_id:
        raise ValueError("enroll needs a staff_id")
    slot = _slot(args, required=False)
    wait_s = node.enroll_timeout_s
    steps = {
        "place": node.feedback.prompt,
        "lift": node.feedback.repeat,      # green + short beep, the door stays locked
        "place_again": node.feedback.prompt,
        "stored": node.feedback.repeat,
    }

    cmd_id = getattr(getattr(node, "runtime", None), "running_cmd_id", None)

    def on_step(name: str) -> None:
        log.info("enrolling %s: %s", staff_id, name)
        node.out(f"enroll {name} {staff_id}")
        steps[name]()
        report_step(node, cmd_id, name)

    with _fingers(node).exclusive() as module:
        try:
            stored = module.enroll(slot, wait_s=wait_s, on_step=on_step)
            # The finger is still on the sensor: let it go before the scan
            # loop resumes, or the loop takes it for a check-in.
            module.wait_lifted(wait_s)
        except SensorError as e:
            node.feedback.refused()
            if e.code == NO_FINGER:
                raise RuntimeError(f"no finger within {wait_s:g} s") from None
            if e.code == 0x27:
                raise RuntimeError(f"this finger is already enrolled on this door (slot {e.slot})") from None
            raise
        except Exception:
            node.feedback.refused()
            raise
    log.info("enrolled %s in slot %d", staff_id, stored)
    # Known here at once; the gateway's next roster says the same.
    node.roster = node.roster.with_slot(stored, staff_id)
    return {"slot": stored, "staff_id": staff_id}


def report_step(node, cmd_id: str | None, step: str) -> None:
    """Tell the gateway where the enrolment is (``node/<node>/progress``, QoS 1, not retained).

    Best effort: the enrolment goes on whatever happens to this message (the
    person at the door follows the LED and the beeps, not the console).
    """
    runtime = getattr(node, "runtime", None)
    if runtime is None or not cmd_id:
        return
    try:
        payload = messages.encode("progress", {"v": messages.VERSION, "cmd_id": cmd_id, "step": step,
                                               "ts": clock.now_iso(runtime.tz)})
        runtime.link.publish(topics.progress(runtime.site, runtime.node_id), payload, qos=1)
    except Exception:  # never let the console's view stop an enrolment
        log.exception("could not report the enrolment step %s", step)


def delete_finger(node, args: dict) -> dict:
    """``{"slot"}``: remove a template from this door's module."""
    slot = _slot(args)
    with _fingers(node).exclusive() as module:
        module.delete(slot)
    return {"slot": slot}


def export_finger(node, args: dict) -> dict:
    """``{"slot"}``: ``{"slot", "template_base64"}``, to carry the finger to another door."""
    slot = _slot(args)
    with _fingers(node).exclusive() as module:
        template = module.export_template(slot)
    return {"slot": slot, "template_base64": base64.b64encode(template).decode("ascii")}


def import_finger(node, args: dict) -> dict:
    """``{"template_base64", "slot"?}``: store a template from another door; ``{"slot"}``.

    Without a slot, the first free slot of this module is taken.
    """
    data = args.get("template_base64")
    if not isinstance(data, str) or not data:
        raise ValueError("import_finger needs template_base64")
    try:
        template = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("template_base64 is not valid base64") from None
    slot = _slot(args, required=False)
    with _fingers(node).exclusive() as module:
        if slot is None:
            slot = module.free_slot()
        module.import_template(slot, template)
    return {"slot": slot}


def identify(node, args: dict) -> dict:
    """Blink both LEDs and beep for ``seconds`` (default 10) so a technician finds this door."""
    seconds = args.get("seconds", 10)
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not 0 < seconds <= 120:
        raise ValueError("seconds must be a number between 0 and 120")
    node.feedback.identify(seconds)
    return {"node_id": node.node_id, "seconds": seconds}
