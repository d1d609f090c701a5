"""Prometheus metrics, in a registry of the app's own (no global state)."""
from __future__ import annotations

from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

SCAN_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)


class _JobsByState:
    """``fakeprobe_jobs{state}`` read from the job store at scrape time, so it is right after a restart."""

    def __init__(self, counts: Callable[[], dict[str, int]]):
        self.counts = counts

    def collect(self):
        g = GaugeMetricFamily("fakeprobe_jobs", "Jobs in the store by state", labels=["state"])
        for state, n in self.counts().items():
            g.add_metric([state], n)
        yield g


class Metrics:
    def __init__(self, counts: Callable[[], dict[str, int]]):
        self.registry = CollectorRegistry()
        self.registry.register(_JobsByState(counts))
        self.scan_seconds = Histogram("fakeprobe_scan_seconds", "Wall time of a scan in a worker, report included",
                                      buckets=SCAN_BUCKETS, registry=self.registry)
        self.results = Counter("fakeprobe_results", "Scans finished, by verdict", ["verdict"], registry=self.registry)
        self.rejected = Counter("fakeprobe_rejected_requests", "Requests refused, by error kind", ["kind"], registry=self.registry)
        self.queue_length = Gauge("fakeprobe_queue_length", "Jobs waiting for a worker", registry=self.registry)
        self.ready = Gauge("fakeprobe_ready", "1 once the scan workers have loaded the model", registry=self.registry)
