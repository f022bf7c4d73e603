"""The plain series (app/observability/series.py) expose exactly what
prometheus-client's own metric objects would, given the same calls."""

import re
from collections.abc import Iterable
from typing import Any

import prometheus_client
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric

from app.observability import series

BUCKETS = (0.002, 0.01, 0.5, 2.5)


class _Plain:
    def __init__(self, metrics: list[Any]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        for metric in self.metrics:
            yield from metric.collect()


def _drive(counter: Any, unlabelled: Any, gauge: Any, histogram: Any, stalls: Any) -> None:
    counter.labels("/a/{uuid}", "GET", "200", "1.39").inc()
    counter.labels("/a/{uuid}", "GET", "200", "1.39").inc()
    counter.labels("/b", "PUT", "409", "none").inc()
    unlabelled.inc(3)
    gauge.inc()
    gauge.inc()
    gauge.dec()
    for duration in (0.001, 0.002, 0.0021, 0.7, 3.0, 99.0):
        histogram.labels("/a/{uuid}", "GET").observe(duration)
    histogram.labels("/b", "PUT").observe(0.3)
    stalls.observe(0.06)


def _metrics(kind: Any, registry: Any) -> list[Any]:
    return [
        kind.Counter("t_requests", "Requests.", ["route", "method", "status", "microversion"],
                     registry=registry),
        kind.Counter("t_retries", "Retries.", registry=registry),
        kind.Gauge("t_in_progress", "In progress.", registry=registry,
                   multiprocess_mode="livesum"),
        kind.Histogram("t_duration_seconds", "Durations.", ["route", "method"],
                       registry=registry, buckets=BUCKETS),
        kind.Histogram("t_stall_seconds", "Stalls.", registry=registry, buckets=BUCKETS),
    ]


def _without_created(text: bytes) -> str:
    return re.sub(r"^(\S*_created(\{.*\})?) \S+$", r"\1 T", text.decode(), flags=re.MULTILINE)


@pytest.mark.parametrize("created", ["", "true"])
def test_plain_series_expose_what_the_library_would(
    created: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if created:
        monkeypatch.setenv("PROMETHEUS_DISABLE_CREATED_SERIES", created)
        monkeypatch.setattr(prometheus_client.metrics, "_use_created", False)
    library_registry = CollectorRegistry()
    library = _metrics(prometheus_client, library_registry)
    plain = _metrics(series, None)
    _drive(*library)
    _drive(*plain)
    plain_registry = CollectorRegistry()
    plain_registry.register(_Plain(plain))
    expected = _without_created(generate_latest(library_registry))
    assert _without_created(generate_latest(plain_registry)) == expected
    assert ("_created" in expected) is not bool(created)


def test_plain_series_not_collected_twice() -> None:
    before = len(list(series.collector().collect()))
    series.Counter("t_private", "Kept by its owner.", registry=None)
    assert len(list(series.collector().collect())) == before

