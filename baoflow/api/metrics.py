"""Prometheus metrics of a desk (issue #12): ``/metrics`` over the Engine facade.

What is exposed (each gauge read from ``Engine.gauges()``, one read transaction of
index-only aggregates, cached for ``ttl`` seconds so scrapes cannot load the database):

==========================================  =========  ====================================
``baoflow_cases{workflow,state}``            gauge      cases in each state
``baoflow_breaches{workflow,rule,level}``    gauge      breached running deadlines, per
                                                        escalation level reached
``baoflow_timer_lag_seconds``                gauge      how overdue the earliest pending
                                                        timer is (0 when none is due)
``baoflow_outbox_pending``                   gauge      notices and messages to deliver
``baoflow_outbox_dead``                      gauge      dead letters
``baoflow_inbound_messages{status}``         gauge      insurers' messages (unresolved:
                                                        waiting for a person)
``baoflow_transitions_total{workflow,event}`` counter   events this process fired
``baoflow_http_request_duration_seconds``    histogram  the API's request latencies, per
``{method,route,status}``                               route template (:class:`HttpMetrics`)
==========================================  =========  ====================================

No process-global registry: :class:`Metrics` makes its own, so two engines (or tests)
never share one. An app adds the middleware and mounts the exposition::

    metrics = Metrics(engine)
    app.add_middleware(HttpMetrics, metrics=metrics)
    app.mount("/metrics", metrics.asgi_app())
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest, make_asgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from baoflow.engine import Engine, Gauges

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Request latencies from a fast read to a slow report (seconds).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class EngineCollector(Collector):
    """The desk's gauges and the transitions counter, read through the facade at
    most once per ``ttl`` seconds of ``clock`` (monotonic seconds; a test injects one)."""

    def __init__(
        self,
        engine: Engine,
        *,
        ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._cached: Gauges | None = None
        self._read_at = 0.0
        #: how many times the database was read (what the cache spares)
        self.reads = 0

    def gauges(self) -> Gauges:
        with self._lock:
            now = self.clock()
            if self._cached is None or now - self._read_at >= self.ttl:
                self._cached = self.engine.gauges()
                self._read_at = now
                self.reads += 1
            return self._cached

    def collect(self) -> Iterable[Metric]:
        g = self.gauges()
        cases = GaugeMetricFamily(
            "baoflow_cases", "Cases in each state.", labels=["workflow", "state"]
        )
        for (workflow, state), n in sorted(g.cases.items()):
            cases.add_metric([workflow, state], n)
        breaches = GaugeMetricFamily(
            "baoflow_breaches",
            "Running deadlines past their due time, per rule and escalation level reached.",
            labels=["workflow", "rule", "level"],
        )
        for (workflow, rule, level), n in sorted(g.breaches.items()):
            breaches.add_metric([workflow, rule, str(level)], n)
        inbound = GaugeMetricFamily(
            "baoflow_inbound_messages",
            "Insurers' messages per status (unresolved: waiting for a person).",
            labels=["status"],
        )
        for status in ("applied", "unresolved", "resolved", "dismissed"):
            inbound.add_metric([status], g.inbound.get(status, 0))
        fired = CounterMetricFamily(
            "baoflow_transitions",
            "Events fired and committed by this process (openings as 'open').",
            labels=["workflow", "event"],
        )
        for (workflow, event), n in sorted(self.engine.transitions_fired().items()):
            fired.add_metric([workflow, event], n)
        yield cases
        yield breaches
        yield GaugeMetricFamily(
            "baoflow_timer_lag_seconds",
            "How long the earliest pending timer has been due (0 when none is due).",
            value=g.timer_lag,
        )
        yield GaugeMetricFamily(
            "baoflow_outbox_pending", "Outbox rows waiting for delivery.", value=g.outbox_pending
        )
        yield GaugeMetricFamily("baoflow_outbox_dead", "Outbox dead letters.", value=g.outbox_dead)
        yield inbound
        yield fired


class Metrics:
    """A registry of one engine's metrics, with the HTTP latency histogram."""

    def __init__(
        self,
        engine: Engine,
        *,
        ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.collector = EngineCollector(engine, ttl=ttl, clock=clock)
        self.registry.register(self.collector)
        self.http = Histogram(
            "baoflow_http_request_duration_seconds",
            "HTTP request latencies, per route template.",
            labelnames=("method", "route", "status"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def render(self) -> bytes:
        """The exposition text (Prometheus text format 0.0.4)."""
        return generate_latest(self.registry)

    def asgi_app(self) -> ASGIApp:
        """An ASGI app serving the exposition (mount it at ``/metrics``)."""
        app: ASGIApp = make_asgi_app(self.registry)
        return app


class HttpMetrics:
    """ASGI middleware timing every HTTP request into ``metrics.http``, labelled by the
    route's template (``/cases/{case}``, not the path, so the labels stay few)."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.clock = clock
        #: the histogram's child per (method, route, status): ``labels()`` takes a lock
        #: and checks its arguments each call, a tenth of a fast fire
        self._children: dict[tuple[str, str, int], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = {"code": 500}

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
            await send(message)

        start = self.clock()
        try:
            await self.app(scope, receive, sending)
        finally:
            took = self.clock() - start
            route = scope.get("route")
            key = (
                scope.get("method", ""),
                getattr(route, "path", None) or "(unmatched)",
                status["code"],
            )
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = self.metrics.http.labels(key[0], key[1], str(key[2]))
            child.observe(took)
