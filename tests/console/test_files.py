"""A YAML file handed to a command: its mapping, or an ``InvalidInput`` naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsloop.console.files import read_yaml_mapping
from opsloop.errors import InvalidInput


def test_a_mapping_is_read(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text("window:\n  size: 100\n")
    assert read_yaml_mapping(path, "spec", "hold settings") == {"window": {"size": 100}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "no such spec file: {path}"),
        ("a: [1, 2", "{path} is not valid YAML: "),
        ("- 1\n- 2\n", "{path} must hold settings"),
    ],
)
def test_what_is_wrong_names_the_file(tmp_path: Path, text: str | None, message: str) -> None:
    path = tmp_path / "spec.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(InvalidInput) as caught:
        read_yaml_mapping(path, "spec", "hold settings")
    assert caught.value.message.startswith(message.format(path=path))
