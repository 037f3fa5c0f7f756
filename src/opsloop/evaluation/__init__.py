"""Evaluating models (metrics, slices, calibration, latency, plots), behavioural checks, and the
gates that decide whether an alias such as ``champion`` moves."""
