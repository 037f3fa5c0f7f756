"""Prompt-injection tier 2: a small text classifier, built in or brought as an ONNX model.

**Built in.** TF-IDF of character 2-5-grams within words (robust to inflections, typos and
words the set never used) beside word 1-2-grams, into a logistic regression; trained on the
package's labelled set (:mod:`.dataset`) once per process, the first time a route asks, in
about a second; the same set and fixed solver give the same model every time. Scoring one
message costs a fraction of a millisecond (``bench/guardrails.py`` prints it).

**Your own.** ``model: path/to/model.onnx`` on the rule replaces the built-in one with any
binary text classifier exported to ONNX whose first input takes strings, shape ``[N, 1]``,
and whose probabilities are an output of shape ``[N, 2]`` or a ZipMap (a list of
``{class: probability}``), as skl2onnx exports a scikit-learn text pipeline; ``positive_class``
names the injection class (default 1: the second column, or the ZipMap key ``1``). The model
is loaded, and its input checked, when the route is loaded, so a wrong file fails at start.
(A TF-IDF exported by skl2onnx lower-cases with the ``en_US.UTF-8`` locale, which slim images
lack; export it with the converter option ``{"locale": "C"}``.)
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any
from typing import Protocol

import numpy as np

from opsloop.errors import InvalidInput

__all__ = ["BuiltinClassifier", "OnnxClassifier", "TextClassifier", "builtin_classifier"]


class TextClassifier(Protocol):
    """Probability that each text is a prompt injection. Thread-safe: called from the loop's
    executor as well as from the loop."""

    ready: bool

    def score(self, texts: list[str]) -> list[float]: ...


def build_pipeline() -> Any:
    """The untrained built-in model (``bench/guardrails.py`` times it too)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion
    from sklearn.pipeline import Pipeline

    features = FeatureUnion(
        [
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True,
                                      min_df=2, max_features=40_000)),
            ("words", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True,
                                      token_pattern=r"(?u)\b\w+\b")),
        ]
    )  # fmt: skip
    model = LogisticRegression(C=8.0, class_weight="balanced", max_iter=2000, solver="liblinear")
    return Pipeline([("features", features), ("model", model)])


class BuiltinClassifier:
    """The built-in model, trained on first use (one thread trains; others wait for it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pipeline: Any = None

    @property
    def ready(self) -> bool:
        return self._pipeline is not None

    def train(self) -> Any:
        """The trained pipeline, training it now if no thread has yet."""
        if self._pipeline is None:
            with self._lock:
                if self._pipeline is None:
                    from opsloop.llm.gateway.guardrails.dataset import training_set

                    texts, labels = training_set()
                    pipeline = build_pipeline()
                    pipeline.fit(texts, labels)
                    self._pipeline = pipeline
        return self._pipeline

    def score(self, texts: list[str]) -> list[float]:
        if not texts:
            return []
        return [float(p) for p in self.train().predict_proba(texts)[:, 1]]


_BUILTIN = BuiltinClassifier()


def builtin_classifier() -> BuiltinClassifier:
    """The process's one built-in classifier (every route shares its training)."""
    return _BUILTIN


class OnnxClassifier:
    """A user's ONNX text classifier (see the module docstring for the shape it must have).

    Raises:
        InvalidInput: the file is missing, is not an ONNX model, does not take strings or
            does not give two-class probabilities (checked on a probe text when loaded).
    """

    ready = True

    def __init__(self, path: str, positive_class: int | str = 1) -> None:
        import onnxruntime

        file = Path(path).expanduser()
        if not file.is_file():
            raise InvalidInput(f"model: no ONNX file at {str(file)!r}")
        try:
            self._session = onnxruntime.InferenceSession(
                str(file), providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise InvalidInput(f"model: {file.name} is not a loadable ONNX model: {exc}") from None
        first = self._session.get_inputs()[0]
        if first.type != "tensor(string)":
            raise InvalidInput(
                f"model: {file.name} takes {first.type}, but the rule feeds it text; export a "
                "pipeline whose input is a string tensor of shape [N, 1] (StringTensorType)"
            )
        self._input = first.name
        self._positive = positive_class
        self.score(["a probe, so that a model with the wrong outputs fails here"])

    def score(self, texts: list[str]) -> list[float]:
        if not texts:
            return []
        feed = {self._input: np.array(texts, dtype=object).reshape(-1, 1)}
        outputs = self._session.run(None, feed)
        probabilities = outputs[-1] if len(outputs) > 1 else outputs[0]
        if isinstance(probabilities, list):  # ZipMap: one {class: probability} per text
            key = self._positive
            return [float(row.get(key, row.get(str(key), 0.0))) for row in probabilities]
        array = np.asarray(probabilities, dtype=float)
        column = self._positive if isinstance(self._positive, int) else 1
        if array.ndim != 2 or column >= array.shape[1]:
            raise InvalidInput(
                f"the ONNX model's output has shape {array.shape}; expected [N, 2] probabilities"
            )
        return [float(p) for p in array[:, column]]
