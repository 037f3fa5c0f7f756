"""MLflow's ``experiments/search``: its filter and order_by over opsloop's experiments.

Experiments are few (hundreds, not millions), so the filter runs over them in Python, with the
same parser as run search (:mod:`.filters`): ``name`` (or ``attribute.name``) and
``tags.<key>``, compared with ``=``, ``!=``, ``like``, ``ilike``, ``in``, ``is [not] null``,
joined with ``and``/``or``/``not``. ``order_by`` takes ``name``, ``experiment_id``,
``creation_time`` and ``last_update_time``, each ``ASC`` or ``DESC``.
"""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from opsloop.errors import InvalidInput
from opsloop.kernel.paging import Page
from opsloop.kernel.paging import decode_page_token
from opsloop.kernel.paging import split_page
from opsloop.tracking.entities import Experiment
from opsloop.tracking.experiments import list_experiments
from opsloop.tracking.filters import And
from opsloop.tracking.filters import Comparison
from opsloop.tracking.filters import Node
from opsloop.tracking.filters import Not
from opsloop.tracking.filters import Or
from opsloop.tracking.filters import parse_filter

__all__ = ["search_experiments"]

_ORDER_FIELDS = {
    "name": lambda e: e.name,
    "experiment_id": lambda e: e.experiment_id,
    "creation_time": lambda e: e.created_at,
    "last_update_time": lambda e: e.updated_at,
}
_ALL = 1_000_000


def search_experiments(
    session: Session,
    *,
    view: str,
    filter: str | None,
    order_by: list[str] | None,
    max_results: int,
    page_token: str | None,
) -> Page[Experiment]:
    """One page of the experiments in ``view`` that match ``filter``, in ``order_by``'s order
    (default: newest first, as MLflow's server)."""
    if not 1 <= max_results <= 50_000:
        raise InvalidInput(f"max_results must be between 1 and 50000, got {max_results}")
    condition = parse_filter(filter)
    found = list_experiments(session, view=view, max_results=_ALL).items
    if condition is not None:
        found = [e for e in found if _matches(condition, e)]
    keys = [("creation_time", True), ("experiment_id", False)]
    for clause in reversed(_order_keys(order_by) or keys):
        found.sort(key=_ORDER_FIELDS[clause[0]], reverse=clause[1])
    offset = decode_page_token(page_token)
    items, token = split_page(found[offset : offset + max_results + 1], offset, max_results)
    return Page[Experiment](items=items, next_page_token=token)


def _order_keys(order_by: list[str] | None) -> list[tuple[str, bool]]:
    keys = []
    for clause in order_by or []:
        words = clause.split()
        field = words[0].removeprefix("attributes.").removeprefix("attribute.") if words else ""
        direction = words[1].lower() if len(words) == 2 else "asc"
        if field not in _ORDER_FIELDS or len(words) > 2 or direction not in ("asc", "desc"):
            raise InvalidInput(
                f"invalid order_by clause {clause!r}: use one of {', '.join(_ORDER_FIELDS)}, "
                "then ASC or DESC"
            )
        keys.append((field, direction == "desc"))
    return keys


def _matches(node: Node, experiment: Experiment) -> bool:
    if isinstance(node, And):
        return all(_matches(item, experiment) for item in node.items)
    if isinstance(node, Or):
        return any(_matches(item, experiment) for item in node.items)
    if isinstance(node, Not):
        return not _matches(node.item, experiment)
    return _compare(_value_of(node, experiment), node)


def _value_of(cmp: Comparison, experiment: Experiment) -> str | None:
    if cmp.entity == "tag":
        return experiment.tags.get(cmp.key)
    if cmp.entity == "attribute" and cmp.key in ("run_name", "name"):
        return experiment.name
    if cmp.entity == "attribute" and cmp.key in ("run_id", "experiment_id"):
        return experiment.experiment_id
    raise InvalidInput(
        f"experiments can be filtered by name and tags.<key>, not {cmp.entity} {cmp.key!r}"
    )


def _compare(actual: str | None, cmp: Comparison) -> bool:
    op, wanted = cmp.op, cmp.value
    if op == "is null":
        return actual is None
    if op == "is not null":
        return actual is not None
    if actual is None:
        return False
    if op in ("in", "not in"):
        values = {str(v) for v in wanted} if isinstance(wanted, tuple) else {str(wanted)}
        return (actual in values) == (op == "in")
    if op in ("like", "ilike"):
        flags = re.IGNORECASE if op == "ilike" else 0
        return re.fullmatch(_like_regex(str(wanted)), actual, flags | re.DOTALL) is not None
    if op == "=":
        return actual == str(wanted)
    if op in ("!=", "<>"):
        return actual != str(wanted)
    raise InvalidInput(f"experiments' names and tags compare with =, !=, like, in; not {op!r}")


def _like_regex(pattern: str) -> str:
    return "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
