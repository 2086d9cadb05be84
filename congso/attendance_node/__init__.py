"""The door node: fingerprint and card check-in/out (see issue: attendance)."""
