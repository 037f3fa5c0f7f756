"""How a route with a rollout draws its target: the pair (baseline, candidate) shares the
traffic by the live share, whatever their static weights.

The pair together keeps the weight its two targets have in the config, against any other
target of the route; inside the pair the candidate is drawn with probability ``share`` / 100.
The controller (:mod:`.rollout`) replaces a route's :class:`Split` when the share in the store
changes; the request path only reads it (one attribute read, one random number).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Split"]


class _Named(Protocol):
    name: str
    weight: float


@dataclass(frozen=True)
class Split:
    """The candidate's ``share`` (0..100) of the traffic between ``baseline`` and ``candidate``."""

    baseline: str
    candidate: str
    share: float

    def pick(self, live: list[_Named], rng: random.Random | None = None) -> _Named:
        """A target of ``live`` (those not failed yet for this request; never empty). At share
        0 the candidate is drawn only when nothing else is left, and the baseline at 100."""
        draw = (rng or random).random
        pair = [t for t in live if t.name in (self.baseline, self.candidate)]
        others = [t for t in live if t.name not in (self.baseline, self.candidate)]
        if others:
            weights = [sum(t.weight for t in pair), *(t.weight for t in others)]
            point = draw() * sum(weights)
            if point >= weights[0]:
                point -= weights[0]
                for target, weight in zip(others, weights[1:], strict=True):
                    if point < weight:
                        return target
                    point -= weight
                return others[-1]
        if len(pair) == 1:
            shut = self.share <= 0 if pair[0].name == self.candidate else self.share >= 100
            return others[0] if shut and others else pair[0]
        baseline, candidate = sorted(pair, key=lambda t: t.name != self.baseline)
        return candidate if draw() * 100 < self.share else baseline
