"""The service's Prometheus metrics, in a registry of its own (`GET /metrics`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    """Counters and gauges of one app; several apps in one process do not share them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.inbound = Counter(
            "flowlang_inbound_events",
            "Inbound events made durable, by channel",
            ["channel"],
            registry=self.registry,
        )
        self.duplicates = Counter(
            "flowlang_inbound_duplicates",
            "Inbound events received again (same vendor event id), not processed again",
            ["channel"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "flowlang_webhooks_rejected",
            "Webhook requests refused, by channel and reason",
            ["channel", "reason"],
            registry=self.registry,
        )
        self.processing = Histogram(
            "flowlang_processing_seconds",
            "From an inbound event made durable to its outcome committed",
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.deliveries = Counter(
            "flowlang_deliveries",
            "Outbound messages by delivery status",
            ["status"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "flowlang_dead_letters",
            "Payloads and events kept as dead letters, by source kind",
            ["kind"],
            registry=self.registry,
        )
        self.backlog = Gauge(
            "flowlang_worker_backlog",
            "Inbound events made durable and not yet processed, and calls waiting for the worker",
            registry=self.registry,
        )
        self.queue_waiting = Gauge(
            "flowlang_queue_waiting",
            "Interactions waiting in each ACD queue",
            ["queue"],
            registry=self.registry,
        )

        self.statuses = Counter(
            "flowlang_delivery_statuses",
            "Vendor status webhooks by channel and status (a failure by its vendor error code); "
            "known=false: the vendor's id is of no message sent from this store",
            ["channel", "status", "error_code", "known"],
            registry=self.registry,
        )

    def count_status(self, event: Mapping[str, Any]) -> None:
        """An engine listener: count each `delivery_status` of the event log."""
        if event["kind"] == "delivery_status":
            known = "false" if event.get("unknown") else "true"
            code = str(event.get("error_code", ""))
            self.statuses.labels(event["channel"], event["status"], code, known).inc()

    def watch_backlog(self, length: Callable[[], int]) -> None:
        """Read the worker's backlog when the metrics are scraped."""
        self.backlog.set_function(lambda: float(length()))

    def text(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
