"""The patch book: which attributes autologging replaced, so ``autolog(disable=True)`` puts
every original back, and calling ``autolog()`` twice never wraps a wrapper."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["Patches"]


class Patches:
    def __init__(self) -> None:
        self._originals: dict[tuple[int, str], tuple[Any, Any]] = {}

    def patch(self, owner: Any, name: str, make: Callable[[Any], Any]) -> None:
        """Replace ``owner.name`` (a class or a module attribute) by ``make(original)``; a
        second call for the same attribute does nothing."""
        key = (id(owner), name)
        if key in self._originals:
            return
        original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
        self._originals[key] = (owner, original)
        wrapper = make(original)
        wrapper._opsloop_original = original
        setattr(owner, name, wrapper)

    def patch_all(self, modules: list[Any], name: str, make: Callable[[Any], Any]) -> None:
        """Patch ``modules[0].name``, then every other module that imported the same function
        by name (``from .training import train``) gets the same wrapper: a module-level name is
        a reference of its own, and the library's own wrappers call through theirs."""
        first = modules[0]
        self.patch(first, name, make)
        wrapper = getattr(first, name)
        for module in modules[1:]:
            if getattr(module, name, None) is getattr(wrapper, "_opsloop_original", wrapper):
                self.patch(module, name, lambda _original: wrapper)

    def undo(self) -> None:
        for (_, name), (owner, original) in self._originals.items():
            setattr(owner, name, original)
        self._originals.clear()

    def __contains__(self, owner_and_name: tuple[Any, str]) -> bool:
        owner, name = owner_and_name
        return (id(owner), name) in self._originals
