"""Prometheus metrics of BYOK credential liveness."""

from prometheus_client import Counter, Gauge

PROBE_TOTAL = Counter(
    "byok_probe_total", "BYOK credential probes by provider and result.", ["provider", "result"]
)
CREDENTIALS = Gauge(
    "byok_credentials", "BYOK credentials by provider and status.", ["provider", "status"]
)
QUOTA_REJECTIONS = Counter(
    "byok_quota_rejections_total", "BYOK requests refused by the daily quota.", ["reason"]
)
