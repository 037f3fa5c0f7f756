"""Readable run names (``brave-otter-42``), so people can talk about runs without ids."""

from __future__ import annotations

import random

__all__ = ["random_run_name"]

_ADJECTIVES = (
    "able amber bold brave bright calm clever cosmic crisp daring eager fair fast fierce gentle "
    "glad golden grand happy honest keen kind lively lucky merry mighty neat nimble noble polite "
    "proud quick quiet rapid rare sharp shiny silent sleek smart snappy solid spry steady stellar "
    "sunny swift tidy vivid warm wise witty zesty"
).split()
_NOUNS = (
    "badger bear beaver bison cat cheetah cobra crane crow deer dolphin eagle falcon ferret finch "
    "fox frog gecko goose hawk heron horse ibis jaguar koala lark lemur lion lynx mole moose newt "
    "otter owl panda parrot pike puma quail raven robin salmon seal shark sloth snail sparrow "
    "swan tiger trout turtle viper walrus whale wolf wren yak zebra"
).split()


def random_run_name() -> str:
    """Adjective, animal and a number: about 300,000 combinations."""
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}-{random.randint(0, 99)}"
