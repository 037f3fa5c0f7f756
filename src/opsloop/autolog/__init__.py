"""What every autologging integration shares (``opsloop.sklearn``, ``opsloop.xgboost``,
``opsloop.lightgbm``): the guard that keeps a logging failure out of the user's code, the
per-thread "a fit is already being logged" state, the run around a fit, and the patch book.

Two promises hold for every integration:

* **Autologging never changes what the user's code does.** A failure while logging (the store
  is unreachable, a model cannot be serialised, a value is refused) is caught and reported once
  per kind with ``warnings.warn``; the fit goes on and returns what it returned without
  autologging. Only an exception raised by the user's own fit propagates, and the run that
  autologging started for it is then marked FAILED.
* **One run per call the user made.** The outermost patched call owns the run; every patched
  call made inside it (a search's folds and refit, a pipeline's steps, ``xgboost.train`` inside
  ``XGBClassifier.fit`` inside a pipeline) runs unlogged.
"""
