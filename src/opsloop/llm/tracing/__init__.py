"""LLM tracing: spans from the SDK or any OpenTelemetry exporter, scored, priced, queried.

Kept import-free: ``opsloop.llm.tracing.context`` is read on every ``Prompt.compile``.
"""
