"""Prometheus metrics of this process."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

HTTP_REQUESTS = Counter(
    "dinero_bridge_http_requests_total",
    "HTTP requests answered, by route template, method and status.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "dinero_bridge_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
DINERO_PACER_WAIT = Histogram(
    "dinero_bridge_pacer_wait_seconds",
    "Time a Dinero request waited for its slot in the per-organization budget, by lane.",
    ["lane"],
    buckets=(0.0, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
)
DINERO_RATE_LIMITED = Counter(
    "dinero_bridge_dinero_rate_limited_total",
    "429 answers from Dinero (each pauses the organization's requests).",
)
DINERO_PACER_LATE = Counter(
    "dinero_bridge_pacer_late_total",
    "Dinero requests answered more than the pacer's margin after their slot began (a busy "
    "worker): each slot is moved to its answer's time, so the window counts it as Dinero did.",
)
WEBHOOKS_SENT = Counter(
    "dinero_bridge_webhooks_sent_total",
    "Outgoing webhook attempts to the platform, by outcome (delivered, failed, given_up).",
    ["outcome"],
)
FOLLOW_UP_REQUESTS = Counter(
    "dinero_bridge_follow_up_requests_total",
    "Dinero requests made to follow drafts, by purpose (entries, files, vouchers, receipts).",
    ["purpose"],
)
