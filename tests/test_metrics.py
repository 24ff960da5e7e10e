"""Prometheus metrics (issue #12, baoflow/api/metrics.py): the exposition, parsed back, says
what a real engine holds — cases per state, a breach at its escalation level, the
overdue timer's lag, a dead letter, the insurers' messages, transitions fired — and a
scrape within the cache's TTL does not read the database again. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from baoflow.engine import SHANGHAI, Engine, FakeClock, InsurerMessage
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from baoflow.api.metrics import HttpMetrics, Metrics
from tests.test_delivery import Recorder, deliverer, reported
from tests.test_timers import to_materials_complete


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def gauges(found: dict[Any, float]) -> dict[Any, float]:
    return {k: v for k, v in found.items() if k[0] != "baoflow_transitions_total"}


def test_the_exposition_reads_the_engine(eng: Engine, clock: FakeClock) -> None:
    breached = to_materials_complete(eng)  # hand-over due at the end of 05-09
    reported(eng, email=None, incident={"time": "2026-05-05T10:00:00+08:00"})
    # Neither reporter gave an address: their acceptance notices go to dead letter.
    dead = deliverer(eng, Recorder()).deliver_due().dead
    eng.receive_insurer_message(InsurerMessage("pingan", "m1", "receipt", reference="?"))
    clock.set(datetime(2026, 5, 10, 8, 0, tzinfo=SHANGHAI))
    eng.run_due_timers()
    clock.set(datetime(2026, 5, 10, 8, 0, 30, tzinfo=SHANGHAI))  # nothing left due yet
    metrics = Metrics(eng)
    got = samples(metrics)

    assert got[("baoflow_cases", (("state", "materials_complete"), ("workflow", "claim")))] == 1
    assert got[("baoflow_cases", (("state", "reported"), ("workflow", "claim")))] == 1
    (level,) = [d.level for d in eng.deadlines(breached.id) if d.rule == "hand_over"]
    key = (("level", str(level)), ("rule", "hand_over"), ("workflow", "claim"))
    assert got[("baoflow_breaches", key)] == 1
    assert sum(v for (name, _), v in got.items() if name == "baoflow_breaches") == 1
    assert got[("baoflow_outbox_dead", ())] == len(eng.outbox(status="dead")) == dead >= 2
    pending = len(eng.outbox(status="pending"))  # the breach's notices, not yet delivered
    assert got[("baoflow_outbox_pending", ())] == pending > 0
    assert got[("baoflow_inbound_messages", (("status", "unresolved"),))] == 1
    # The next timer (the next escalation) is not due yet: no lag.
    assert got[("baoflow_timer_lag_seconds", ())] == 0
    fired = ("baoflow_transitions_total", (("event", "verify"), ("workflow", "claim")))
    assert got[fired] == 1
    assert got[("baoflow_transitions_total", (("event", "open"), ("workflow", "claim")))] == 2


def test_the_timer_lag_is_how_overdue_the_earliest_timer_is(eng: Engine, clock: FakeClock) -> None:
    to_materials_complete(eng)
    due = eng.next_timer_due()
    assert due is not None
    clock.set(due.astimezone(SHANGHAI).replace(microsecond=0))
    clock.advance(minutes=2)
    lag = samples(Metrics(eng))[("baoflow_timer_lag_seconds", ())]
    assert lag == (clock.now() - due).total_seconds()


def test_scrapes_within_the_ttl_are_served_from_the_cache(eng: Engine) -> None:
    now = [100.0]
    metrics = Metrics(eng, ttl=5.0, clock=lambda: now[0])
    first = samples(metrics)
    to_materials_complete(eng)
    now[0] += 4.9
    # The gauges are as cached: the new case is not counted yet (the counter of
    # transitions is this process's own memory, not a database read, and moves).
    assert gauges(samples(metrics)) == gauges(first)
    assert metrics.collector.reads == 1
    now[0] += 0.1
    later = samples(metrics)
    assert metrics.collector.reads == 2
    assert later[("baoflow_cases", (("state", "materials_complete"), ("workflow", "claim")))] == 1


def test_http_latencies_are_timed_per_route_template(eng: Engine) -> None:
    metrics = Metrics(eng)
    app = FastAPI()

    @app.get("/cases/{case}")
    def show(case: str) -> dict[str, Any]:
        return {"case": case}

    app.add_middleware(HttpMetrics, metrics=metrics)
    app.mount("/metrics", metrics.asgi_app())
    with TestClient(app) as client:
        assert client.get("/cases/LP-1").status_code == 200
        assert client.get("/cases/LP-2").status_code == 200
        assert client.get("/nowhere").status_code == 404
        exposed = client.get("/metrics/")
    assert exposed.status_code == 200
    got = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(exposed.text)
        for s in f.samples
    }
    route = (("method", "GET"), ("route", "/cases/{case}"), ("status", "200"))
    assert got[("baoflow_http_request_duration_seconds_count", route)] == 2
    missing = (("method", "GET"), ("route", "(unmatched)"), ("status", "404"))
    assert got[("baoflow_http_request_duration_seconds_count", missing)] == 1
