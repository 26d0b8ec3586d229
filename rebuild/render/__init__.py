"""Rendering results for people (text) or machines (JSON), behind one small interface.

The CLI picks a ``Renderer`` with ``renderer_for(as_json)`` and hands it the result of the one library
function a command calls. Every value that came from outside is shown through ``untrusted.printable``.
"""

from __future__ import annotations

from rebuild.render.interface import Renderer


def renderer_for(as_json: bool) -> Renderer:
    from rebuild.render.json import JsonRenderer
    from rebuild.render.text import TextRenderer

    return JsonRenderer() if as_json else TextRenderer()


__all__ = ["Renderer", "renderer_for"]
