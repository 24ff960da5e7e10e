"""``create_dashboard(engine)``: the supervisors' dashboard, server-rendered pages over
the Engine facade (issue #13).

Every page reads through ``Engine`` as the logged-in user's :class:`Actor`, with
``visible_to=`` that actor: what a person sees and may do is exactly what the permission
table lets them, and a case of another branch is a 404 on every page. Parts of pages
that change — the diagrams and counts, the deadline list, a case's state — are also
served alone as fragments (``/fragments/...``), which ``static/dashboard.js`` polls and
swaps in place, so a timer firing shows without a reload.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import secrets
from collections.abc import Mapping
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException

from baoflow import diagrams
from baoflow.engine import (
    SHANGHAI,
    Actor,
    Case,
    CaseNotFound,
    ConflictError,
    Engine,
    EventNotAllowed,
    GuardRefused,
    InvalidData,
    LogInRefused,
    NotPermitted,
    StorageError,
    StorageUnavailable,
    UnknownEvent,
    UnknownUser,
    UnknownWorkflow,
    WorkflowDefinition,
    format_due,
    format_duration,
    format_when,
)
from baoflow.notifications.masking import mask_text, sees_personal_data

from . import forms, i18n
from .sessions import COOKIE, LANG_COOKIE, MAX_AGE, Session, Sessions, csrf_ok

log = logging.getLogger("baoflow.dashboard")

STATIC = Path(__file__).parent / "static"
#: Deadlines on one page of the list.
PAGE = 50


class LoginNeeded(Exception):
    """No session (or a disabled account): the page answers with the log-in page."""


class Refused(Exception):
    """A post without its session's CSRF token, or from another site."""


def case_ref(text: str) -> int | str:
    return int(text) if text.isdigit() else text


class Viewer:
    """Who is looking, in which language, and the request's session."""

    def __init__(self, actor: Actor | None, session: Session, lang: str) -> None:
        self.actor = actor
        self.session = session
        self.lang = lang
        self.t = i18n.translator(lang)

    @property
    def who(self) -> Actor:
        if self.actor is None:
            raise LoginNeeded()
        return self.actor


def create_dashboard(
    engine: Engine,
    *,
    secret: str | bytes | None = None,
    trust_header: str | None = None,
    refresh: float = 3.0,
    layouts: diagrams.Diagrams | None = None,
) -> FastAPI:
    """The dashboard of ``engine``, an ASGI app to mount (``create_app(dashboard=)``).

    Args:
        secret: signs the session cookies; every process serving one dashboard needs
            the same (default: ``$BAOFLOW_DASHBOARD_SECRET``, else a random one — the
            sessions then end when the process does).
        trust_header: a request header (e.g. ``X-Remote-User``) naming the user id an
            app in front has already authenticated: that user is logged in without a
            password. Only behind a proxy that sets the header itself and strips it
            from every client's request.
        refresh: seconds between the pages' polls of their live fragments.
    """
    key = secret or os.environ.get("BAOFLOW_DASHBOARD_SECRET") or secrets.token_bytes(32)
    sessions = Sessions(key)
    cache = layouts or diagrams.Diagrams()
    env = Environment(
        loader=PackageLoader("baoflow.dashboard", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    # --- who is looking ---------------------------------------------------------------
    def viewer(request: Request) -> Viewer:
        session = sessions.read(request.cookies.get(COOKIE))
        if session is None:
            session = sessions.new()
            request.state.session = session
        lang = request.cookies.get(LANG_COOKIE)
        lang = lang if lang in i18n.LANGS else i18n.DEFAULT
        actor = None
        user_id = session.user_id
        if trust_header is not None and request.headers.get(trust_header):
            user_id = request.headers[trust_header]
        if user_id is not None:
            try:
                user = engine.user(user_id)
            except UnknownUser:
                user = None
            if user is not None and user.active:
                actor = user.actor
        return Viewer(actor, session, lang)

    def root(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    def page(
        request: Request, v: Viewer, template: str, status: int = 200, **context: Any
    ) -> Response:
        base = root(request)
        html = env.get_template(template).render(
            t=v.t,
            lang=v.lang,
            actor=v.actor,
            csrf=v.session.csrf,
            base=base,
            path=request.url.path,
            refresh_ms=int(refresh * 1000),
            when=format_when,
            due=format_due,
            duration=lambda d: format_duration(d, locale=v.lang),
            **context,
        )
        return keep(request, HTMLResponse(html, status_code=status))

    def keep(request: Request, response: Response) -> Response:
        """The response, with the session cookie when this request made or changed it."""
        session: Session | None = getattr(request.state, "session", None)
        if session is not None:
            response.set_cookie(
                COOKIE,
                sessions.dump(session),
                max_age=MAX_AGE,
                httponly=True,
                samesite="lax",
                secure=request.url.scheme == "https",
                path=root(request) or "/",
            )
        return response

    def redirect(request: Request, to: str) -> Response:
        return keep(request, RedirectResponse(root(request) + to, status_code=303))

    async def posted(request: Request, v: Viewer) -> FormData:
        """The form of a POST, refused unless it carries its session's CSRF token and
        comes from this site."""
        origin = request.headers.get("origin")
        if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
            raise Refused()
        form = await request.form()
        token = form.get("csrf")
        if getattr(request.state, "session", None) is not None or not csrf_ok(
            v.session, token if isinstance(token, str) else None
        ):
            raise Refused()
        return form

    # --- errors -----------------------------------------------------------------------
    @app.exception_handler(LoginNeeded)
    async def to_login(request: Request, exc: LoginNeeded) -> Response:
        target = request.url.path[len(root(request)) :] or "/"
        if request.url.path.startswith(root(request) + "/fragments/"):
            return Response(status_code=401)
        return redirect(request, "/login?" + urlencode({"next": target}))

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> Response:
        v = viewer(request)
        return page(request, v, "error.html", 403, title=v.t("forbidden"), text=v.t("csrf"))

    async def not_found(request: Request, exc: Exception) -> Response:
        v = viewer(request)
        return page(
            request, v, "error.html", 404, title=v.t("not_found"), text=v.t("not_found_text")
        )

    for missing in (CaseNotFound, UnknownWorkflow, UnknownEvent):
        app.add_exception_handler(missing, not_found)

    @app.exception_handler(StorageError)
    async def unavailable(request: Request, exc: StorageError) -> Response:
        """A 503 page (the database is down: who is looking is not read from it)."""
        log.warning("database unusable on %s %s: %s", request.method, request.url.path, exc)
        lang = request.cookies.get(LANG_COOKIE)
        session = sessions.read(request.cookies.get(COOKIE)) or sessions.new()
        v = Viewer(None, session, lang if lang in i18n.LANGS else i18n.DEFAULT)
        if not isinstance(exc, StorageUnavailable):
            title, text, headers = v.t("storage_error"), v.t("storage_error_text"), {}
        else:
            seconds = max(1, math.ceil(exc.retry_after.total_seconds()))
            known = exc.applied is not None
            title = v.t("db_unavailable")
            text = v.t("db_unavailable_text" if known else "db_unavailable_unknown")
            headers = {"Retry-After": str(seconds)}
        response = page(request, v, "error.html", 503, title=title, text=text)
        response.headers.update(headers)
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return await not_found(request, exc)
        v = viewer(request)
        return page(
            request,
            v,
            "error.html",
            exc.status_code,
            title=str(exc.status_code),
            text=str(exc.detail),
        )

    # --- log-in -----------------------------------------------------------------------
    def safe_next(target: str | None) -> str:
        if not target or not target.startswith("/") or target.startswith("//"):
            return "/"
        return target

    @app.get("/login")
    def login_page(request: Request, next: str = "/") -> Response:
        v = viewer(request)
        if v.actor is not None:
            return redirect(request, safe_next(next))
        return page(request, v, "login.html", next=safe_next(next), error=None, user_id="")

    @app.post("/login")
    async def login(request: Request) -> Response:
        v = viewer(request)
        form = await posted(request, v)
        user_id = str(form.get("user_id") or "")
        target = safe_next(str(form.get("next") or "/"))
        client = request.client.host if request.client else ""
        try:
            actor = engine.log_in(user_id, str(form.get("password") or ""), client=client)
        except LogInRefused as refused:
            status, message = {
                "throttled": (429, str(refused) if v.lang == "en" else _throttled_zh(refused)),
                "disabled": (403, v.t("disabled")),
            }.get(refused.reason, (401, v.t("wrong_login")))
            response = page(
                request,
                v,
                "login.html",
                status,
                next=target,
                error=message,
                reason=refused.reason,
                user_id=user_id,
            )
            if refused.retry_after is not None:
                response.headers["Retry-After"] = str(int(refused.retry_after.total_seconds()))
            return response
        request.state.session = v.session.with_user(actor.id)
        return redirect(request, target)

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        v = viewer(request)
        await posted(request, v)
        request.state.session = v.session.with_user(None)
        return redirect(request, "/login")

    @app.get("/lang/{lang}")
    def language(request: Request, lang: str, next: str = "/") -> Response:
        response = redirect(request, safe_next(next))
        if lang in i18n.LANGS:
            response.set_cookie(
                LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", httponly=True
            )
        return response

    # --- the overview -----------------------------------------------------------------
    def unit_for(actor: Actor, workflow: str) -> tuple[bool, str | None]:
        """Whether the actor sees any case of ``workflow``, and the org unit its counts
        are narrowed to (None: every unit's)."""
        scope = engine.scope(actor)
        if workflow in scope.every_case_of:
            return True, None
        return scope.org_unit is not None, scope.org_unit

    def overview_of(actor: Actor) -> list[dict[str, Any]]:
        now = engine.clock.now().astimezone(SHANGHAI)
        today = datetime.combine(now.date(), time(), SHANGHAI)
        monday = today - timedelta(days=now.weekday())
        found = []
        for d in engine.workflows():
            sees, unit = unit_for(actor, d.name)
            if not sees:
                continue
            counts = engine.state_counts(d.name, org_unit=unit)
            # drawn on the counts read once (render() would read them again)
            svg = cache.svg(diagrams.build_graph(d), counts=counts)
            found.append(
                {
                    "definition": d,
                    "unit": unit,
                    "svg": inline_svg(svg, d.name),
                    "today": engine.case_flow(d.name, since=today, visible_to=actor).opened,
                    "week": engine.case_flow(d.name, since=monday, visible_to=actor),
                    "cases": sum(c.cases for c in counts),
                    "breached": sum(c.breached for c in counts),
                    "warned": sum(c.warned for c in counts),
                }
            )
        return found

    @app.get("/")
    def overview(request: Request) -> Response:
        v = viewer(request)
        return page(request, v, "overview.html", workflows=overview_of(v.who))

    @app.get("/fragments/overview")
    def overview_fragment(request: Request) -> Response:
        v = viewer(request)
        return page(request, v, "overview_fragment.html", workflows=overview_of(v.who))

    # --- deadlines and breaches -------------------------------------------------------
    def one_working_day_from(now: datetime) -> datetime:
        later = now + timedelta(days=1)
        for _ in range(30):
            if engine.calendar.is_working_day(later.astimezone(SHANGHAI).date()):
                break
            later += timedelta(days=1)
        return later

    def colleagues(actor: Actor) -> dict[str, str]:
        """The active accounts of the viewer's org unit (every unit's for a viewer of
        none), id -> name: the handler filter's suggestions and the list's names."""
        return {
            u.id: u.name
            for u in engine.users()
            if u.disabled_at is None and (actor.org_unit is None or u.org_unit == actor.org_unit)
        }

    def deadlines_of(actor: Actor, query: Mapping[str, str]) -> dict[str, Any]:
        workflow = query.get("workflow") or None
        rule = query.get("rule") or None
        unit = query.get("org_unit") or None
        level_text = query.get("level") or ""
        level = int(level_text) if level_text.isdigit() else None
        handler = (query.get("handler") or "").strip()[:64] or None
        page_text = query.get("page") or "1"
        number = max(1, int(page_text)) if page_text.isdigit() else 1
        if workflow is not None:
            engine.workflow(workflow)  # an unknown one is the 404 page
        rows = engine.running_deadlines(
            workflow=workflow,
            rule=rule,
            org_unit=unit,
            min_level=level,
            handler=handler,
            limit=PAGE + 1,
            offset=(number - 1) * PAGE,
            visible_to=actor,
        )
        now = engine.clock.now()
        ample = one_working_day_from(now)
        shown = []
        for d in rows[:PAGE]:
            band = "breached" if d.due_at <= now else ("ok" if d.due_at > ample else "soon")
            shown.append({"d": d, "band": band, "left": d.due_at - now})
        filters = {
            "workflow": workflow or "",
            "rule": rule or "",
            "org_unit": unit or "",
            "level": "" if level is None else str(level),
            "handler": handler or "",
        }
        return {
            "rows": shown,
            "people": colleagues(actor),
            "more": len(rows) > PAGE,
            "page": number,
            "filters": filters,
            "query": urlencode({k: v for k, v in filters.items() if v}),
            "workflows": engine.workflows(),
        }

    @app.get("/deadlines")
    def deadlines(request: Request) -> Response:
        v = viewer(request)
        return page(request, v, "deadlines.html", **deadlines_of(v.who, request.query_params))

    @app.get("/fragments/deadlines")
    def deadlines_fragment(request: Request) -> Response:
        v = viewer(request)
        return page(
            request, v, "deadlines_fragment.html", **deadlines_of(v.who, request.query_params)
        )

    # --- a case -------------------------------------------------------------------------
    def transition_of(definition: WorkflowDefinition, case: Case, event: str) -> Any:
        for t in definition.transitions:
            if t.event == event and t.source in (case.state, "*"):
                return t
        return None

    def form_of(definition: WorkflowDefinition, case: Case, event: str, title: str) -> forms.Form:
        t = transition_of(definition, case, event)
        model = definition.hooks.schemas.get(t.schema) if t is not None and t.schema else None
        return forms.Form(event, title, forms.fields_of(model))

    def case_live(actor: Actor, ref: int | str) -> dict[str, Any]:
        case = engine.get_case(ref, visible_to=actor)
        definition = engine.workflow(case.workflow, case.workflow_version)
        unmasked = sees_personal_data(actor.roles)

        def shown(value: Any) -> str:
            text = json.dumps(value, ensure_ascii=False, indent=2, default=str)
            return text if unmasked else mask_text(text)

        history = engine.history(case.id, visible_to=actor)
        timeline: list[dict[str, Any]] = [
            {"at": h.at, "kind": "step", "h": h, "data": shown(h.data) if h.data else ""}
            for h in history
        ]
        timeline += [{"at": r.at, "kind": "refusal", "r": r} for r in engine.refusals(case.id)]
        timeline.sort(key=lambda e: e["at"])
        svg = diagrams.render(engine, case.workflow, "svg", case=case.id, diagrams=cache)
        now = engine.clock.now()
        return {
            "case": case,
            "definition": definition,
            "state_title": definition.state(case.state).title,
            "data": shown(dict(case.data)),
            "masked": not unmasked,
            "timeline": timeline,
            "deadlines": [
                {"d": d, "left": d.due_at - now if d.status in ("running", "paused") else None}
                for d in engine.deadlines(case.id, visible_to=actor)
            ],
            "svg": inline_svg(svg, case.workflow),
            # Its history's hash chain: verified, or where it is broken (issue #15).
            "chain": engine.verify_audit([case.id]).breaks,
        }

    def case_page(
        request: Request,
        v: Viewer,
        ref: int | str,
        status: int = 200,
        failed: forms.Form | None = None,
        done: str | None = None,
    ) -> Response:
        live = case_live(v.who, ref)
        case: Case = live["case"]
        events = engine.available_events(case.id, v.who, visible_to=v.who)
        ready: list[dict[str, Any]] = []
        refused: list[dict[str, Any]] = []
        for e in events:
            form = (
                failed
                if failed is not None and failed.event == e.event
                else form_of(live["definition"], case, e.event, e.title)
            )
            (ready if e.would_pass else refused).append({"e": e, "form": form})
        return page(
            request,
            v,
            "case.html",
            status,
            ready=ready,
            refused=refused,
            done=done,
            failed=failed,
            **live,
        )

    @app.get("/cases/{ref}")
    def case(request: Request, ref: str, done: str | None = None) -> Response:
        v = viewer(request)
        return case_page(request, v, case_ref(ref), done=done)

    @app.get("/fragments/cases/{ref}")
    def case_fragment(request: Request, ref: str) -> Response:
        v = viewer(request)
        return page(request, v, "case_fragment.html", **case_live(v.who, case_ref(ref)))

    @app.post("/cases/{ref}/events/{event}")
    async def fire(request: Request, ref: str, event: str) -> Response:
        v = viewer(request)
        form_data = await posted(request, v)
        found = engine.get_case(case_ref(ref), visible_to=v.who)  # 404 before anything
        definition = engine.workflow(found.workflow, found.workflow_version)
        form = form_of(definition, found, event, event)
        values = {k: form_data.getlist(k) for k in form_data}
        form.values = {k: (vs if len(vs) != 1 else vs[0]) for k, vs in values.items()}
        version_text = str(form_data.get("version") or "")
        try:
            engine.fire(
                found.id,
                event,
                v.who,
                forms.data_of(form.fields, {k: [str(x) for x in vs] for k, vs in values.items()}),
                expected_version=int(version_text) if version_text.isdigit() else None,
            )
        except InvalidData as bad:
            form.errors = forms.errors_by_field(
                form.fields, [(p.location, p.message) for p in bad.problems]
            )
            return case_page(request, v, found.id, 422, failed=form)
        except (GuardRefused, NotPermitted, EventNotAllowed, ConflictError, UnknownEvent) as no:
            form.errors = {"": [str(no)]}
            return case_page(request, v, found.id, 409, failed=form)
        return redirect(request, f"/cases/{found.number}?" + urlencode({"done": event}))

    # --- the inbox ----------------------------------------------------------------------
    @app.get("/inbox")
    def inbox(request: Request) -> Response:
        v = viewer(request)
        return page(request, v, "inbox.html", items=engine.inbox(v.who.id))

    @app.post("/inbox/read")
    async def mark_read(request: Request) -> Response:
        v = viewer(request)
        form = await posted(request, v)
        ids = [int(x) for x in form.getlist("id") if isinstance(x, str) and x.isdigit()]
        engine.mark_read(v.who.id, ids or None)
        return redirect(request, "/inbox")

    # --- the SLA report -----------------------------------------------------------------
    @app.get("/sla")
    def sla(request: Request, workflow: str | None = None) -> Response:
        v = viewer(request)
        if workflow:
            engine.workflow(workflow)
        report = engine.sla_report(per="month", workflow=workflow or None, visible_to=v.who)
        rows = sorted(
            report.rules, key=lambda r: (r.period or "", r.workflow, r.rule, r.org_unit or "")
        )
        medians = sorted(report.median_time_in_state.items())
        return page(
            request,
            v,
            "sla.html",
            report=report,
            rows=rows,
            medians=medians,
            workflow=workflow or "",
            workflows=engine.workflows(),
        )

    return app


_INNER_ID = re.compile(r'(\s)id="')


def inline_svg(drawn: str | bytes, scope: str) -> str:
    """An SVG document as an element to put in a page (its XML declaration dropped), the
    ids inside it prefixed with ``scope-`` so that several diagrams on one page keep
    their ids unique (two workflows both have a ``state-withdrawn``); the root keeps its
    own id, unique already (``wf-claim-v1``)."""
    text = drawn.decode() if isinstance(drawn, bytes) else drawn
    start = text.find("<svg")
    if start < 0:
        return text
    inside = text.index(">", start) + 1
    return text[start:inside] + _INNER_ID.sub(rf'\1id="{scope}-', text[inside:])


def _throttled_zh(refused: LogInRefused) -> str:
    seconds = int(refused.retry_after.total_seconds()) if refused.retry_after else 300
    minutes = max(1, -(-seconds // 60))
    return f"密码错误次数过多，请在 {minutes} 分钟后再试，或联系管理员。"


__all__ = ["create_dashboard"]
