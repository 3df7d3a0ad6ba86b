"""`/metrics` of a service in two processes: the front's and the engine's expositions added up
into one, which reads as the metrics of one process that counted everything."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from flowlang.service.metrics import Metrics, merged_text

CHANNELS = st.sampled_from(["web", "whatsapp", "sms"])
COUNTS = st.lists(st.tuples(CHANNELS, st.integers(0, 50)), max_size=6)
SECONDS = st.lists(st.floats(0.0, 20.0), max_size=6)


def values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Each sample's value but the `_created` times, by name and labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if not s.name.endswith("_created")
    }


@given(front=COUNTS, engine=COUNTS, seconds=SECONDS, backlog=st.integers(0, 1000))
def test_two_expositions_add_up_to_one_that_counted_everything(
    front: list[tuple[str, int]], engine: list[tuple[str, int]], seconds: list[float], backlog: int
) -> None:
    ours, theirs, whole = Metrics(), Metrics(), Metrics()
    for metrics, counts in ((ours, front), (theirs, engine)):
        for channel, n in counts:
            metrics.inbound.labels(channel).inc(n)
            whole.inbound.labels(channel).inc(n)
    for value in seconds:
        theirs.processing.observe(value)
        whole.processing.observe(value)
    theirs.backlog.set(backlog)
    whole.backlog.set(backlog)
    merged = merged_text(ours.text().decode(), theirs.text().decode()).decode()
    assert values(merged) == values(whole.text().decode())


def test_an_engine_that_does_not_answer_leaves_the_fronts_metrics_alone() -> None:
    front = Metrics()
    front.rejected.labels("web", "signature").inc()
    merged = merged_text(front.text().decode()).decode()
    assert 'flowlang_webhooks_rejected_total{channel="web",reason="signature"} 1.0' in merged
