"""``create_app(engine)``: the HTTP API over the Engine facade (issue #12).

Every route calls the facade; the routers are made by functions of the engine and
included in one place (:func:`create_app`), so another face — webhooks, metrics —
mounts beside them with ``extra_routers``.
"""

import base64
import binascii
import hashlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AwareDatetime, BaseModel
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from baoflow.engine import (
    Actor,
    BaoflowError,
    CaseNotFound,
    Engine,
    InvalidData,
    Problem,
    StorageUnavailable,
)

from . import problems
from .diagram_routes import diagram_router
from .fast import FastFire
from .metrics import HttpMetrics, Metrics
from .models import (
    ACT_FOR_MAX,
    CASE_REF_MAX,
    IDEMPOTENCY_KEY_MAX,
    ActorOut,
    AvailableEventOut,
    BreachOut,
    CaseOut,
    CasePage,
    DeadlineOut,
    DeskDeadlineOut,
    FireRequest,
    HistoryEntryOut,
    OpenCaseRequest,
    OpenResultOut,
    SlaReportOut,
    WhoAmI,
    WorkflowOut,
    case_ref,
)
from .webhooks import insurer_webhooks

API_VERSION = "1"
PREFIX = "/v1"


class JSON(JSONResponse):
    """A JSON response of a body already encoded (a JSONResponse, so FastAPI documents
    the route's response model)."""

    def render(self, content: Any) -> bytes:
        if isinstance(content, bytes):
            return content
        if isinstance(content, str):
            return content.encode()
        return orjson.dumps(content)


def body(model: BaseModel | list[Any], status: int = 200) -> Response:
    """A response whose body is already the declared model: no second validation."""
    if isinstance(model, list):
        raw = b"[" + b",".join(m.model_dump_json().encode() for m in model) + b"]"
        return JSON(raw, status_code=status)
    return JSON(model.model_dump_json(), status_code=status)


#: A case's id or case number, as a path segment.
CaseRef = Annotated[
    str,
    Path(
        min_length=1,
        max_length=CASE_REF_MAX,
        description="The case id or case number (e.g. LP-20260506-000001)",
    ),
]


def authentication(engine: Engine) -> Callable[..., Awaitable[Actor]]:
    """The dependency every route takes: who the request acts as (401/403 otherwise)."""
    bearer = HTTPBearer(auto_error=False, description="An API token: `baoflow tokens add`")

    async def actor(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        x_act_for: Annotated[
            str | None,
            Header(
                max_length=ACT_FOR_MAX,
                description="The person this request acts for: one of the token's list.",
            ),
        ] = None,
    ) -> Actor:
        # On the event loop, not in the thread pool: the engine trusts a token it looked
        # up in the last 2 s, so this is almost always a dictionary lookup, and a hop to
        # a thread costs more than it (bench/http.py; a lookup blocks the loop briefly).
        return engine.authenticate(credentials.credentials if credentials else None, x_act_for)

    return actor


# --- cases ------------------------------------------------------------------------------
def fire_on(
    engine: Engine, case: str, request: FireRequest, who: Actor, idempotency_key: str | None
) -> bytes:
    """``POST /v1/cases/{case}/events``: fire, and the case as it is afterwards (the
    answer's JSON, a :class:`CaseOut`). The one
    implementation of the route, whichever way the request reaches it (the FastAPI route,
    or :mod:`baoflow.api.fast`)."""
    ref = case_ref(case)
    try:
        result = engine.fire(
            ref,
            request.event,
            who,
            request.data,
            idempotency_key=idempotency_key,
            expected_version=request.expected_version,
        )
    except StorageUnavailable:
        raise  # whether it was applied is its to say: a read after it must not answer instead
    except BaoflowError:
        # Whatever the refusal, a case the caller may not see is not found: the error of
        # another branch's case must not tell that it exists.
        engine.get_case(ref, visible_to=who)
        raise
    if not engine.may_see(result, who):  # a replayed key of another branch's request
        raise CaseNotFound(ref)
    return CaseOut.encode(result)


def key_filters(given: Iterable[str]) -> dict[str, str]:
    """``key=NAME:VALUE`` query parameters as the facade's ``keys``.

    Raises:
        InvalidData: one without a ``:``, or longer than a key and its value can be.
    """
    keys: dict[str, str] = {}
    for item in given:
        name, colon, value = item.partition(":")
        if not colon or not name or len(item) > 240:
            raise InvalidData(
                "the case search",
                [
                    Problem(
                        "key",
                        f"{item[:60]!r} is not NAME:VALUE; write e.g. key=phone:13800000000",
                    )
                ],
            )
        keys[name] = value
    return keys


def _cursor_filters(filters: dict[str, Any], newest_first: bool) -> str:
    raw = orjson.dumps([filters, newest_first], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(raw).hexdigest()[:12]


def encode_cursor(last_id: int, filters: dict[str, Any], newest_first: bool) -> str:
    raw = orjson.dumps({"after": last_id, "of": _cursor_filters(filters, newest_first)})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, filters: dict[str, Any], newest_first: bool) -> int:
    """The case id a cursor continues after.

    Raises:
        InvalidData: not a cursor, or one of a listing with other filters.
    """
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        after, of = raw["after"], raw["of"]
        if not isinstance(after, int) or isinstance(after, bool) or not isinstance(of, str):
            raise ValueError(cursor)
    except (ValueError, TypeError, KeyError, binascii.Error, orjson.JSONDecodeError):
        raise InvalidData(
            "the case search",
            [Problem("cursor", "not a cursor this API gave; start again without one")],
        ) from None
    if of != _cursor_filters(filters, newest_first):
        raise InvalidData(
            "the case search",
            [
                Problem(
                    "cursor",
                    "this cursor belongs to a search with other filters; give the same "
                    "filters as the first page, or start again without a cursor",
                )
            ],
        )
    return after


def cases_router(engine: Engine, actor: Callable[..., Awaitable[Actor]]) -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["cases"])
    Who = Annotated[Actor, Depends(actor)]
    IdemKey = Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=IDEMPOTENCY_KEY_MAX,
            description="A retry with the same key answers as the first time and does "
            "nothing again; the same key with another request is 422.",
        ),
    ]

    @router.post(
        "/cases",
        response_model=OpenResultOut,
        status_code=201,
        summary="Open a case",
        description="201 with the new case; 200 when the report duplicates a case "
        "(created false, that case returned).",
        responses={
            200: {"model": OpenResultOut, "description": "a duplicate: the existing case"},
            **problems.responses(401, 403, 404, 409, 422),
        },
    )
    def open_case(request: OpenCaseRequest, who: Who, idempotency_key: IdemKey = None) -> Response:
        result = engine.open_case(
            request.workflow, request.data, who, idempotency_key=idempotency_key
        )
        if not engine.may_see(result.case, who):
            return problems.problem(
                409,
                "DuplicateElsewhere",
                "the report duplicates a case of another org unit; nothing was opened. "
                "Ask that unit, or headquarters, to look it up.",
            )
        return body(OpenResultOut.of(result), 201 if result.created else 200)

    @router.get(
        "/cases",
        response_model=CasePage,
        summary="Search cases (cursor paging)",
        responses=problems.responses(401, 403, 404, 422),
    )
    def search_cases(
        who: Who,
        workflow: Annotated[str | None, Query(max_length=64)] = None,
        state: Annotated[list[str] | None, Query(max_length=20)] = None,
        number: Annotated[str | None, Query(max_length=64)] = None,
        policy_number: Annotated[str | None, Query(max_length=64)] = None,
        insured_name: Annotated[str | None, Query(max_length=128)] = None,
        id_number: Annotated[str | None, Query(max_length=32)] = None,
        key: Annotated[
            list[str] | None,
            Query(
                max_length=10,
                description="A search key a workflow declares and its value, as "
                "NAME:VALUE (e.g. phone:13800000000); repeat for several.",
            ),
        ] = None,
        newest_first: bool = False,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
    ) -> Response:
        filters: dict[str, Any] = {
            "workflow": workflow,
            "state": state or None,
            "number": number,
            "policy_number": policy_number,
            "insured_name": insured_name,
            "id_number": id_number,
            "keys": key_filters(key or []) or None,
        }
        after = None if cursor is None else decode_cursor(cursor, filters, newest_first)
        found = engine.find_cases(
            **filters,
            limit=limit + 1,
            newest_first=newest_first,
            after=after,
            visible_to=who,
        )
        page, more = found[:limit], len(found) > limit
        return body(
            CasePage(
                items=[CaseOut.of(c) for c in page],
                next_cursor=encode_cursor(page[-1].id, filters, newest_first) if more else None,
            )
        )

    @router.get(
        "/cases/{case}",
        response_model=CaseOut,
        summary="Get a case",
        responses=problems.responses(401, 403, 404, 422),
    )
    def get_case(case: CaseRef, who: Who) -> Response:
        return JSON(CaseOut.encode(engine.get_case(case_ref(case), visible_to=who)))

    @router.post(
        "/cases/{case}/events",
        response_model=CaseOut,
        summary="Fire an event on a case",
        description="The case as it is afterwards. Send an Idempotency-Key to retry safely.",
        responses=problems.responses(401, 403, 404, 409, 422),
    )
    def fire(
        case: CaseRef, request: FireRequest, who: Who, idempotency_key: IdemKey = None
    ) -> Response:
        return JSON(fire_on(engine, case, request, who, idempotency_key))

    @router.get(
        "/cases/{case}/history",
        response_model=list[HistoryEntryOut],
        summary="A case's history, oldest first",
        responses=problems.responses(401, 403, 404, 422),
    )
    def history(case: CaseRef, who: Who) -> Response:
        return body([HistoryEntryOut.of(h) for h in engine.history(case_ref(case), visible_to=who)])

    @router.get(
        "/cases/{case}/deadlines",
        response_model=list[DeadlineOut],
        summary="A case's deadlines",
        responses=problems.responses(401, 403, 404, 422),
    )
    def deadlines(case: CaseRef, who: Who) -> Response:
        return body([DeadlineOut.of(d) for d in engine.deadlines(case_ref(case), visible_to=who)])

    @router.get(
        "/cases/{case}/events",
        response_model=list[AvailableEventOut],
        summary="The events the caller may fire now, and why the others would be refused",
        responses=problems.responses(401, 403, 404, 422),
    )
    def available(case: CaseRef, who: Who) -> Response:
        found = engine.available_events(case_ref(case), who, visible_to=who)
        return body([AvailableEventOut.of(e) for e in found])

    return router


# --- the desk ---------------------------------------------------------------------------
def desk_router(engine: Engine, actor: Callable[..., Awaitable[Actor]]) -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["desk"])
    Who = Annotated[Actor, Depends(actor)]
    Workflow = Annotated[str | None, Query(max_length=64)]
    Rule = Annotated[str | None, Query(max_length=64)]
    Unit = Annotated[str | None, Query(max_length=64, description="The case's org unit")]
    Level = Annotated[int | None, Query(ge=0, le=100, description="Least escalation level")]

    @router.get(
        "/deadlines",
        response_model=list[DeskDeadlineOut],
        summary="The desk's running and paused deadlines, soonest due first",
        responses=problems.responses(401, 403, 404, 422),
    )
    def running(
        who: Who,
        workflow: Workflow = None,
        rule: Rule = None,
        org_unit: Unit = None,
        min_level: Level = None,
        handler: Annotated[
            str | None,
            Query(max_length=64, description="The id of the person assigned to the case"),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    ) -> Response:
        found = engine.running_deadlines(
            workflow=workflow,
            rule=rule,
            org_unit=org_unit,
            min_level=min_level,
            handler=handler,
            limit=limit,
            offset=offset,
            visible_to=who,
        )
        return body([DeskDeadlineOut.of(d) for d in found])

    @router.get(
        "/breaches",
        response_model=list[BreachOut],
        summary="Running deadlines past due, oldest due first",
        responses=problems.responses(401, 403, 404, 422),
    )
    def breaches(
        who: Who,
        workflow: Workflow = None,
        rule: Rule = None,
        org_unit: Unit = None,
        min_level: Level = None,
    ) -> Response:
        found = engine.breaches(
            workflow=workflow, rule=rule, min_level=min_level, org_unit=org_unit, visible_to=who
        )
        return body([BreachOut.of(b) for b in found])

    @router.get(
        "/sla",
        response_model=SlaReportOut,
        summary="The SLA report: on-time rate and breaches per rule and org unit",
        responses=problems.responses(401, 403, 404, 422),
    )
    def sla(
        who: Who,
        since: AwareDatetime | None = None,
        until: AwareDatetime | None = None,
        workflow: Workflow = None,
        org_unit: Unit = None,
        per: Literal["day", "week", "month"] | None = None,
    ) -> Response:
        report = engine.sla_report(
            since=since,
            until=until,
            workflow=workflow,
            org_unit=org_unit,
            per=per,
            visible_to=who,
        )
        return body(SlaReportOut.of(report))

    @router.get(
        "/me",
        response_model=WhoAmI,
        summary="Who this token acts as, and which cases it sees",
        responses=problems.responses(401, 403),
    )
    def me(who: Who) -> Response:
        scope = engine.scope(who)
        return body(WhoAmI(actor=ActorOut.of(who), every_case_of=sorted(scope.every_case_of)))

    return router


# --- workflows --------------------------------------------------------------------------
def workflows_router(engine: Engine, actor: Callable[..., Awaitable[Actor]]) -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["workflows"])
    Who = Annotated[Actor, Depends(actor)]

    @router.get(
        "/workflows",
        response_model=list[WorkflowOut],
        summary="Every workflow: states, events, deadline rules, permission rows",
        responses=problems.responses(401, 403),
    )
    def workflows(who: Who) -> Response:
        return body([WorkflowOut.of(d) for d in engine.workflows()])

    @router.get(
        "/workflows/{name}",
        response_model=WorkflowOut,
        summary="One workflow (its newest version unless ?version=)",
        responses=problems.responses(401, 403, 404, 422),
    )
    def workflow(
        who: Who,
        name: Annotated[str, Path(max_length=64)],
        version: Annotated[int | None, Query(ge=1, le=10_000)] = None,
    ) -> Response:
        return body(WorkflowOut.of(engine.workflow(name, version)))

    return router


# --- the app ----------------------------------------------------------------------------
RouterFactory = Callable[[Engine, Callable[..., Awaitable[Actor]]], APIRouter]

#: The routers of the API, included in this order.
ROUTERS: tuple[RouterFactory, ...] = (cases_router, desk_router, workflows_router)


class Api(FastAPI):
    """FastAPI with layers in front of its whole stack: the fast lane and the metrics
    timer see a request before Starlette's middleware, FastAPI's native telemetry and
    its router do, so a fire the lane answers costs none of them (docs/benchmarks.md).
    Everything the lane passes on goes through FastAPI unchanged."""

    front: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.front is None or scope["type"] == "lifespan":
            await super().__call__(scope, receive, send)
        else:
            await self.front(scope, receive, send)

    async def stack(self, scope: Scope, receive: Receive, send: Send) -> None:
        """FastAPI's own way through a request: the innermost of the front layers."""
        await super().__call__(scope, receive, send)


def create_app(
    engine: Engine,
    *,
    insurers: Mapping[str, bytes] | None = None,
    metrics: bool = True,
    fast_fire: bool = True,
    extra_routers: Iterable[RouterFactory] = (),
    title: str = "baoflow",
    dashboard: Any = None,
) -> Api:
    """The HTTP API of ``engine``.

    Args:
        insurers: each insurer's webhook secret (``webhooks.load_insurer_secrets``):
            their signed messages are taken at ``POST /webhooks/insurers/{insurer}``.
            None: no webhook route.
        metrics: serve Prometheus metrics at ``/metrics`` and time every request.
        fast_fire: answer well-formed fires in :mod:`baoflow.api.fast`, in front of
            FastAPI (the same answers, a fraction of the cost; OpenTelemetry spans of
            FastAPI's own are not made for them); False: FastAPI only.
        extra_routers: each a function of the engine and the authentication
            dependency, like the built-in ones, included after them.
        dashboard: an ASGI app (``baoflow.dashboard.create_dashboard``) mounted at
            ``/``, after every API route: the API keeps ``/v1``, ``/metrics`` and
            ``/webhooks``, and every other path is the dashboard's.
    """
    app = Api(
        title=title,
        version=API_VERSION,
        summary="Insurance after-sales workflows: open cases, fire events, read the desk.",
        default_response_class=JSON,
    )
    app.state.engine = engine
    problems.install(app)
    actor = authentication(engine)
    for make in (*ROUTERS, *extra_routers):
        app.include_router(make(engine, actor))
    app.include_router(diagram_router(engine, actor))
    if insurers is not None:
        app.include_router(insurer_webhooks(engine, insurers))
    front: ASGIApp = app.stack
    if fast_fire:
        front = FastFire(front, engine, fire_on)
    if metrics:  # the outermost layer, timing everything
        exposed = Metrics(engine)
        app.state.metrics = exposed
        app.mount("/metrics", exposed.asgi_app())
        front = HttpMetrics(front, metrics=exposed)
    app.front = front
    if dashboard is not None:
        api_routes = list(app.routes)

        @app.api_route(
            PREFIX + "/{rest:path}",
            methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            include_in_schema=False,
        )
        def not_in_the_api(rest: str, request: Request) -> Response:
            # Before the dashboard's mount at "/": an unknown API path is the API's
            # problem+json 404 (or 405 for a known path and another method), not a page.
            known = any(r.matches(request.scope)[0] != Match.NONE for r in api_routes)
            raise HTTPException(405 if known else 404)

        app.mount("/", dashboard)
    app.openapi = lambda: openapi_of(app)  # type: ignore[method-assign]
    return app


def openapi_of(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, with every error response as problem+json (and FastAPI's
    own validation-error schema replaced by the problem details it is answered with)."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    doc = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        routes=app.routes,
    )
    for path in doc.get("paths", {}).values():
        for operation in path.values():
            for status, response in operation.get("responses", {}).items():
                if status.isdigit() and int(status) >= 400:
                    content = response.get("content", {})
                    schema = (content.get("application/json") or {}).get("schema")
                    response["content"] = {
                        problems.MEDIA_TYPE: {
                            "schema": schema or {"$ref": "#/components/schemas/ProblemDetails"}
                        }
                    }
                    if status == "422":
                        response["description"] = problems.responses(422)[422]["description"]
    schemas = doc.get("components", {}).get("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    app.openapi_schema = doc
    return doc
