"""Prometheus metrics for one app instance (its own registry, so several apps can live in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Telemetry:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "cutout_requests", "HTTP requests by route and status", ["route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "cutout_request_seconds", "Request latency by route", ["route"], buckets=LATENCY_BUCKETS, registry=self.registry
        )
        self.inference = Histogram(
            "cutout_inference_seconds", "Model inference time", buckets=LATENCY_BUCKETS, registry=self.registry
        )
        self.in_flight = Gauge("cutout_in_flight_requests", "Requests being handled now", registry=self.registry)
        self.rejected = Counter("cutout_rejected", "Requests refused by reason", ["reason"], registry=self.registry)
