"""Monitoring: drift statistics, reference profiles, monitors over the prediction log, alerts,
and the retraining loop that ties an alert back to a pipeline and a rollout."""
