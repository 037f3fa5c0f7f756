"""A stored prompt template is someone else's code: its time and memory are bounded, and each
breach is a 400-style ``InvalidInput`` that names the bound, never a hang or a crash."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from opsloop.errors import InvalidInput
from opsloop.llm.prompts.template import render

HOSTILE = {
    "nested loops": (
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
        "loops more than 100,000 times",
    ),
    "string repeat": ("{{ 'x' * 10**10 }}", "over the limit"),
    "list repeat": ("{{ ([1] * 10**9) | length }}", "over the limit"),
    "huge power": ("{{ 2 ** 100000000 }}", "over 4096 bits"),
    "recursion": ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "recurses"),
    "doubling recursion": (
        "{% macro d(s, n) %}{% if n %}{{ d(s ~ s, n - 1) }}{% else %}{{ s | length }}"
        "{% endif %}{% endmacro %}{{ d('x', 60) }}",
        "over the output limit",
    ),
    "doubling namespace": (
        "{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}"
        "{% endfor %}{{ ns.s | length }}",
        "over the output limit",
    ),
    "center filter": ("{{ 'x' | center(10**9) }}", "center filter"),
    "center by keyword": ("{{ 'x' | center(width=10**9) }}", "center filter"),
    "indent filter": ("{{ 'a\nb' | indent(10**9) }}", "indent filter"),
    "printf width": ("{{ '%999999999d' | format(1) }}", "format width"),
    "printf star": ("{{ '%*d' | format(999999999, 1) }}", "'*' widths"),
    "str.format width": ("{{ '{:>999999999}'.format(1) }}", "format width"),
    "str method width": ("{{ 'x'.ljust(10**9) }}", "width or count"),
    "long output": ("{% for i in range(90000) %}{{ 'x' * 20 }}{% endfor %}", "1,000,000"),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_templates_are_refused_quickly_and_in_bounded_memory(name: str) -> None:
    template, message = HOSTILE[name]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(InvalidInput, match=message):
        render(template, {})
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 200, f"{name} grew the process by {grown_mb:.0f} MB"


def test_ordinary_templates_render_as_before() -> None:
    template = (
        "Hello {{ name }}! {% for i in range(3) %}{{ i }}{% endfor %} "
        "{{ '%5.2f' | format(3.14159) }} {{ '{:>4}'.format('a') }} {{ 'ab' * 2 }} "
        "{{ 'x' | center(5) }}|{% set ns = namespace(n=0) %}{% for i in range(4) %}"
        "{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }} {{ 2 ** 10 }}"
    )
    assert render(template, {"name": "Ann"}) == "Hello Ann! 012  3.14    a abab   x  |6 1024"
    # The loop budget is per render, not per process: rendering twice is fine.
    loop = "{% for i in range(60000) %}{% endfor %}ok"
    assert render(loop, {}) == render(loop, {}) == "ok"


def test_the_cli_says_which_bound_a_stored_template_hit(tmp_path: Path) -> None:
    opsloop = str(Path(sys.executable).with_name("opsloop"))
    env = {"OPSLOOP_HOME": str(tmp_path), "PATH": str(Path(sys.executable).parent)}
    saved = subprocess.run(
        [opsloop, "prompts", "create", "bomb", "--text", "{{ 'x' * 10 ** (n | int) }}"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert saved.returncode == 0, saved.stderr
    done = subprocess.run(
        [opsloop, "prompts", "render", "bomb@1", "--var", "n=10"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert "over the limit" in done.stderr and "Traceback" not in done.stderr
