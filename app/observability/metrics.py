"""Prometheus metrics of the service.

Multiprocess-safe when ``PROMETHEUS_MULTIPROC_DIR`` is set before the workers
start (``placement-api --workers N`` does it). The database's retry counters
live on :class:`app.db.database.Database`; :func:`export_database_stats`
carries their growth into the counters here.
"""

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prometheus_multiprocess

from app.db.database import DatabaseStats

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # prometheus-client writes its per-process files there from the first sample on.
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

REQUESTS = Counter(
    "placement_http_requests",
    "HTTP requests answered, by route template, method, status and microversion.",
    ["route", "method", "status", "microversion"],
)
LATENCY = Histogram(
    "placement_http_request_duration_seconds",
    "Time from the request reaching the app to the end of the response.",
    ["route", "method"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
IN_PROGRESS = Gauge(
    "placement_http_requests_in_progress",
    "Requests being handled.",
    multiprocess_mode="livesum",
)
GENERATION_CONFLICTS = Counter(
    "placement_generation_conflicts",
    "Requests answered 409 placement.concurrent_update (provider or consumer generation "
    "conflicts, exhausted retries).",
    ["route", "method"],
)
SERIALIZATION_RETRIES = Counter(
    "placement_db_serialization_retries",
    "Units of work retried after a database serialization failure.",
)
CLAIM_RETRIES = Counter(
    "placement_claim_retries",
    "Claims retried in a fresh transaction after a provider generation moved.",
)
LOOP_STALLS = Histogram(
    "placement_event_loop_stall_seconds",
    "Times a worker's event loop ran no other callback for 25 ms or more "
    "(app/observability/loop_lag.py), by length.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

# Labelled children, looked up once (labels() validates and locks on every call).
_REQUEST_CHILDREN: dict[tuple[str, str, int, str], Any] = {}
_LATENCY_CHILDREN: dict[tuple[str, str], Any] = {}


def observe_request(
    route: str, method: str, status: int, microversion: str, duration: float
) -> None:
    key = (route, method, status, microversion)
    counter = _REQUEST_CHILDREN.get(key)
    if counter is None:
        counter = _REQUEST_CHILDREN[key] = REQUESTS.labels(
            route, method, str(status), microversion)
    counter.inc()
    histogram = _LATENCY_CHILDREN.get((route, method))
    if histogram is None:
        histogram = _LATENCY_CHILDREN[(route, method)] = LATENCY.labels(route, method)
    histogram.observe(duration)


def observe_generation_conflict(route: str, method: str) -> None:
    GENERATION_CONFLICTS.labels(route, method).inc()


class _Exported:
    """How much of a Database's counters the Prometheus counters already hold."""

    def __init__(self) -> None:
        self.serialization_retries = 0
        self.claim_retries = 0


_EXPORTED: dict[int, _Exported] = {}


def export_database_stats(stats: DatabaseStats | None) -> None:
    if stats is None:
        return
    exported = _EXPORTED.setdefault(id(stats), _Exported())
    if stats.serialization_retries > exported.serialization_retries:
        SERIALIZATION_RETRIES.inc(stats.serialization_retries - exported.serialization_retries)
        exported.serialization_retries = stats.serialization_retries
    if stats.claim_retries > exported.claim_retries:
        CLAIM_RETRIES.inc(stats.claim_retries - exported.claim_retries)
        exported.claim_retries = stats.claim_retries


def render_metrics(stats: DatabaseStats | None = None) -> tuple[bytes, str]:
    """The exposition text of this process, or of all workers in multiprocess mode."""
    export_database_stats(stats)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
