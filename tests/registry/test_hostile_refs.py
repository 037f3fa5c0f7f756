"""Version references are ASCII digits, an alias or ``latest``: a Unicode digit
(superscript two, Arabic-Indic one) or a number beyond 64 bits is a 400 that says so, never a
500 and never silently another version; through the REST API, the HTTP client and the local
client alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from opsloop import Client
from opsloop import InvalidInput
from tests.conftest import LiveServer

HOSTILE = ["\u00b2", "\u0661", "\u0663", "9" * 30]  # ², Arabic-Indic 1 and 3, > 64 bits


def test_hostile_version_selectors_are_400_and_change_nothing(
    tmp_path: Path, database_url: str, strong_model: Any, cancer: pd.DataFrame
) -> None:
    with LiveServer(database_url, str(tmp_path / "blobs")) as server:
        remote = Client(server_url=server.url)
        remote.models.register("clf", strong_model, input_example=cancer.head())
        api = httpx.Client(base_url=server.url + "/api")
        for selector in HOSTILE:
            for path in (
                f"/models/clf/versions/{selector}",
                f"/models/clf/versions/{selector}/card",
            ):
                response = api.get(path)
                assert response.status_code == 400, (path, response.text)
                assert response.json()["error"]["code"] == "INVALID_INPUT"
            response = api.put("/models/clf/aliases/champion", json={"version": 2**70})
            assert response.status_code == 400 and "version" in response.text
        local = Client(database_url=database_url, blob_url=str(tmp_path / "blobs"))
        for client in (remote, local):
            for selector in HOSTILE:
                with pytest.raises(InvalidInput, match="version"):
                    client.models.version(f"clf@{selector}")
            assert client.models.version("clf@1").number == 1
        assert api.get("/models/clf").json()["aliases"] == {}
        local.close()
        remote.close()
