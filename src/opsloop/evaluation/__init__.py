"""Evaluating models (metrics, slices, calibration, latency, plots), behavioural checks, and the
gates' policies and verdicts. Pure computation over predictions, with no store: stored
evaluations and gated promotions are the registry's (``registry/evaluations.py``,
``registry/promotion.py``), which uses these."""
