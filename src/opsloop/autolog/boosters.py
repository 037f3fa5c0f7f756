"""What the booster autologgers (``opsloop.xgboost``, ``opsloop.lightgbm``) share.

Both libraries train through a module-level ``train(params, train_set, num_boost_round, ...,
callbacks=...)`` that their scikit-learn wrappers call too. So each autologger is the same
machine with three library-specific parts: the callback that records each iteration, where it
goes in the user's callback list, and what is logged once training returns. This module is the
machine: the ``train`` wrapper (bind the call, add the callback inside a run, name the run after
the estimator that called ``train``), and the ``autolog(log_models, disable)`` switch.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING
from typing import Any

from opsloop.autolog.guard import busy
from opsloop.autolog.guard import enclosing_estimators
from opsloop.autolog.guard import reset_warnings
from opsloop.autolog.patch import Patches
from opsloop.autolog.runs import logged_call

if TYPE_CHECKING:
    from opsloop.fluent import ActiveRun

__all__ = ["BoosterAutolog"]

# (the run, the user's callbacks) -> the list to train with, or None to train without ours
WithCallback = Callable[["ActiveRun", list[Any]], "list[Any] | None"]
# (the run, the bound arguments of train, the booster it returned, log_models)
LogTraining = Callable[["ActiveRun", dict[str, Any], Any, bool], None]


class BoosterAutolog:
    """One library's autologger.

    Args:
        library: The run's name when nothing else names it ("xgboost").
        modules: Every module holding its own ``train`` reference, the defining one first.
        with_callback: Puts the iteration recorder into the user's callbacks.
        log_training: Logs params, the best iteration and (if asked) the booster.
    """

    def __init__(
        self,
        library: str,
        modules: tuple[str, ...],
        with_callback: WithCallback,
        log_training: LogTraining,
    ) -> None:
        self.library, self.modules = library, modules
        self.with_callback, self.log_training = with_callback, log_training
        self.log_models = True
        self._patches = Patches()

    def autolog(self, *, log_models: bool = True, disable: bool = False) -> None:
        """Patch the library's ``train`` to log params, per-iteration metrics and the booster
        (each booster module's ``autolog``; its docstring says what is logged, and where).

        Args:
            log_models: Store the trained booster (the module's ``MODEL_ARTIFACT``).
            disable: Undo the patching.
        """
        self.log_models = log_models
        if disable:
            self._patches.undo()
            return
        reset_warnings()
        modules = [importlib.import_module(m) for m in self.modules]
        self._patches.patch_all(modules, "train", self._wrap_train)

    def _wrap_train(self, original: Any) -> Any:
        signature = inspect.signature(original)

        @functools.wraps(original)
        def train(*args: Any, **kwargs: Any) -> Any:
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError:  # the user's own mistake: let the library say so, as it would
                return original(*args, **kwargs)
            arguments = dict(bound.arguments)

            def fit(run: ActiveRun | None) -> Any:
                callbacks = None if run is None else self.with_callback(
                    run, list(arguments.get("callbacks") or ())
                )  # fmt: skip
                if callbacks is None:
                    return original(*args, **kwargs)
                bound.arguments["callbacks"] = callbacks
                return original(*bound.args, **bound.kwargs)

            # Called by its own scikit-learn wrapper (``fit`` of one estimator up the stack),
            # the run is named after it; a second estimator further up (a search, a pipeline)
            # owns the run.
            outer = [] if busy() else enclosing_estimators()
            return logged_call(
                type(outer[0]).__name__ if outer else self.library,
                fit,
                lambda run, booster: self.log_training(run, arguments, booster, self.log_models),
                inner=len(outer) > 1,
            )

        return train
