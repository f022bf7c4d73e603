"""Counters, gauges and histograms kept as plain numbers until a scrape.

A worker that is never scraped need not import prometheus-client (~1.4 MB per
worker): these series take the same calls as the library's (``labels``, ``inc``,
``dec``, ``observe``) and only turn into the library's ``Metric`` families when
``/metrics`` is read (:func:`collector`), in the same order and with the same
samples (``_total``/``_created``, cumulative ``_bucket``s, ``_count``, ``_sum``)
as the library's own metric classes. Single-process only: several workers share
their metrics through prometheus-client's files (``PROMETHEUS_MULTIPROC_DIR``),
which :mod:`app.observability.metrics` uses instead.
"""

import os
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

# Every series of the process, in creation order (the exposition's order).
_ALL: list["_Series"] = []


def _created_series() -> bool:
    """Whether ``_created`` samples are exported (prometheus-client's switch)."""
    flag = os.environ.get("PROMETHEUS_DISABLE_CREATED_SERIES", "False")
    return flag.lower() not in ("true", "1", "t")


def _go_float(value: float) -> str:
    """A bucket bound as the exposition spells it (``+Inf``, ``0.5``, ``1.0``)."""
    from prometheus_client.utils import floatToGoString

    return floatToGoString(value)  # type: ignore[no-untyped-call,no-any-return]


class _Child:
    """One labelled (or the unlabelled) series of a counter or gauge."""

    __slots__ = ("created", "value")

    def __init__(self) -> None:
        self.value = 0.0
        self.created = time.time()

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        self.value -= amount


class _HistogramChild:
    """One series of a histogram: a count per bucket (not cumulative) and the sum."""

    __slots__ = ("bounds", "counts", "created", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0.0] * len(bounds)
        self.total = 0.0
        self.created = time.time()

    def observe(self, amount: float) -> None:
        self.total += amount
        for index, bound in enumerate(self.bounds):
            if amount <= bound:
                self.counts[index] += 1.0
                return


class _Series:
    """A metric with its children by label values (one unlabelled child if none)."""

    kind = ""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = (),
                 registry: list["_Series"] | None = _ALL) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._children: dict[tuple[str, ...], Any] = {}
        if not self.labelnames:
            self._children[()] = self._new_child()
        if registry is not None:  # None: collected by its owner only (tests)
            registry.append(self)

    def _new_child(self) -> Any:
        return _Child()

    def labels(self, *values: str) -> Any:
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name}: expected labels {self.labelnames}")
        key = tuple(str(value) for value in values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._new_child()
        return child

    def _child_samples(self, child: Any) -> Iterator[tuple[str, dict[str, str], float]]:
        raise NotImplementedError

    def collect(self) -> list["Metric"]:
        from prometheus_client.metrics_core import Metric

        metric = Metric(self.name, self.documentation, self.kind)
        for key, child in list(self._children.items()):
            labels = dict(zip(self.labelnames, key, strict=True))
            for suffix, extra, value in self._child_samples(child):
                metric.add_sample(self.name + suffix, {**labels, **extra}, value)
        return [metric]


class Counter(_Series):
    kind = "counter"

    def inc(self, amount: float = 1.0) -> None:
        self._children[()].inc(amount)

    def _child_samples(self, child: _Child) -> Iterator[tuple[str, dict[str, str], float]]:
        yield "_total", {}, child.value
        if _created_series():
            yield "_created", {}, child.created


class Gauge(_Series):
    kind = "gauge"

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = (),
                 registry: list[_Series] | None = _ALL, multiprocess_mode: str = "all") -> None:
        del multiprocess_mode  # single process: the one value is the value
        super().__init__(name, documentation, labelnames, registry)

    def inc(self, amount: float = 1.0) -> None:
        self._children[()].inc(amount)

    def dec(self, amount: float = 1.0) -> None:
        self._children[()].dec(amount)

    def _child_samples(self, child: _Child) -> Iterator[tuple[str, dict[str, str], float]]:
        yield "", {}, child.value


class Histogram(_Series):
    kind = "histogram"

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = (),
                 registry: list[_Series] | None = _ALL, buckets: Sequence[float] = ()) -> None:
        bounds = [float(bound) for bound in buckets]
        if not bounds or bounds != sorted(bounds):
            raise ValueError(f"{name}: buckets must be given in increasing order")
        if bounds[-1] != float("inf"):
            bounds.append(float("inf"))
        self.bounds = tuple(bounds)
        super().__init__(name, documentation, labelnames, registry)

    def _new_child(self) -> _HistogramChild:
        return _HistogramChild(self.bounds)

    def observe(self, amount: float) -> None:
        self._children[()].observe(amount)

    def _child_samples(
        self, child: _HistogramChild
    ) -> Iterator[tuple[str, dict[str, str], float]]:
        cumulative = 0.0
        for bound, count in zip(self.bounds, child.counts, strict=True):
            cumulative += count
            yield "_bucket", {"le": _go_float(bound)}, cumulative
        yield "_count", {}, cumulative
        if self.bounds[0] >= 0:
            yield "_sum", {}, child.total
        if _created_series():
            yield "_created", {}, child.created


class _Collector:
    """The process's series as one prometheus-client collector."""

    def collect(self) -> Iterable["Metric"]:
        for series in list(_ALL):
            yield from series.collect()


_COLLECTOR = _Collector()


def collector() -> _Collector:
    """The collector of every series here (register it once with a registry)."""
    return _COLLECTOR
