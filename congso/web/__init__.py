"""The office console: ``congso web run``, a web app for the office's staff, and its HTTP API.

A second thin shell over the gateway's library (the CLI is the first): a
route reads its form, makes the same library call a ``congso`` command
makes, writes the audit row, and renders a Jinja2 template. Pages work
without JavaScript; ``static/console.js`` only refreshes the live parts.

- ``app.py``: ``create_app(settings)``, the middleware, and ``PARTS``, the
  explicit list of page modules (each has a ``router``).
- ``access.py``: roles, permissions and API scopes; every route declares
  its rule with ``@requires(...)`` and the one guard checks it on the server
  (a route without a rule answers 500: fail closed).
- ``page.py``: what every route uses (database, rendering, forms, flash
  messages, the audit log, Vietnamese dates).
- ``pages/``: one module per menu entry; ``api.py`` the integration API.
"""
