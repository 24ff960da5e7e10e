"""The supervisors' dashboard in a real browser (issue #13): Debian's chromium driven by
Playwright — never a downloaded browser — against the dashboard served in-process over
an engine on a FakeClock. Each page's screenshot is kept in test-artifacts/dashboard/."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from baoflow.engine import SHANGHAI, Actor, ChineseOfficialCalendar, Engine, FakeClock, open_engine

from tests.conftest import POLICIES, report
from tests.dashboard_server import serving
from tests.test_timers import to_materials_complete

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (dev)")
CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium on PATH: apt-get install -y chromium (.ci/run does); "
    "the tests never download a browser",
)

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "dashboard"
PASSWORD = "correct horse"
BJ_AGENT = Actor("a09", "赵敏", roles=("service_agent",), org_unit="BJ")


class Desk:
    """The engine, its clock, the two branches' cases and the base URL."""

    def __init__(self, engine: Engine, clock: FakeClock, url: str, ours: Any, theirs: Any):
        self.engine, self.clock, self.url, self.ours, self.theirs = engine, clock, url, ours, theirs


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    clock = FakeClock(__import__("datetime").datetime(2026, 5, 6, 9, 0, tzinfo=SHANGHAI))
    engine = open_engine(
        f"sqlite:///{tmp_path / 'desk.db'}", clock=clock, calendar=ChineseOfficialCalendar()
    )
    engine.policies.add(POLICIES)  # type: ignore[attr-defined]
    ours = to_materials_complete(engine)  # a Shanghai claim, its hand-over clock running
    theirs = engine.open_case("claim", report(), BJ_AGENT).case  # a Beijing one
    engine.add_user("h01", "王芳", PASSWORD, roles=("handler",), org_unit="SH")
    engine.add_user("h09", "孙丽", PASSWORD, roles=("handler",), org_unit="BJ")
    try:
        with serving(engine, refresh=0.3) as url:
            yield Desk(engine, clock, url, ours, theirs)
    finally:
        engine.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    opened = context.new_page()
    opened.set_default_timeout(10_000)
    yield opened
    context.close()


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def log_in(page: Any, desk: Desk, user: str = "h01", password: str = PASSWORD) -> None:
    page.goto(desk.url + "/")
    page.get_by_label("用户名").fill(user)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()


def unlabelled_fields(page: Any) -> list[str]:
    """Every visible form control without an accessible name from a label."""
    return page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
            .filter(el => el.type !== 'hidden')
            .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                          && !el.getAttribute('aria-labelledby'))
            .map(el => el.outerHTML)"""
    )


def test_no_session_is_the_log_in_page_and_logging_in_shows_the_overview(
    desk: Desk, page: Any
) -> None:
    page.goto(desk.url + f"/cases/{desk.ours.number}")
    assert page.url.startswith(desk.url + "/login")
    shot(page, "login")
    assert unlabelled_fields(page) == []
    # the keyboard alone logs in: the user id has the focus, Tab moves on, Enter sends
    page.keyboard.type("h01")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(desk.url + f"/cases/{desk.ours.number}")  # back where it was going
    assert page.get_by_test_id("who").inner_text() == "王芳"


def test_the_overview_counts_only_the_viewers_branch(desk: Desk, page: Any) -> None:
    log_in(page, desk)
    claim = page.locator("section[data-workflow=claim]")
    # Shanghai's handler sees Shanghai's claim only: one opened today, this week, open
    assert claim.locator("[data-count=today]").inner_text() == "1"
    assert claim.locator("[data-count=opened-week]").inner_text() == "1"
    assert claim.locator("[data-count=closed-week]").inner_text() == "0"
    assert claim.locator("[data-count=cases]").inner_text() == "1"
    assert claim.locator("[data-count=breached]").inner_text() == "0"
    assert claim.locator("#claim-state-materials_complete.occupied").count() == 1
    assert unlabelled_fields(page) == []
    ids = page.evaluate("[...document.querySelectorAll('[id]')].map(e => e.id)")
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})
    shot(page, "overview")


def test_fire_an_event_through_its_form_and_see_the_state_and_diagram_change(
    desk: Desk, page: Any
) -> None:
    log_in(page, desk)
    page.goto(desk.url + f"/cases/{desk.ours.number}")
    assert page.get_by_test_id("state").get_attribute("data-state") == "materials_complete"
    assert page.locator("#claim-state-materials_complete.current").count() == 1
    assert unlabelled_fields(page) == []
    shot(page, "case")
    form = page.locator("form[data-event=hand_over]")
    form.get_by_label("Insurer (必填)", exact=True).fill("平安人寿")
    form.get_by_role("button").click()
    page.get_by_test_id("done").wait_for()
    assert page.get_by_test_id("state").get_attribute("data-state") == "handed_over"
    assert page.locator("#claim-state-handed_over.current").count() == 1
    assert page.locator("#claim-state-materials_complete.current").count() == 0
    assert desk.engine.get_case(desk.ours.id).state == "handed_over"
    assert desk.engine.history(desk.ours.id)[-1].data["insurer"] == "平安人寿"


def test_a_wrong_form_shows_the_error_beside_the_field_and_changes_nothing(
    desk: Desk, page: Any
) -> None:
    log_in(page, desk)
    page.goto(desk.url + f"/cases/{desk.ours.number}")
    before = desk.engine.get_case(desk.ours.id)
    form = page.locator("form[data-event=hand_over]")
    form.get_by_role("button").click()  # the insurer, which it needs, left empty
    error = page.locator("form[data-event=hand_over] .field-error[data-field=insurer]")
    error.wait_for()
    assert "required" in error.inner_text().lower() or "必" in error.inner_text()
    assert page.get_by_test_id("form-error").is_visible()
    assert (
        page.locator("form[data-event=hand_over] #f-hand_over-insurer").get_attribute(
            "aria-invalid"
        )
        == "true"
    )
    shot(page, "case-form-error")
    after = desk.engine.get_case(desk.ours.id)
    assert (after.state, after.version) == (before.state, before.version)


def test_a_breach_appears_on_the_deadline_list_without_a_reload(desk: Desk, page: Any) -> None:
    log_in(page, desk)
    page.goto(desk.url + "/deadlines")
    row = page.locator(f"tr[data-case='{desk.ours.number}']").first
    assert row.get_attribute("data-band") in ("ok", "soon")
    assert unlabelled_fields(page) == []
    for band in ("ok", "soon", "breached"):  # each band's words readable on its colour
        style = page.locator(f".legend .band.{band}").evaluate(
            "e => [getComputedStyle(e).color, getComputedStyle(e).backgroundColor]"
        )
        assert style[0] == "rgb(255, 255, 255)" and style[1] != style[0], (band, style)
    page.evaluate("window.__notReloaded = true")
    due = min(d.due_at for d in desk.engine.deadlines(desk.ours.id) if d.status == "running")
    desk.clock.advance(due - desk.clock.now() + timedelta(hours=1))
    desk.engine.run_due_timers()
    page.locator(f"tr[data-case='{desk.ours.number}'][data-band=breached]").first.wait_for()
    assert page.evaluate("window.__notReloaded") is True
    assert row.locator(".band.breached").inner_text().startswith("-")  # negative time left
    shot(page, "deadlines")
    page.goto(desk.url + "/")
    assert page.locator("section[data-workflow=claim] [data-count=breached]").inner_text() == "1"


def test_another_branchs_case_is_not_found(desk: Desk, page: Any) -> None:
    log_in(page, desk)  # Shanghai
    response = page.goto(desk.url + f"/cases/{desk.theirs.number}")
    assert response is not None and response.status == 404
    assert page.get_by_role("heading", name="找不到该页面或案件").is_visible()
    assert desk.theirs.number not in page.locator("main").inner_text()
    shot(page, "not-found")
    page.get_by_role("button", name="退出").click()  # log out (a POST with its token)
    page.wait_for_url(desk.url + "/login")
    log_in(page, desk, "h09")  # Beijing sees it
    response = page.goto(desk.url + f"/cases/{desk.theirs.number}")
    assert response is not None and response.status == 200


def test_five_wrong_passwords_are_slowed_down_and_the_page_says_so(desk: Desk, page: Any) -> None:
    for i in range(5):
        log_in(page, desk, password=f"guess {i}")
    message = page.get_by_test_id("login-error")
    assert message.get_attribute("data-reason") == "throttled"
    assert "5 分钟后再试" in message.inner_text()
    log_in(page, desk)  # even the right password, for now
    assert page.get_by_test_id("login-error").get_attribute("data-reason") == "throttled"
    shot(page, "login-throttled")
    desk.clock.advance(timedelta(minutes=5))
    log_in(page, desk)
    assert page.get_by_test_id("who").inner_text() == "王芳"


def test_the_inbox_and_the_sla_report_and_english(desk: Desk, page: Any) -> None:
    log_in(page, desk)
    page.goto(desk.url + "/inbox")
    assert unlabelled_fields(page) == []
    shot(page, "inbox")
    page.goto(desk.url + "/sla")
    assert page.locator("svg.chart rect").count() >= 1
    assert page.locator("table.sla tbody tr").count() >= 1
    assert unlabelled_fields(page) == []
    shot(page, "sla")
    page.get_by_role("link", name="English").click()
    assert page.get_by_role("heading", name="SLA report").is_visible()
