"""Queue status in expressions, statically: `queue("Retail Banking")` and its fields; the
queue's name is checked against the deployment like a `route to queue`'s."""

from __future__ import annotations

QUEUE_STATUS = "queue status"

QUEUE_FIELDS: dict[str, str] = {
    "estimated_wait": "duration",
    "waiting": "number",
    "agents_available": "number",
    "agents_on_queue": "number",
    "service_level": "number",  # percent answered within the queue's target
}
