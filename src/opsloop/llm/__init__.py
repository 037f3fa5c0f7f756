"""LLMOps: the prompt registry today; tracing, feedback, evaluations and the gateway next."""
