"""The serving fixtures (two real classifiers on the breast-cancer table), reused by name."""

from tests.serving.conftest import cancer, strong_model, weak_model  # noqa: F401
