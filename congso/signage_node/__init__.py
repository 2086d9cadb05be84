"""The waiting-hall TV node (see issue: signage)."""
