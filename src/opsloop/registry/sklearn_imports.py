"""Importing scikit-learn and skops for the ``sklearn`` flavor without their import-time walks.

skops lists scikit-learn's estimators on import by walking every scikit-learn package, which
imports torch among others (:func:`skops_io` walks only what the list comes from), then finds
the module of each of SciPy's ufuncs by asking every loaded module for it (:func:`skops_io`
reads plain modules' namespaces instead), and SciPy 1.17 renders an array-API table into ~470
docstrings as scikit-learn imports it (:func:`scipy_docs_as_written` keeps them as written).
They cost a ``serve`` start, a first model load or a ``log_model`` seconds, and none changes
what skops trusts or what any function does.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

__all__ = ["scipy_docs_as_written", "skops_io"]


def skops_io() -> Any:
    """``skops.io``, imported without its walk over every scikit-learn package.

    On import skops lists scikit-learn's estimators (its default trusted types) through
    ``sklearn.utils.all_estimators``, which walks ``pkgutil.walk_packages`` over all of
    scikit-learn. The walk imports every *package* on the way in order to look inside it, even
    the ones whose modules it then ignores: ``sklearn.externals.array_api_compat.torch`` imports
    torch (1.2-3.5 s, ~800 modules), and the function imports pytest for a warnings filter. The
    list it returns comes only from the modules it keeps, and a package it ignores holds only
    modules it ignores, so :func:`_public_estimators` does not descend into them and returns the
    same list (a test compares the two). It stands in for ``all_estimators`` only while skops
    is imported; skops's trusted types are unchanged.

    Then skops names the module of each of SciPy's ~230 ufuncs (which have no ``__module__``):
    the first module in ``sys.modules`` whose attribute of that name is the ufunc. Its
    ``whichmodule`` asks each module with ``getattr``, and each module that lacks the name
    raises (and has swallowed) two AttributeErrors with formatted messages: ~150,000 of them in
    a training script, half of its ``log_model`` call. While skops is imported,
    :func:`_first_module_holding` gives the same answers reading plain modules' ``__dict__``
    (a test compares the two).

    The module is handed out only once its import has finished: ``sys.modules`` holds it from
    the moment its import starts, so a second thread that took it from there could call a
    function not defined yet.
    """
    global _skops
    if _skops is not None:
        return _skops
    with _SKOPS_IMPORT:
        if _skops is None:
            with scipy_docs_as_written():  # scikit-learn imports scipy.stats
                import sklearn.utils

            original = sklearn.utils.all_estimators
            sklearn.utils.all_estimators = _listing_for_skops
            try:  # waits for an import another thread of the user's has under way
                _skops = importlib.import_module("skops.io")
            finally:
                sklearn.utils.all_estimators = original
                _restore_whichmodule()
    return _skops


def _listing_for_skops(type_filter: Any = None) -> list[tuple[str, type]]:
    """What skops's ``_trusted_types`` gets for ``all_estimators()``: the same list, from
    :func:`_public_estimators`. skops asks for it before any name it computes, once its
    ``_utils`` module is imported, so here its ``whichmodule`` is also swapped for
    :func:`_first_module_holding` until the import ends (``_restore_whichmodule``)."""
    utils = sys.modules.get("skops.io._utils")
    original = getattr(utils, "whichmodule", None)
    if original is not None and original is not _first_module_holding:
        _SKOPS_WHICHMODULE[:] = [original]  # kept: the stand-in asks it for unusual names
        utils.whichmodule = _first_module_holding  # type: ignore[union-attr]
    return _public_estimators(type_filter)


def _restore_whichmodule() -> None:
    utils = sys.modules.get("skops.io._utils")
    if utils is not None and _SKOPS_WHICHMODULE:
        utils.whichmodule = _SKOPS_WHICHMODULE[0]


_SKOPS_WHICHMODULE: list[Any] = []  # skops's own whichmodule, once _listing_for_skops ran
_MODULE_ATTRIBUTES = frozenset(dir(ModuleType))  # names a module's type answers itself


def _first_module_holding(obj: Any, name: str) -> str:
    """skops's ``whichmodule(obj, name)``, the same answer with fewer exceptions: ``obj``'s
    ``__module__``, else the first module in ``sys.modules`` (in import order, leaving out
    ``__main__``) whose attribute ``name`` is ``obj``, else ``"__main__"``.

    A plain module (of type ``ModuleType``, without a module-level ``__getattr__``) answers
    ``getattr`` for an ordinary name from its ``__dict__`` alone, so that is read; any other
    module (a subclass, a ``__getattr__`` that may warn, compute or import), and any dotted
    name or name ``ModuleType`` itself defines, is asked as skops asks it.
    """
    declared = getattr(obj, "__module__", None)
    if declared is not None:
        return declared  # type: ignore[no-any-return]
    if "." in name or name in _MODULE_ATTRIBUTES:
        return str(_SKOPS_WHICHMODULE[0](obj, name))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # as skops: numpy.core's warnings
        for module_name, module in sys.modules.copy().items():
            if module_name in ("__main__", "__mp_main__") or module is None:
                continue
            if type(module) is ModuleType:
                namespace = module.__dict__
                if "__getattr__" not in namespace:
                    if namespace.get(name) is obj:
                        return str(module_name)
                    continue
            try:
                found = getattr(module, name, None)
            except (AttributeError, ImportError):
                continue
            if found is obj:
                return str(module_name)
    return "__main__"


_SKOPS_IMPORT = threading.Lock()
_skops: Any = None  # skops.io, once imported whole


@contextmanager
def scipy_docs_as_written() -> Iterator[None]:
    """SciPy's modules imported meanwhile keep their functions' docstrings as written, without
    the array-API support table SciPy 1.17 renders into each at import.

    SciPy's ``xp_capabilities`` decorator parses the docstring of every function it marks
    (``_docscrape.FunctionDoc``, ~470 of them in ``scipy.special`` and ``scipy.stats``), appends
    the table to its Notes and writes it back: 1.5 of the 10.5 billion instructions ``opsloop
    serve`` ran to its first prediction, and the same share of every first scikit-learn model
    load or save (scikit-learn imports ``scipy.stats``). Here the parse is stood in for by the
    docstring as it is; the decorator's other effect (its capabilities table, read by SciPy's
    own tests) is unchanged, and so is every function. Nothing is changed where SciPy has no
    such decorator, or where ``scipy.stats`` was imported before.
    """
    try:
        from scipy._lib import _array_api
    except ImportError:  # no SciPy, or one without the array-API layer
        yield
        return
    parse = getattr(_array_api, "FunctionDoc", None)
    if parse is None or "scipy.stats" in sys.modules:
        yield
        return
    with _SCIPY_DOCS:
        _array_api.FunctionDoc = _DocAsWritten
        try:
            yield
        finally:
            _array_api.FunctionDoc = parse


_SCIPY_DOCS = threading.RLock()


class _DocAsWritten:
    """What ``xp_capabilities`` takes for a parsed docstring: the Notes it appends to are
    dropped, and the text it writes back is the docstring as it was (after the first line,
    where the parsed one renders the signature)."""

    def __init__(self, function: Any) -> None:
        self._doc = function.__doc__ or ""

    def __getitem__(self, section: str) -> list[str]:
        return []

    def __str__(self) -> str:
        return "\n" + self._doc


def _public_estimators(type_filter: Any = None) -> list[tuple[str, type]]:
    """``sklearn.utils.all_estimators()``'s list, walking only the packages whose modules it
    keeps (see :func:`skops_io`)."""
    if type_filter is not None:  # skops never filters; anything else gets the original
        from sklearn.utils.discovery import all_estimators

        return all_estimators(type_filter)  # type: ignore[no-any-return]
    import sklearn
    from sklearn.base import BaseEstimator
    from sklearn.utils.discovery import _MODULE_TO_IGNORE

    found: set[tuple[str, type]] = set()

    def walk(path: list[str], prefix: str) -> None:
        for info in pkgutil.iter_modules(path, prefix):
            parts = info.name.split(".")
            if any(part in _MODULE_TO_IGNORE for part in parts) or "._" in info.name:
                continue  # ignored, and so is everything under it
            module = importlib.import_module(info.name)
            found.update(
                (name, cls)
                for name, cls in inspect.getmembers(module, inspect.isclass)
                if not name.startswith("_")
            )
            if info.ispkg:
                walk(list(module.__path__), info.name + ".")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # as all_estimators does
        walk(list(sklearn.__path__), "sklearn.")
    estimators = {
        (name, cls)
        for name, cls in found
        if issubclass(cls, BaseEstimator)
        and name != "BaseEstimator"
        and not getattr(cls, "__abstractmethods__", None)
    }
    return sorted(estimators, key=lambda item: item[0])
