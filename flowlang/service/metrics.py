"""The service's Prometheus metrics, in a registry of its own (`GET /metrics`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

__all__ = ["CONTENT_TYPE_LATEST", "Metrics", "merged_text"]


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


def merged_text(*texts: str) -> bytes:
    """Several processes' expositions of the same metrics as one (the service's front and
    engine processes): the values of one sample (name and labels) are added, and a `_created`
    time is the earliest."""
    families: dict[str, Metric] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            kept = families.setdefault(family.name, family)
            if kept is family:
                continue
            where = {
                (s.name, tuple(sorted(s.labels.items()))): i for i, s in enumerate(kept.samples)
            }
            for sample in family.samples:
                i = where.get((sample.name, tuple(sorted(sample.labels.items()))))
                if i is None:
                    kept.samples.append(sample)
                    continue
                old = kept.samples[i]
                value = (
                    min(old.value, sample.value)
                    if sample.name.endswith("_created")
                    else old.value + sample.value
                )
                kept.samples[i] = old._replace(value=value)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collected(list(families.values())))
    return generate_latest(registry)


class _Collected:
    """A collector of families read elsewhere."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families
