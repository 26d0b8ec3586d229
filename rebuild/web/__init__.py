"""The rebuilder's web face: server-rendered dashboard pages and the JSON API under ``/api/v1``.

``app.create_app`` builds the FastAPI application over a results store (``rebuild.service``); ``pages``
renders the HTML (Jinja2 templates, server-drawn SVG charts, no JavaScript build step); ``api`` is the
JSON API (reads are open, writes need a token from ``rebuild token create``).
"""
