"""The dashboard's rules that need no browser (issue #13): the session cookie's flags,
CSRF on every form, no session → the log-in page, the trusted header, a disabled
account's session ending, a case of another branch 404 on every route, and forms built
from the event schemas. Through Starlette's test client, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from baoflow.engine import Actor, Engine, FakeClock
from starlette.testclient import TestClient

from baoflow.api.app import create_app
from baoflow.dashboard import create_dashboard, forms, i18n
from tests.conftest import AGENT, HANDLER, report
from tests.test_timers import to_materials_complete

PASSWORD = "correct horse"


@pytest.fixture
def desk(eng: Engine) -> Iterator[tuple[Engine, TestClient]]:
    eng.add_user("h01", "王芳", PASSWORD, roles=("handler",), org_unit="SH")
    app = create_app(eng, metrics=False, dashboard=create_dashboard(eng, secret="s3cret"))
    with TestClient(app, base_url="http://desk.test") as client:
        yield eng, client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None, "the page has no CSRF field"
    return found.group(1)


def logged_in(client: TestClient, user: str = "h01") -> str:
    token = csrf_of(client.get("/login").text)
    answer = client.post(
        "/login",
        data={"csrf": token, "user_id": user, "password": PASSWORD, "next": "/"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return csrf_of(client.get("/").text)


def test_no_session_redirects_every_page_to_the_log_in_page(
    desk: tuple[Engine, TestClient],
) -> None:
    _, client = desk
    for path in ("/", "/deadlines", "/inbox", "/sla", "/cases/1"):
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/login?next=")
    assert client.get("/fragments/overview").status_code == 401  # the poller reloads


def test_the_session_cookie_is_httponly_samesite_and_secure_over_https(
    desk: tuple[Engine, TestClient], eng: Engine
) -> None:
    _, client = desk
    cookie = client.get("/login").headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    app = create_app(eng, metrics=False, dashboard=create_dashboard(eng, secret="s3cret"))
    with TestClient(app, base_url="https://desk.test") as tls:
        assert "Secure" in tls.get("/login").headers["set-cookie"]


def test_a_post_without_its_sessions_token_or_from_another_site_is_refused(
    desk: tuple[Engine, TestClient],
) -> None:
    eng, client = desk
    case = to_materials_complete(eng)
    token = logged_in(client)
    url = f"/cases/{case.number}/events/hand_over"
    for refused in (
        client.post(url, data={"insurer": "平安"}),  # no token
        client.post(url, data={"insurer": "平安", "csrf": "forged"}),
        client.post(
            url, data={"insurer": "平安", "csrf": token}, headers={"Origin": "https://evil.example"}
        ),
    ):
        assert refused.status_code == 403
        assert "表单已过期或来自其他网站" in refused.text
    assert eng.get_case(case.id).state == "materials_complete"
    fired = client.post(
        url,
        data={"insurer": "平安", "csrf": token, "version": str(case.version)},
        follow_redirects=False,
    )
    assert fired.status_code == 303
    assert eng.get_case(case.id).state == "handed_over"


def test_another_sites_log_in_post_is_refused(desk: tuple[Engine, TestClient]) -> None:
    _, client = desk
    answer = client.post("/login", data={"user_id": "h01", "password": PASSWORD})
    assert answer.status_code == 403


def test_another_branchs_case_is_404_on_every_route(desk: tuple[Engine, TestClient]) -> None:
    eng, client = desk
    theirs = eng.open_case("claim", report(), Actor("a09", "赵敏", ("service_agent",), "BJ")).case
    token = logged_in(client)
    for answer in (
        client.get(f"/cases/{theirs.number}"),
        client.get(f"/cases/{theirs.id}"),
        client.get(f"/fragments/cases/{theirs.number}"),
        client.post(f"/cases/{theirs.number}/events/withdraw", data={"csrf": token}),
        client.get("/cases/NO-SUCH-CASE"),
        client.get("/no/such/page"),
    ):
        assert answer.status_code == 404
        assert "找不到该页面或案件" in answer.text
    assert eng.get_case(theirs.id).version == theirs.version


def test_a_disabled_account_is_logged_out_at_its_next_page(desk: tuple[Engine, TestClient]) -> None:
    eng, client = desk
    logged_in(client)
    assert client.get("/", follow_redirects=False).status_code == 200
    eng.disable_user("h01")
    assert client.get("/", follow_redirects=False).status_code == 303


def test_the_trusted_header_logs_in_the_named_account_only(eng: Engine) -> None:
    eng.add_user("h01", "王芳", PASSWORD, roles=("handler",), org_unit="SH")
    app = create_app(
        eng,
        metrics=False,
        dashboard=create_dashboard(eng, secret="s", trust_header="X-Remote-User"),
    )
    with TestClient(app) as client:
        seen = client.get("/", headers={"X-Remote-User": "h01"}, follow_redirects=False)
        assert seen.status_code == 200 and "王芳" in seen.text
        nobody = client.get("/", headers={"X-Remote-User": "ghost"}, follow_redirects=False)
        assert nobody.status_code == 303


def test_the_api_keeps_its_own_paths_beside_the_dashboard(desk: tuple[Engine, TestClient]) -> None:
    _, client = desk
    assert client.get("/v1/me").status_code == 401  # the API's, with problem details
    assert client.get("/v1/me").headers["content-type"].startswith("application/problem+json")
    assert client.get("/static/dashboard.js").status_code == 200


def test_forms_follow_the_event_schemas(eng: Engine) -> None:
    claim = eng.workflow("claim")
    fields = {f.name: f for f in forms.fields_of(claim.hooks.schemas["Rejection"])}
    assert fields["reasons"].kind == "choices" and "not_covered" in fields["reasons"].choices
    assert fields["reasons"].required and fields["notice"].kind == "textarea"
    assert fields["originals_returned"].kind == "checkbox"
    posted = {"reasons": ["not_covered", "late_filing"], "notice": ["书面通知"]}
    assert forms.data_of(list(fields.values()), posted) == {
        "reasons": ["not_covered", "late_filing"],
        "notice": "书面通知",
        "originals_returned": False,
    }
    receipt = forms.fields_of(claim.hooks.schemas["InsurerReceipt"])
    assert forms.data_of(receipt, {"received_at": ["2026-05-06 10:00"]}) == {
        "received_at": "2026-05-06 10:00+08:00"  # typed on the desk: Beijing time
    }


def test_every_message_has_both_languages() -> None:
    assert all(len(texts) == 2 and all(texts) for texts in i18n.MESSAGES.values())
    assert i18n.translator("en")("overview") == "Overview"
    assert i18n.translator("zh-CN")("overview") == "总览"


def test_an_unknown_api_path_is_the_apis_problem_not_a_dashboard_page(
    desk: tuple[Engine, TestClient],
) -> None:
    _eng, client = desk
    unknown = client.get("/v1/nothing-here")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    wrong_method = client.put("/v1/cases")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["content-type"] == "application/problem+json"
    page = client.get("/nothing-here")
    assert page.status_code in (302, 303, 307, 404)  # the log-in page first, or the 404 page
    assert "html" in page.headers.get("content-type", "") or page.is_redirect


def test_the_sla_page_gives_the_median_time_from_opening_to_closing(
    desk: tuple[Engine, TestClient], clock: FakeClock
) -> None:
    eng, client = desk
    case = eng.open_case("claim", report(), AGENT).case
    clock.advance(days=2)
    eng.fire(case.id, "withdraw", HANDLER, {"reason": "撤案"})
    logged_in(client)
    page = client.get("/sla").text
    assert "从受理到办结（中位数）" in page
    assert re.search(r"<td>claim</td><td>2天</td>", page), page


def test_the_deadline_list_filters_by_handler_and_names_them(
    desk: tuple[Engine, TestClient], clock: FakeClock
) -> None:
    from tests.conftest import SUPERVISOR

    eng, client = desk
    mine = to_materials_complete(eng)
    clock.advance(days=1)  # another incident, not a duplicate report
    other = to_materials_complete(eng)
    eng.fire(mine.id, "assign", SUPERVISOR, {"handler_id": "h01", "handler_name": "王芳"})
    logged_in(client)
    page = client.get("/deadlines").text
    assert '<label for="f-handler">经办人</label>' in page
    assert '<option value="h01">王芳</option>' in page  # the unit's accounts suggested
    assert mine.number in page and other.number in page
    assert '<td class="handler">王芳 (h01)</td>' in page
    only = client.get("/deadlines", params={"handler": "h01"}).text
    assert mine.number in only and other.number not in only
    assert 'value="h01"' in only  # the filter is kept in the form
    fragment = client.get("/fragments/deadlines", params={"handler": "h01"}).text
    assert mine.number in fragment and other.number not in fragment
    assert "LP-" not in client.get("/deadlines", params={"handler": "nobody"}).text


def test_case_data_is_shown_escaped_never_as_markup(desk: tuple[Engine, TestClient]) -> None:
    """What a reporter typed is text on every page that shows it (issue #15 item 3):
    markup in a stored case is escaped by the templates, never run."""
    eng, client = desk
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    case = eng.open_case(
        "claim", report(reporter={"name": hostile, "phone": "13812345678"}), AGENT
    ).case
    logged_in(client)
    page = client.get(f"/cases/{case.number}").text
    assert "<script>alert(" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(" in page and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_a_cases_page_shows_its_history_as_verified_or_where_it_is_broken(
    desk: tuple[Engine, TestClient],
) -> None:
    """Issue #15 item 4: the chain of the case's history, checked as the page is drawn."""
    eng, client = desk
    case = eng.open_case("claim", report(), AGENT).case
    logged_in(client)
    page = client.get(f"/cases/{case.number}").text
    assert 'class="chain verified"' in page and "哈希链完整" in page
    assert 'class="chain broken"' not in page
    with eng.store.engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE history SET event = 'close' WHERE case_id = {case.id}")
    page = client.get(f"/cases/{case.number}").text
    assert 'class="chain broken"' in page and "哈希链断裂" in page
    assert f"{case.number} row 1: its hash does not match" in page
    fragment = client.get(f"/fragments/cases/{case.number}").text
    assert 'class="chain broken"' in fragment
