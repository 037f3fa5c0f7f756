"""LLMOps: the prompt registry, tracing and scores; evaluations and the gateway next."""
