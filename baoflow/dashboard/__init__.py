"""The supervisors' dashboard (issue #13): server-rendered pages over the Engine facade,
served by ``baoflow serve`` beside the HTTP API (docs/dashboard.md)."""

from .app import create_dashboard

__all__ = ["create_dashboard"]
