"""The LLM gateway: one OpenAI-compatible endpoint in front of every model.

A request names a model; the gateway maps it to a route (one or more targets: an
OpenAI-compatible upstream or a registered model generated in-process), checks the caller's
limits and budget, runs the route's guardrails, answers from the cache when it may, calls the
targets with retries and fallbacks, and traces the call. The pieces it is handed (limits,
guardrails, caches, local models, prompts) are the protocols of :mod:`.ports`; the wiring that
picks them lives in ``opsloop.app``.
"""
