"""``hippo serve``: a REST API and an MCP server over namespaced memories.

Install with ``pip install "hippo[serve]"``. :func:`create_app` builds the ASGI app;
``hippo serve`` (:mod:`hippo.cli.serve_cmd`) runs it with uvicorn or speaks MCP over stdio.
The web stack is imported only when an attribute below is first used.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Limits", "ServeSettings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from hippo.serve.app import create_app

        return create_app
    if name in ("Limits", "ServeSettings"):
        from hippo.serve import settings

        return getattr(settings, name)
    raise AttributeError(name)
