"""Tools: the simulated node, the demo office, the process harness."""
