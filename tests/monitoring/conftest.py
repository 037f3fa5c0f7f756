"""The serving fixtures (two real classifiers on the breast-cancer table), reused by name."""

from tests.serving.conftest import cancer  # noqa: F401
from tests.serving.conftest import strong_model  # noqa: F401
from tests.serving.conftest import weak_model  # noqa: F401
