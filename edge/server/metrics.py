"""Prometheus metrics without a dependency: counters, gauges, histograms and the text format 0.0.4.

`CallMetrics` declares what the daemon exports; the call loop records into
the same object (the daemon passes it in `ServeContext.metrics`, and
`current()` returns it for code that has no context):

    metrics = current()
    metrics.asr_seconds.observe(0.042)
    metrics.turn_seconds.observe(0.35)
    metrics.errors.inc(kind="tts")

Everything runs on the event loop thread or under a lock, so a scrape sees
consistent values. Label values are escaped; label names are fixed when a
metric is declared, and passing others is a programming error (ValueError).

Example:
    >>> registry = Registry()
    >>> calls = registry.counter("demo_calls_total", "Calls by outcome.", ("outcome",))
    >>> calls.inc(outcome="completed")
    >>> print(registry.render().strip())
    # HELP demo_calls_total Calls by outcome.
    # TYPE demo_calls_total counter
    demo_calls_total{outcome="completed"} 1.0
"""

from __future__ import annotations

import bisect
import gc
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Final

__all__ = ["CONTENT_TYPE", "CallMetrics", "Counter", "Gauge", "Histogram", "Registry", "current"]

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
TURN_BUCKETS_S: Final = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0)
"""Turn latency (end of the caller's speech -> first bot audio); the target is p95 <= 0.6 s."""
STAGE_BUCKETS_S: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
"""One model step (ASR decode, intent batch, TTS sentence)."""
BATCH_BUCKETS: Final = (1, 2, 4, 8, 16, 32, 64)

LabelKey = tuple[str, ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value))


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{name}="{_escape(value)}"' for name, value in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.labelnames = tuple(labelnames)
        self._lock = threading.Lock()

    def _key(self, labels: dict[str, str]) -> LabelKey:
        if set(labels) != set(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {tuple(labels)}")
        return tuple(str(labels[name]) for name in self.labelnames)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help.replace(chr(10), ' ')}", f"# TYPE {self.name} {self.kind}"]

    def samples(self) -> list[str]:
        raise NotImplementedError


class Counter(_Metric):
    """A value that only goes up (restarts at 0 with the process)."""

    kind = "counter"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labelnames)
        self._values: dict[LabelKey, float] = {} if labelnames else {(): 0.0}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if amount < 0:
            raise ValueError(f"{self.name}: a counter cannot go down ({amount})")
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        return self._values.get(self._key(labels), 0.0)

    def samples(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return [f"{self.name}{_labels(self.labelnames, key)} {_number(v)}" for key, v in items]


class Gauge(_Metric):
    """A value that goes up and down, or is read from a function at scrape time."""

    kind = "gauge"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = (),
                 function: Callable[[], float] | None = None, kind: str = "gauge") -> None:
        super().__init__(name, help_text, labelnames)
        self.kind = kind
        """"counter" for a function that reads a running total (process CPU seconds)."""
        self._values: dict[LabelKey, float] = {} if labelnames else {(): 0.0}
        self.function = function
        """When set (no labels), the value is function() at scrape time."""

    def set(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = float(value)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def dec(self, amount: float = 1.0, **labels: str) -> None:
        self.inc(-amount, **labels)

    def value(self, **labels: str) -> float:
        if self.function is not None and not self.labelnames:
            return float(self.function())
        return self._values.get(self._key(labels), 0.0)

    def samples(self) -> list[str]:
        if self.function is not None and not self.labelnames:
            try:
                return [f"{self.name} {_number(float(self.function()))}"]
            except Exception:  # a failing probe must not break the whole scrape
                return []
        with self._lock:
            items = sorted(self._values.items())
        return [f"{self.name}{_labels(self.labelnames, key)} {_number(v)}" for key, v in items]


class Histogram(_Metric):
    """Observations counted into cumulative buckets, with their sum and count."""

    kind = "histogram"

    def __init__(self, name: str, help_text: str, buckets: Iterable[float], labelnames: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labelnames)
        self.buckets = tuple(sorted(float(b) for b in buckets))
        if not self.buckets:
            raise ValueError(f"{self.name}: a histogram needs at least one bucket")
        self._data: dict[LabelKey, list[float]] = {}
        """Per label set: one count per bucket, then +Inf, then the sum."""

    def observe(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        index = bisect.bisect_left(self.buckets, value)
        with self._lock:
            data = self._data.get(key)
            if data is None:
                data = self._data[key] = [0.0] * (len(self.buckets) + 2)
            data[index] += 1
            data[-1] += value

    def count(self, **labels: str) -> int:
        data = self._data.get(self._key(labels))
        return 0 if data is None else int(sum(data[:-1]))

    def samples(self) -> list[str]:
        with self._lock:
            items = sorted((key, list(data)) for key, data in self._data.items())
        if not items and not self.labelnames:
            items = [((), [0.0] * (len(self.buckets) + 2))]
        lines = []
        for key, data in items:
            cumulative = 0.0
            for bound, n in zip((*self.buckets, math.inf), data[:-1], strict=True):
                cumulative += n
                le = 'le="' + _number(bound) + '"'
                lines.append(f"{self.name}_bucket{_labels(self.labelnames, key, le)} {_number(cumulative)}")
            lines.append(f"{self.name}_sum{_labels(self.labelnames, key)} {_number(data[-1])}")
            lines.append(f"{self.name}_count{_labels(self.labelnames, key)} {_number(cumulative)}")
        return lines


class Registry:
    """Metrics by name, rendered in the Prometheus text format."""

    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}

    def _add(self, metric: _Metric) -> _Metric:
        if metric.name in self._metrics:
            raise ValueError(f"metric {metric.name} is declared twice")
        self._metrics[metric.name] = metric
        return metric

    def counter(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> Counter:
        return self._add(Counter(name, help_text, labelnames))  # type: ignore[return-value]

    def gauge(self, name: str, help_text: str, labelnames: Sequence[str] = (),
              function: Callable[[], float] | None = None, kind: str = "gauge") -> Gauge:
        return self._add(Gauge(name, help_text, labelnames, function, kind))  # type: ignore[return-value]

    def histogram(self, name: str, help_text: str, buckets: Iterable[float],
                  labelnames: Sequence[str] = ()) -> Histogram:
        return self._add(Histogram(name, help_text, buckets, labelnames))  # type: ignore[return-value]

    def get(self, name: str) -> _Metric:
        return self._metrics[name]

    def render(self) -> str:
        """All metrics in the text exposition format (version 0.0.4)."""
        lines: list[str] = []
        for metric in self._metrics.values():
            lines += metric.header()
            lines += metric.samples()
        return "\n".join(lines) + "\n"


def _process_stat() -> tuple[float, float]:
    """(CPU seconds, resident bytes) of this process from /proc; zeros elsewhere."""
    try:
        with open("/proc/self/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks, int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0.0, 0.0


def _open_fds() -> float:
    try:
        return float(len(os.listdir("/proc/self/fd")))
    except OSError:
        return 0.0


class CallMetrics:
    """The daemon's metrics; the call loop records turn and model timings into the same object."""

    def __init__(self) -> None:
        self.registry = Registry()
        r = self.registry
        self.active_calls = r.gauge("salesbot_active_calls", "Calls in progress.", ("transport",))
        self.calls = r.counter("salesbot_calls_total", "Calls ended, by outcome.", ("outcome",))
        self.rejected = r.counter("salesbot_calls_rejected_total",
                                  "Calls refused at the door, by reason (full, unhealthy, stopping).", ("reason",))
        self.errors = r.counter("salesbot_errors_total",
                                "Failures by kind (handler, budget, records, asr, nlu, tts, batch).", ("kind",))
        self.turn_seconds = r.histogram("salesbot_turn_latency_seconds",
                                        "End of the caller's speech to the bot's first audio.", TURN_BUCKETS_S)
        self.asr_seconds = r.histogram("salesbot_asr_seconds", "ASR decode time per batch.", STAGE_BUCKETS_S)
        self.nlu_seconds = r.histogram("salesbot_nlu_seconds", "Intent model time per batch.", STAGE_BUCKETS_S)
        self.tts_seconds = r.histogram("salesbot_tts_seconds", "TTS time per sentence.", STAGE_BUCKETS_S)
        self.batch_size = r.histogram("salesbot_batch_size", "Items per batched model call.", BATCH_BUCKETS,
                                      ("batcher",))
        self.call_seconds = r.histogram("salesbot_call_duration_seconds", "Length of ended calls.",
                                        (5, 15, 30, 60, 120, 300, 600))
        self.gc_pause_seconds = r.histogram("salesbot_gc_pause_seconds",
                                            "Python garbage-collection pauses (they stall the 20 ms clock).",
                                            STAGE_BUCKETS_S, ("generation",))
        self.ready = r.gauge("salesbot_ready", "1 when the box takes calls (health ok), else 0.")
        self.started = time.time()
        r.gauge("salesbot_uptime_seconds", "Seconds since the daemon started.",
                function=lambda: time.time() - self.started)
        r.gauge("process_cpu_seconds_total", "CPU time of the daemon (user + system).",
                function=lambda: _process_stat()[0], kind="counter")
        r.gauge("process_resident_memory_bytes", "Resident memory of the daemon.",
                function=lambda: _process_stat()[1])
        r.gauge("process_open_fds", "Open file descriptors of the daemon.", function=_open_fds)

    def watch_gc(self) -> Callable[[], None]:
        """Time every garbage collection into salesbot_gc_pause_seconds; returns the function that stops it."""
        started: list[float] = [0.0]

        def callback(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                started[0] = time.perf_counter()
            else:
                self.gc_pause_seconds.observe(time.perf_counter() - started[0], generation=str(info["generation"]))

        gc.callbacks.append(callback)
        return lambda: gc.callbacks.remove(callback) if callback in gc.callbacks else None

    def batch_observer(self, batcher: str, seconds: Histogram | None = None) -> Callable[[int, float], None]:
        """An `on_batch(size, seconds)` callback for a MicroBatcher (edge.calls.batcher)."""
        def observe(size: int, took: float) -> None:
            self.batch_size.observe(size, batcher=batcher)
            if seconds is not None:
                seconds.observe(took)
        return observe

    def render(self) -> str:
        return self.registry.render()


_current: CallMetrics | None = None


def current() -> CallMetrics:
    """The metrics of this process: the daemon's once it started, else a fresh set (tests, CLI)."""
    global _current
    if _current is None:
        _current = CallMetrics()
    return _current


def install(metrics: CallMetrics) -> None:
    """Make `metrics` what current() returns (the daemon does this at start)."""
    global _current
    _current = metrics
