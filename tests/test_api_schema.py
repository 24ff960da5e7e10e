"""The API against its OpenAPI document: the committed one is current, and generated
requests (schemathesis) never get a 500 nor a response off its schema."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import schemathesis
from baoflow.engine import SHANGHAI, Actor, ChineseOfficialCalendar, FakeClock, open_engine
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from baoflow.api import create_app
from baoflow.api.__main__ import text
from tests.conftest import AGENT, POLICIES, report

ROOT = Path(__file__).parent.parent
COMMITTED = ROOT / "docs" / "openapi.json"


def test_the_committed_openapi_document_is_current() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == text(), (
        "docs/openapi.json is stale: regenerate it with "
        "`.venv/bin/python -m baoflow.api > docs/openapi.json` and commit it"
    )


def test_every_error_response_is_problem_json_in_the_document() -> None:
    import json

    doc = json.loads(COMMITTED.read_text(encoding="utf-8"))
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    assert list(response["content"]) == ["application/problem+json"], (
                        method,
                        path,
                        status,
                    )
    assert "HTTPValidationError" not in doc["components"]["schemas"]


HEADQUARTERS = Actor("q01", "周敏", roles=("headquarters", "handler"), org_unit="SH")


def _app(tmp: Path) -> Iterator[tuple[object, str]]:
    eng = open_engine(
        f"sqlite:///{tmp / 'schema.db'}",
        clock=FakeClock(datetime(2026, 5, 6, 9, 0, tzinfo=SHANGHAI)),
        calendar=ChineseOfficialCalendar(),
    )
    eng.policies.add(POLICIES)  # type: ignore[attr-defined]
    eng.open_case("claim", report(), AGENT)  # case 1, for the generated paths to find
    secret = eng.create_api_token("schemathesis", actor=HEADQUARTERS).secret
    yield create_app(eng), secret
    eng.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, str]]:
    yield from _app(tmp_path_factory.mktemp("schema"))


def test_generated_requests_get_no_500_and_answers_that_match_the_schema(
    served: tuple[object, str],
) -> None:
    """Every operation of the document, with requests generated from it (a few each:
    the run stays within seconds), as headquarters, on SQLite."""
    app, secret = served
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    auth = {"Authorization": f"Bearer {secret}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=12,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case: schemathesis.Case) -> None:
            case.headers = {**(case.headers or {}), **auth}
            # Every check but "a schema-valid request is accepted": the schema cannot say
            # that a state must be one of the workflow's or the opening data a valid
            # report, so such requests are rightly 422 (checked, with their bodies).
            case.call_and_validate(excluded_checks=[positive_data_acceptance])

        check()
