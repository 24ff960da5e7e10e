"""The state diagrams over HTTP: a workflow drawn (static or live) and a case's path.

The layout of each workflow version is made once per app (a
:class:`baoflow.diagrams.Diagrams` cache held by the router, no module state); a live
diagram only changes counts and classes on it. Live counts are the caller's to see: a
caller who sees every case of the workflow (the permission table's org-unit rows) gets
all of them, or one org unit's with ``?org_unit=``; anyone else gets their own unit's.
"""


from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response

from baoflow import diagrams
from baoflow.engine import Actor, Engine

from . import problems
from .models import case_ref

PREFIX = "/v1"

#: The media type of each format.
MEDIA = {
    "svg": "image/svg+xml",
    "mermaid": "text/plain; charset=utf-8",
    "dot": "text/vnd.graphviz; charset=utf-8",
}

Format = Annotated[
    Literal["svg", "mermaid", "dot"],
    Query(description="svg (drawn on the server), mermaid or dot (text)"),
]


def diagram_router(
    engine: Engine,
    actor: Callable[..., Awaitable[Actor]],
    layouts: diagrams.Diagrams | None = None,
) -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["diagrams"])
    Who = Annotated[Actor, Depends(actor)]
    cache = layouts or diagrams.Diagrams()
    drawn: dict[int | str, dict[str, Any]] = {
        200: {"content": {m.split(";")[0]: {} for m in MEDIA.values()}}
    }

    def answer(rendered: str | bytes, fmt: str) -> Response:
        data = rendered.encode() if isinstance(rendered, str) else rendered
        return Response(data, media_type=MEDIA[fmt])

    @router.get(
        "/workflows/{name}/diagram",
        summary="A workflow's state diagram; with live=true, the cases in each state",
        description=(
            "Live: per state, the cases there and how many have a deadline warned or "
            "breached, coloured by escalation level — of every unit the caller sees, or "
            "of one with org_unit."
        ),
        response_class=Response,
        responses={**drawn, **problems.responses(401, 403, 404, 422)},
    )
    def workflow_diagram(
        who: Who,
        name: Annotated[str, Path(max_length=64)],
        format: Format = "svg",
        live: bool = False,
        org_unit: Annotated[str | None, Query(max_length=64)] = None,
    ) -> Response:
        unit = org_unit
        if live:
            engine.workflow(name)  # an unknown workflow is a 404 before any count
            scope = engine.scope(who)
            if name not in scope.every_case_of:
                if scope.org_unit is None or (org_unit not in (None, scope.org_unit)):
                    return problems.problem(
                        403,
                        "NotVisible",
                        f"{who.name} sees only the {name} cases of their own org unit "
                        f"({scope.org_unit or 'none'}): ask for that unit, or none",
                    )
                unit = scope.org_unit
        rendered = diagrams.render(engine, name, format, live=live, org_unit=unit, diagrams=cache)
        return answer(rendered, format)

    @router.get(
        "/cases/{case}/diagram",
        summary="A case's path through its workflow: each step numbered, when and by whom",
        response_class=Response,
        responses={**drawn, **problems.responses(401, 403, 404, 422)},
    )
    def case_diagram(
        who: Who,
        case: Annotated[str, Path(min_length=1, max_length=64)],
        format: Format = "svg",
    ) -> Response:
        found = engine.get_case(case_ref(case), visible_to=who)  # 404 unless the caller sees it
        rendered = diagrams.render(engine, found.workflow, format, case=found.id, diagrams=cache)
        return answer(rendered, format)

    return router
