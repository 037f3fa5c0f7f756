"""A gateway config with a mistake stops with one line naming the field's path and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsloop.errors import InvalidInput
from opsloop.llm.gateway.config import load_config
from opsloop.llm.gateway.config import parse_config


def _route(**target: object) -> dict[str, object]:
    return {
        "routes": [{"name": "r", "targets": [{"name": "t", "base_url": "http://h/v1", **target}]}]
    }


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (_route(weight=0), "routes.0.targets.0.weight: Input should be greater than 0"),
        (_route(kind="grpc"), "routes.0.targets.0.kind"),
        (_route(base_url="h:8000"), "needs base_url, an http(s) URL"),
        (_route(timeout_s=-1), "routes.0.targets.0.timeout_s"),
        (_route(api_key_env="OPSLOOP_TEST_UNSET_KEY"), "OPSLOOP_TEST_UNSET_KEY is not set"),
        ({"routes": [{"name": "r", "targets": []}]}, "routes.0.targets"),
        ({"routes": [{"name": "r", "targets": [{"name": "t", "kind": "local"}]}]}, "NAME@VERSION"),
        ({**_route(), "auth": "maybe"}, "auth: Input should be 'keys' or 'open'"),
        ({"routes": [*_route()["routes"], *_route()["routes"]]}, "route names must be unique: r"),
        ({"routes": [{**_route()["routes"][0], "fallbacks": ["nope"]}]}, "unknown route(s) nope"),
        ({"routes": [{**_route()["routes"][0], "fallbacks": ["r"]}]}, "cannot fall back to itself"),
        ({"route": []}, "route: Extra inputs are not permitted"),
        ([1], "expected a mapping"),
    ],
)
def test_mistakes_name_their_field(data: object, says: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_config(data)
    assert says in caught.value.message and "\n" not in caught.value.message


def test_a_file_is_read_and_its_defaults_filled(tmp_path: Path) -> None:
    path = tmp_path / "g.yaml"
    path.write_text(
        "routes:\n  - name: gpt-4o\n    targets: [{name: a, base_url: 'http://h/v1'}]\n"
    )
    config = load_config(path)
    route = config.route("gpt-4o")
    assert route is not None and route.targets[0].timeout_s == 60 and config.auth == "keys"
    assert config.limits.on_store_down == "closed"
    path.write_text("routes: [")
    with pytest.raises(InvalidInput, match="not valid YAML"):
        load_config(path)
    with pytest.raises(InvalidInput, match="cannot read gateway config"):
        load_config(tmp_path / "missing.yaml")
