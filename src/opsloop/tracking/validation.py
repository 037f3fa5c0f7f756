"""Checks for names, keys, values and artifact paths, shared by every way in.

Validation happens once, in the service layer, before anything is written, so a rejected
request leaves the store exactly as it was. The SDK calls the cheap checks too, so that a bad
metric fails at the ``log_metric`` call rather than later in a background flush.
"""

from __future__ import annotations

import math
import re
from typing import Any

from opsloop.errors import InvalidInput
from opsloop.kernel.paths import MAX_PATH_LENGTH
from opsloop.kernel.paths import check_relative_path

__all__ = [
    "MAX_KEY_LENGTH",
    "MAX_PARAM_VALUE_LENGTH",
    "MAX_TAG_VALUE_LENGTH",
    "check_artifact_path",
    "check_key",
    "check_metric_value",
    "check_name",
    "check_run_id",
    "check_run_id_or_prefix",
    "clean_tag",
    "clean_tags",
    "lifecycle_stages",
    "param_value_to_str",
    "tag_value_to_str",
]

MAX_KEY_LENGTH = 250
MAX_NAME_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
MAX_ARTIFACT_PATH_LENGTH = MAX_PATH_LENGTH

_KEY_CHARS = re.compile(r"^[\w\-. /:]+$")
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_RUN_ID_OR_PREFIX = re.compile(r"^[0-9a-f]{1,32}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_VIEWS = {"active": ("active",), "deleted": ("deleted",), "all": ("active", "deleted")}


_GOOD_KEYS: set[str] = set()  # keys that passed: a loop or a pipeline logs the same few again
_GOOD_KEYS_KEPT = 1 << 16


def check_key(key: Any, kind: str = "key") -> str:
    """A metric, param or tag key: letters, digits, ``_-. /:``; no ``..`` or empty segments."""
    if key.__class__ is str and key in _GOOD_KEYS:
        return key
    if not isinstance(key, str) or not key:
        raise InvalidInput(f"{kind} must be a non-empty string, got {key!r}")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(
            f"{kind} {key[:40]!r}... is {len(key)} characters; at most {MAX_KEY_LENGTH}"
        )
    if not _KEY_CHARS.match(key):
        raise InvalidInput(f"{kind} {key!r} has characters outside letters, digits and '_-. /:'")
    if key.startswith("/") or any(seg in ("", ".", "..") for seg in key.split("/")):
        raise InvalidInput(f"{kind} {key!r} has an empty, '.' or '..' path segment")
    if len(_GOOD_KEYS) < _GOOD_KEYS_KEPT:
        _GOOD_KEYS.add(key)
    return key


def check_name(name: Any, kind: str) -> str:
    """A human-given name (experiment, run): non-empty, one line, at most 250 characters."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"{kind} name must be a non-empty string, got {name!r}")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(f"{kind} name is {len(name)} characters; at most {MAX_NAME_LENGTH}")
    if _CONTROL.search(name):
        raise InvalidInput(f"{kind} name {name!r} contains control characters")
    return name


def check_run_id(run_id: Any) -> str:
    """A run id: 32 lowercase hex characters (a UUID4 without dashes)."""
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
        raise InvalidInput(f"not a run id (32 lowercase hex characters): {run_id!r}")
    return run_id


def check_metric_value(key: str, value: Any) -> float:
    """A finite number; NaN and infinities are refused so charts and searches stay meaningful."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise InvalidInput(f"metric {key!r}: value {value!r} is not a number") from None
    value = float(value)
    if not math.isfinite(value):
        raise InvalidInput(f"metric {key!r}: value {value} is not finite (NaN and inf are refused)")
    return value


def param_value_to_str(key: str, value: Any) -> str:
    """Params are stored as strings, as given by ``str()``; at most 6000 characters."""
    return _bounded_text("param", key, value, MAX_PARAM_VALUE_LENGTH)


def tag_value_to_str(key: str, value: Any) -> str:
    return _bounded_text("tag", key, value, MAX_TAG_VALUE_LENGTH)


def clean_tag(key: Any, value: Any) -> tuple[str, str]:
    """A tag as it is stored: the key checked, the value a string within the limit."""
    return check_key(key, "tag key"), tag_value_to_str(key, value)


def clean_tags(tags: dict[str, Any] | None) -> dict[str, str]:
    """Tags as they are stored (see :func:`clean_tag`)."""
    return dict(clean_tag(k, v) for k, v in (tags or {}).items())


def lifecycle_stages(view: str) -> tuple[str, ...]:
    """The lifecycle stages a listing's ``view`` (``active``, ``deleted`` or ``all``) shows."""
    try:
        return _VIEWS[view]
    except KeyError:
        raise InvalidInput(f"view must be one of {sorted(_VIEWS)}, got {view!r}") from None


def _bounded_text(kind: str, key: str, value: Any, limit: int) -> str:
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        raise InvalidInput(f"{kind} {key!r}: value is {len(text)} characters; at most {limit}")
    return text


def check_artifact_path(path: Any) -> str:
    """A relative POSIX path inside the run, in its normal form (``./a//b`` → ``a/b``), the
    one stored and looked up; the rule every manifest shares (:mod:`opsloop.kernel.paths`)."""
    return check_relative_path(path, "artifact path", max_length=MAX_ARTIFACT_PATH_LENGTH)


def check_run_id_or_prefix(run_id: Any) -> str:
    """A run id or a prefix of one (lowercase hex, at most 32 characters).

    The minimum prefix length is checked when the prefix is resolved
    (:func:`opsloop.store.ids.resolve_id`), which says so in its message.
    """
    if not isinstance(run_id, str) or not _RUN_ID_OR_PREFIX.match(run_id):
        raise InvalidInput(
            f"not a run id (32 lowercase hex characters, or a unique prefix of at least 6): "
            f"{run_id!r}"
        )
    return run_id
