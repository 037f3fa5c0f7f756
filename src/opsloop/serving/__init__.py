"""Serving: deployments of registered model versions with traffic policies (single, canary,
A/B, shadow), an inference endpoint, a prediction log joined with late ground truth, and
Prometheus metrics."""
