"""One module per menu entry of the console, each with a ``router`` (listed in ``app._parts``)."""
