"""LLM evaluations: text metrics, assertions, and YAML suites of prompts x models x cases."""
