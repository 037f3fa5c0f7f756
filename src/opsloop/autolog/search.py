"""What a scikit-learn hyper-parameter search and ``cross_validate`` log.

A search (``GridSearchCV``, ``RandomizedSearchCV``, any ``BaseSearchCV``) is one parent run:
its own params, the winner's as ``best_<name>`` params, ``best_cv_score``, and one child run per
candidate with the candidate's params and its ``mean_/std_/rank_test_*`` scores from
``cv_results_``. Children are capped by ``max_tuning_runs`` (best-ranked first; ``None`` logs
every candidate), as MLflow does, because a randomized search of 500 candidates should not
write 500 runs unless asked to. The folds' fits are not runs at all: see ``opsloop.sklearn``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

from opsloop.autolog.guard import attempt
from opsloop.autolog.runs import child_run
from opsloop.autolog.runs import clean_params
from opsloop.autolog.runs import finite_metrics

if TYPE_CHECKING:
    from opsloop.fluent import ActiveRun

__all__ = ["cv_summary", "log_search", "ranked_candidates"]

_SCORE_PREFIXES = ("mean_test_", "std_test_", "rank_test_", "mean_train_", "std_train_")


def _rank_key(search: Any) -> str | None:
    """The ``rank_test_*`` column that orders candidates: the refit metric when there are
    several, else the only one."""
    results = search.cv_results_
    refit = getattr(search, "refit", True)
    if isinstance(refit, str) and f"rank_test_{refit}" in results:
        return f"rank_test_{refit}"
    if "rank_test_score" in results:
        return "rank_test_score"
    ranks = sorted(k for k in results if k.startswith("rank_test_"))
    return ranks[0] if ranks else None


def ranked_candidates(search: Any, limit: int | None) -> list[int]:
    """Indices into ``cv_results_``, best rank first (ties by index), at most ``limit``."""
    results = search.cv_results_
    count = len(results["params"])
    key = _rank_key(search)
    order = sorted(range(count), key=lambda i: (int(results[key][i]) if key else 0, i))
    return order if limit is None else order[: max(limit, 0)]


def log_search(run: ActiveRun, search: Any, max_tuning_runs: int | None) -> None:
    """The parent's best params and score, then a child run per ranked candidate."""
    client = run.client
    best = getattr(search, "best_params_", None)
    if best is not None:
        with attempt("log the best params"):
            client.log_params(run.run_id, clean_params({f"best_{k}": v for k, v in best.items()}))
    score = getattr(search, "best_score_", None)
    if score is not None:
        with attempt("log the best score"):
            client.log_metrics(run.run_id, finite_metrics({"best_cv_score": score}))
    results = search.cv_results_
    chosen = ranked_candidates(search, max_tuning_runs)
    parent_name = run.run.info.run_name or type(search).__name__
    for index in chosen:
        metrics = {
            k: results[k][index]
            for k in results
            if k.startswith(_SCORE_PREFIXES) or k in ("mean_fit_time", "mean_score_time")
        }
        with attempt("log a tuning child run"):
            child_run(
                run,
                f"{parent_name}-candidate-{index}",
                params=results["params"][index],
                metrics=metrics,
                tags={"opsloop.autolog.candidate": index},
            )
    with attempt("tag the tuning runs"):
        client.set_tags(
            run.run_id,
            {
                "opsloop.autolog.candidates": len(results["params"]),
                "opsloop.autolog.tuning_runs_logged": len(chosen),
            },
        )


def cv_summary(result: dict[str, Any]) -> dict[str, float]:
    """``cross_validate``'s per-fold arrays as ``mean_*`` / ``std_*`` metrics."""
    import numpy as np

    out: dict[str, Any] = {}
    for key, values in result.items():
        if key.startswith(("test_", "train_")) or key in ("fit_time", "score_time"):
            array = np.asarray(values, dtype=float)
            out[f"mean_{key}"] = array.mean()
            out[f"std_{key}"] = array.std()
    return finite_metrics(out)
