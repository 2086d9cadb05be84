"""The citizen satisfaction kiosk (see issue: rating)."""
