"""The tracing domain's paths, written once: ``api.py`` declares them and ``remote.py``
requests them. OTLP ingest is mounted at the root (``/v1/traces``, where OpenTelemetry
exporters send spans); the REST resources are under ``/api``.
"""

from __future__ import annotations

from opsloop.kernel.routes import Route

OTLP_TRACES = Route("/v1/traces", mount="")
TRACES = Route("/traces")
TRACE = Route("/traces/{trace_id}")
TRACE_EXPORTS = Route("/trace-exports")
SCORES = Route("/scores")
SCORE = Route("/scores/{score_id}")
MODEL_PRICES = Route("/model-prices")
TRACE_STATS = Route("/trace-stats")
TRACE_SESSIONS = Route("/trace-sessions")
TRACE_SESSION = Route("/trace-sessions/{session:path}")
