"""Inside a reproduction, versioning and tagging data and models are held: the caller gets what
the write would have returned (a would-be version readable by its number and as the latest, a
version as the tag would have left it), the store is left as it was, and the rehearsal
records each write as "would ..."."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from opsloop import Client
from opsloop.kernel.step_context import Rehearsal
from opsloop.kernel.step_context import rehearsing


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Client]:
    client = Client(
        database_url=f"sqlite:///{tmp_path / 'opsloop.db'}", blob_url=str(tmp_path / "blobs")
    )
    yield client
    client.close()


def test_held_data_versions_read_back_and_tags_touch_nothing(
    local: Client, iris_csv: Path, tmp_path: Path
) -> None:
    first = local.data.add(iris_csv, "held-iris").version
    changed = tmp_path / "changed.csv"
    changed.write_text(iris_csv.read_text() + "5.0,3.0,1.5,0.2,0\n")
    rehearsal = Rehearsal("reproduced-run")

    with rehearsing(rehearsal):
        held = local.data.add(changed, "held-iris").version
        assert held.ref == "held-iris@2"
        assert local.data.version("held-iris").ref == "held-iris@2"  # the latest, held
        tagged = local.data.set_tag("held-iris@2", "stage", "gold")
        assert tagged.ref == "held-iris@2" and tagged.tags == {"stage": "gold"}

    assert [v.ref for v in local.data.versions("held-iris").items] == [first.ref]
    assert local.data.version("held-iris").tags == {}
    assert [(h["write"], h["what"]) for h in rehearsal.held[""]] == [
        ("data.add", "would version held-iris@2"),
        ("data.set_tag", "would tag held-iris@2 stage=gold"),
    ]


def test_held_model_tags_answer_as_tagged_and_store_nothing(local: Client) -> None:
    x, y = load_iris(return_X_y=True, as_frame=True)
    version = local.models.register("held-clf", LogisticRegression(max_iter=500).fit(x, y))
    rehearsal = Rehearsal("reproduced-run")

    with rehearsing(rehearsal):
        tagged = local.models.set_version_tag(version.ref, "team", "risk")
        model = local.models.set_tag("held-clf", "owner", "ana")

    assert tagged.ref == version.ref and tagged.tags["team"] == "risk"
    assert model.tags["owner"] == "ana"
    assert "team" not in local.models.version(version.ref).tags
    assert "owner" not in local.models.get("held-clf").tags
    assert [(h["write"], h["what"]) for h in rehearsal.held[""]] == [
        ("versions.set_version_tag", f"would tag {version.ref} team=risk"),
        ("models.set_tag", "would tag model 'held-clf' owner=ana"),
    ]
