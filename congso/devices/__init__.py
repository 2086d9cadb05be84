"""Device interfaces, each with a real and a simulated backend (see issue: devices)."""
