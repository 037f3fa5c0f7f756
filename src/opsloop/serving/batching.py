"""Adaptive micro-batching: concurrent requests to one model version share one ``predict``.

A request that finds nobody else in flight is checked and answered on its own thread, so a
quiet server pays no batching delay. Under load, requests queue for their model; a batcher
thread takes what is waiting (up to ``max_batch`` rows, waiting at most ``max_wait`` for more
to arrive), checks all their rows against the signature at once (one DataFrame for the batch
instead of one per request, which is most of a small model's cost), predicts once, and hands
each request its own slice. If the batch's rows fail the check, each request is checked alone,
so one caller's bad row is that caller's 422 and never fails the others.

A classifier's probabilities are computed on the same checked inputs (:meth:`predict_scored`)
so the prediction log can keep them (a monitor's estimated quality then needs no model) and a
caller who asks for them gets them without a second pass.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from opsloop.errors import InvalidInput

__all__ = ["MicroBatcher"]


@dataclass
class _Item:
    rows: Any  # the request's rows as sent (records list, or a DataFrame)
    count: int
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


def _stack(parts: list[Any]) -> Any:
    """Rows of several requests as one input: records lists joined, anything else concatenated."""
    if all(isinstance(p, list) for p in parts):
        return [row for part in parts for row in part]
    import pandas as pd

    return pd.concat(
        [p if hasattr(p, "iloc") else pd.DataFrame(p) for p in parts], ignore_index=True
    )


class MicroBatcher:
    def __init__(self, model: Any, *, max_batch: int = 64, max_wait: float = 0.002) -> None:
        self.model = model
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.in_flight = 0
        classes = getattr(model, "classes", None)
        self.scores = (
            classes is not None and len(classes) >= 2 and hasattr(model, "predict_proba_prepared")
        )
        self.batches = 0
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="opsloop-batcher", daemon=True)
        self._thread.start()

    def predict(self, rows: Any, count: int) -> tuple[Any, int]:
        """Predictions for a request's ``rows`` and the size of the batch they rode in."""
        outputs, _, batch_rows = self.predict_scored(rows, count)
        return outputs, batch_rows

    def predict_scored(self, rows: Any, count: int) -> tuple[Any, list[Any] | None, int]:
        """Predictions, the classifier's class probabilities per row (see :meth:`_proba`; None
        for a model without them) and the size of the batch they rode in."""
        with self._lock:
            self.in_flight += 1
            alone = self.in_flight == 1
        try:
            if alone or count >= self.max_batch:
                inputs = self.model.prepare(rows)
                return self.model.predict_prepared(inputs), self._proba(inputs), count
            item = _Item(rows, count)
            self._queue.put(item)
            item.done.wait()
            if item.error is not None:
                raise item.error
            return item.result
        finally:
            with self._lock:
                self.in_flight -= 1

    def _proba(self, inputs: Any) -> list[Any] | None:
        """The class probabilities per row (a list per row, in the order of the model's
        classes) for a classifier; None for anything else. Logging them must never
        fail an answer, so a model that cannot give them stops being asked."""
        if not self.scores:
            return None
        try:
            import numpy as np

            proba = np.asarray(self.model.predict_proba_prepared(inputs), dtype=float)
        except Exception:
            self.scores = False
            return None
        if proba.ndim != 2 or proba.shape[1] != len(self.model.classes):
            self.scores = False
            return None
        return proba.tolist()  # type: ignore[no-any-return]

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            rows = batch[0].count
            deadline = time.perf_counter() + self.max_wait
            while rows < self.max_batch:
                try:
                    item = self._queue.get(timeout=max(deadline - time.perf_counter(), 0))
                except queue.Empty:
                    break
                batch.append(item)
                rows += item.count
            self._predict(batch)

    def _predict(self, batch: list[_Item]) -> None:
        self.batches += 1
        try:
            inputs = self.model.prepare(_stack([i.rows for i in batch]))
        except InvalidInput:  # someone's rows are bad: check each request alone
            good = []
            for item in batch:
                try:
                    item.rows = self.model.prepare(item.rows)
                    good.append(item)
                except InvalidInput as exc:
                    item.error = exc
                    item.done.set()
            if not good:
                return
            batch = good
            inputs = _stack([i.rows for i in batch]) if len(batch) > 1 else batch[0].rows
        except BaseException as exc:
            self._fail(batch, exc)
            return
        try:
            outputs = self.model.predict_prepared(inputs)
        except BaseException as exc:  # every waiting request gets the model's error
            self._fail(batch, exc)
            return
        proba = self._proba(inputs)
        rows = sum(i.count for i in batch)
        start = 0
        for item in batch:
            end = start + item.count
            item.result = (outputs[start:end], None if proba is None else proba[start:end], rows)
            start = end
            item.done.set()

    @staticmethod
    def _fail(batch: list[_Item], error: BaseException) -> None:
        for item in batch:
            item.error = error
            item.done.set()
