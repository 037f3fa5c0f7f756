"""The model registry: registered models, immutable versions as safe packages, aliases with a
recorded history, model cards. The SDK face is ``opsloop.models``; see ``docs/architecture.md``."""
