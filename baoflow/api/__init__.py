"""The HTTP API (issue #12): ``create_app(engine)`` gives a FastAPI app over the Engine
facade; ``baoflow serve`` runs it. See docs/http-api.md."""

from __future__ import annotations

from .app import ROUTERS, create_app

__all__ = ["ROUTERS", "create_app"]
