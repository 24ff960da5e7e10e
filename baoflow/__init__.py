"""baoflow: a workflow engine for the after-sales service desk of an insurance agency.

An app embeds it through this package::

    from baoflow import open_engine, Actor
    eng = open_engine("sqlite:///baoflow.db")

Everything here is the engine's facade (:mod:`baoflow.engine`); the subpackages are the
layers (docs/architecture.md): ``baoflow.engine`` the runtime, ``baoflow.workflows`` the
case types, ``baoflow.notifications`` delivery, ``baoflow.diagrams`` state diagrams, and
the faces over them — ``baoflow.cli`` and ``baoflow.demo``.
"""

from __future__ import annotations

from baoflow.engine import *  # noqa: F403 — the facade, re-exported whole
from baoflow.engine import __all__ as __all__
