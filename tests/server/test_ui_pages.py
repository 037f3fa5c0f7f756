"""The web UI's server side over plain HTTP: headers, error pages, login, raw artifacts."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from opsloop import Client
from tests.conftest import LiveServer

HTML = {"accept": "text/html"}


@pytest.fixture
def http(live_server: LiveServer) -> httpx.Client:
    return httpx.Client(base_url=live_server.url)


def test_pages_carry_a_strict_content_security_policy(http: httpx.Client) -> None:
    page = http.get("/experiments")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert http.get("/").headers["location"] == "/experiments"
    script = re.search(r'src="(/static/[0-9a-f]+/shell/app\.js)"', page.text)
    assert script is not None
    asset = http.get(script.group(1))
    assert asset.status_code == 200 and "immutable" in asset.headers["cache-control"]


def test_api_errors_stay_json_and_page_errors_are_html(http: httpx.Client) -> None:
    api = http.get(f"/api/runs/{'0' * 32}", headers=HTML)
    assert api.status_code == 404 and api.json()["error"]["code"] == "NOT_FOUND"
    page = http.get(f"/runs/{'0' * 32}")
    assert page.status_code == 404 and "<h1>404" in page.text
    assert http.get("/no/such/page", headers=HTML).status_code == 404
    assert http.get("/no/such/page").headers["content-type"] == "application/json"
    one_run = http.get(f"/compare?run={'0' * 32}")
    assert one_run.status_code == 400 and "at least two runs" in one_run.text
    bad_filter = http.get("/experiments/x", params={"filter": "metrics.a >"})
    assert bad_filter.status_code == 404  # the experiment is checked before the filter


def test_malformed_filter_is_a_400_page_with_the_parser_message(
    http: httpx.Client, live_server: LiveServer
) -> None:
    client = Client(server_url=live_server.url)
    exp = client.set_experiment("e").experiment_id
    page = http.get(f"/experiments/{exp}", params={"filter": "metrics.a >> 1"})
    assert page.status_code == 400
    assert 'id="filter-error"' in page.text and "^" in page.text
    client.close()


def test_login_only_redirects_to_local_paths(tmp_path: Path) -> None:
    with LiveServer(f"sqlite:///{tmp_path / 'a.db'}", str(tmp_path / "b"), token="t0k") as server:
        http = httpx.Client(base_url=server.url)
        redirect = http.get("/experiments")
        assert redirect.status_code == 303
        assert redirect.headers["location"] == "/login?next=/experiments"
        for target in ("//evil.example", "https://evil.example", "/\\evil.example"):
            form = http.get("/login").text  # sets the login form's CSRF cookie
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
            assert csrf is not None
            data = {"token": "t0k", "next": target, "csrf_token": csrf.group(1)}
            answer = http.post("/login", data=data)
            assert answer.status_code == 303 and answer.headers["location"] == "/"
        cookie = answer.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', http.get("/login").text)
        assert csrf is not None
        data = {"token": "nope", "next": "/", "csrf_token": csrf.group(1)}
        wrong = http.post("/login", data=data)
        assert wrong.status_code == 403 and "not valid" in wrong.text
        assert http.get("/healthz").status_code == 200  # stays open for probes


def test_raw_artifacts_serve_images_inline_and_sandbox_svg(
    http: httpx.Client, live_server: LiveServer
) -> None:
    client = Client(server_url=live_server.url)
    exp = client.set_experiment("e").experiment_id
    run_id = client.create_run(exp, capture_env=False).info.run_id
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    client.log_bytes(run_id, svg, "plot.svg")
    client.log_bytes(run_id, b"\x00\x01binary", "model.bin")
    image = http.get(f"/runs/{run_id}/artifacts/raw/plot.svg")
    assert image.headers["content-type"] == "image/svg+xml"
    assert image.headers["content-security-policy"].startswith("sandbox")
    download = http.get(f"/runs/{run_id}/artifacts/raw/model.bin")
    assert download.headers["content-disposition"].startswith("attachment")
    assert download.content == b"\x00\x01binary"
    assert http.get(f"/runs/{run_id}/artifacts/view/model.bin").status_code == 200
    assert http.get(f"/runs/{run_id}/artifacts/view/missing.txt").status_code == 404
    client.close()


def test_runs_table_pages_and_page_sizes(http: httpx.Client, live_server: LiveServer) -> None:
    client = Client(server_url=live_server.url)
    exp = client.set_experiment("paged").experiment_id
    for i in range(60):
        client.create_run(exp, run_name=f"r{i:02d}", capture_env=False)
    first = http.get(f"/experiments/{exp}")
    assert first.text.count('class="run-link"') == 50 and "1&ndash;50 of 60 runs" in first.text
    next_url = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert next_url is not None
    second = http.get(next_url.group(1).replace("&amp;", "&"))
    assert second.text.count('class="run-link"') == 10 and 'rel="prev"' in second.text
    assert http.get(f"/experiments/{exp}?size=25").text.count('class="run-link"') == 25
    assert http.get(f"/experiments/{exp}?size=7").status_code == 400
    client.close()


def test_a_run_whose_parent_was_deleted_heads_its_own_tree(
    live_server: LiveServer, http: httpx.Client
) -> None:
    """The nested runs table pages over the runs that head a tree: a child whose parent was
    deleted is one of them (it is not lost between the flat and the nested view)."""
    client = Client(database_url=live_server.app.state.opsloop.settings.database_url)
    exp = client.create_experiment("orphans").experiment_id
    parent = client.create_run(exp, run_name="sweep", capture_env=False).info.run_id
    client.create_run(exp, run_name="trial-1", parent_run_id=parent, capture_env=False)
    client.create_run(exp, run_name="lone", capture_env=False)
    before = http.get(f"/experiments/{exp}")
    assert "sweep" in before.text and "trial-1" in before.text  # under its parent
    client.delete_run(parent)
    after = http.get(f"/experiments/{exp}")
    assert after.status_code == 200
    assert "trial-1" in after.text and "lone" in after.text and ">sweep<" not in after.text
