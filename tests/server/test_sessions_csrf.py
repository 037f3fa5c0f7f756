"""Sessions, CSRF and the failure limit over real HTTP against real servers (issue 22).

The login cookie holds a session id stored (keyed-hashed) in the metadata store: it outlives a
restart, is seen by a second server over the same store, and dies on logout. Every unsafe route
refuses a cookie-authenticated write from another origin or site; page forms need the session's
CSRF token; bearer clients are untouched; wrong tokens are limited per client IP.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi.routing import APIRoute
from fastapi.routing import iter_route_contexts

from opsloop import Client
from opsloop.store.database import Store
from opsloop.web.csrf import UNSAFE_METHODS
from opsloop.web.deps import SESSION_COOKIE
from opsloop.web.throttle import FAILURE_LIMIT
from opsloop.web.throttle import FailureLimiter
from opsloop.web.throttle import TooManyFailures
from tests.conftest import LiveServer

TOKEN = "s3cret-token"
SRC = Path(__file__).parents[2] / "src" / "opsloop"


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]*)"', html)
    assert found is not None, "the page has no CSRF field"
    return found.group(1)


def sign_in(http: httpx.Client, token: str = TOKEN, **headers: str) -> httpx.Response:
    """What a browser does: load the login page, post its form back from the same origin."""
    form = http.get("/login", headers=headers)
    data = {"token": token, "next": "/pipelines", "csrf_token": _csrf(form.text)}
    origin = str(http.base_url).rstrip("/")
    return http.post("/login", data=data, headers={"origin": origin, **headers})


def session_csrf(http: httpx.Client) -> str:
    return _csrf(http.get("/pipelines").text)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with LiveServer(f"sqlite:///{tmp_path / 's.db'}", str(tmp_path / "b"), token=TOKEN) as live:
        yield live


@pytest.fixture
def browser(server: LiveServer) -> Iterator[httpx.Client]:
    """An HTTP client holding a signed-in session cookie (as a browser would)."""
    with httpx.Client(base_url=server.url) as http:
        assert sign_in(http).status_code == 303
        yield http


def test_every_unsafe_route_refuses_a_cookie_write_from_elsewhere(
    server: LiveServer, browser: httpx.Client
) -> None:
    routes = [
        (method, re.sub(r"\{[^}]+\}", "x", route.path_format))
        for route in iter_route_contexts(server.app.routes)
        if isinstance(route.original_route, APIRoute)
        for method in sorted(route.methods & UNSAFE_METHODS)
    ]
    assert len(routes) > 40 and ("POST", "/pipelines/runs/x/cancel") in routes
    assert ("POST", "/logout") in routes and ("POST", "/api/runs/x/restore") in routes
    other_port = f"http://127.0.0.1:{server.port + 1}"
    for headers in (
        {"origin": other_port},  # another port of the same host: the same site
        {"origin": "null"},  # a sandboxed frame, a file: page
        {"origin": server.url, "sec-fetch-site": "same-site"},
        {"sec-fetch-site": "cross-site"},
    ):
        for method, path in routes:
            answer = browser.request(method, path, headers=headers)
            assert answer.status_code == 403, (method, path, headers, answer.text[:200])
            assert "refused a" in answer.text, (method, path, answer.text[:200])
    assert browser.get("/api/experiments").status_code == 200  # still signed in


def test_page_forms_need_the_session_csrf_token(server: LiveServer, browser: httpx.Client) -> None:
    sdk = Client(server_url=server.url, token=TOKEN)
    sdk.triggers.create("hook", "no_such_module:pipe", "webhook")
    same_origin = {"origin": server.url, "sec-fetch-site": "same-origin"}
    fire = "/pipelines/triggers/hook/fire"
    missing = browser.post(fire, headers=same_origin)
    assert missing.status_code == 403 and "no CSRF token" in missing.text
    wrong = browser.post(fire, data={"csrf_token": "0" * 64}, headers=same_origin)
    assert wrong.status_code == 403 and "not the one of your session" in wrong.text
    assert sdk.triggers.firings("hook") == []  # neither fired it
    token = session_csrf(browser)
    fired = browser.post(fire, data={"csrf_token": token}, headers=same_origin)
    assert fired.status_code == 303 and fired.headers["location"].startswith("/pipelines")
    assert [f.reason for f in sdk.triggers.firings("hook")] == ["fired from the web UI"]
    # A script on the page sends the token (from <meta name="csrf-token">) as a header.
    page = browser.get("/pipelines").text
    assert f'<meta name="csrf-token" content="{token}">' in page
    assert browser.post("/api/experiments", json={"name": "a"}).status_code == 403
    made = browser.post("/api/experiments", json={"name": "a"}, headers={"x-csrf-token": token})
    assert made.status_code == 201
    sdk.close()


def test_every_posting_form_includes_the_csrf_field() -> None:
    forms = 0
    for template in SRC.rglob("templates/**/*.html"):
        text = template.read_text()
        for match in re.finditer(r"<form\b[^>]*>", text, re.IGNORECASE):
            # an HTML form that posts (not a script's form, whose data-method it sends itself
            # with the session's token in a header)
            if re.search(r"(?<![\w-])method=['\"]?post", match.group(0), re.IGNORECASE):
                forms += 1
                after = text[match.end() : match.end() + 200]
                assert '{% include "_csrf.html" %}' in after, f"{template}: {match.group(0)}"
    assert forms >= 8  # login, sign out, alerts (2), pipeline runs (3), triggers, review


def test_logout_ends_the_session_everywhere(server: LiveServer, browser: httpx.Client) -> None:
    cookie = browser.cookies[SESSION_COOKIE]
    assert TOKEN not in cookie
    out = browser.post("/logout", data={"csrf_token": session_csrf(browser)})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    with httpx.Client(base_url=server.url, cookies={SESSION_COOKIE: cookie}) as replay:
        assert replay.get("/api/experiments").status_code == 401
        page = replay.get("/experiments")
        assert page.status_code == 303 and page.headers["location"].startswith("/login")


def test_sessions_outlive_a_restart_and_are_shared_by_servers(
    database_url: str, tmp_path: Path
) -> None:
    url, blobs = database_url, str(tmp_path / "b")
    with LiveServer(url, blobs, token=TOKEN) as first, httpx.Client(base_url=first.url) as http:
        answer = sign_in(http)
        cookie = http.cookies[SESSION_COOKIE]
    set_cookie = answer.headers.get_list("set-cookie")[0].lower()
    assert "httponly" in set_cookie and "samesite=strict" in set_cookie
    assert "secure" not in set_cookie and "max-age=43200" in set_cookie
    with (
        LiveServer(url, blobs, token=TOKEN) as restarted,
        LiveServer(url, blobs, token=TOKEN) as second,  # another worker over the same store
    ):
        for live in (restarted, second):
            with httpx.Client(base_url=live.url, cookies={SESSION_COOKIE: cookie}) as http:
                assert http.get("/api/experiments").status_code == 200
        store = Store(url)
        with store.read() as session:
            rows = session.execute(sa.text("SELECT id, subject FROM web_sessions")).all()
        store.dispose()
        assert [row.subject for row in rows] == ["token"]
        assert cookie not in rows[0].id and TOKEN not in rows[0].id  # hashed at rest
        with httpx.Client(base_url=second.url, cookies={SESSION_COOKIE: cookie}) as http:
            assert http.post("/logout", data={"csrf_token": session_csrf(http)}).status_code == 303
        with httpx.Client(base_url=restarted.url, cookies={SESSION_COOKIE: cookie}) as http:
            assert http.get("/api/experiments").status_code == 401


def test_a_new_server_token_ends_the_old_sessions(tmp_path: Path) -> None:
    url, blobs = f"sqlite:///{tmp_path / 's.db'}", str(tmp_path / "b")
    with LiveServer(url, blobs, token=TOKEN) as first, httpx.Client(base_url=first.url) as http:
        sign_in(http)
        cookie = http.cookies[SESSION_COOKIE]
    with (
        LiveServer(url, blobs, token="rotated") as rotated,
        httpx.Client(base_url=rotated.url, cookies={SESSION_COOKIE: cookie}) as http,
    ):
        assert http.get("/api/experiments").status_code == 401


def test_cookie_is_secure_behind_https(server: LiveServer) -> None:
    https = {"x-forwarded-proto": "https"}  # uvicorn trusts its loopback proxy
    with httpx.Client(base_url=server.url) as http:
        form = http.get("/login", headers=https)
        assert "; secure" in form.headers["set-cookie"].lower()  # httpx keeps it off http://
        login_cookie = form.headers["set-cookie"].split(";")[0]
        data = {"token": TOKEN, "next": "/", "csrf_token": _csrf(form.text)}
        answer = http.post("/login", data=data, headers={**https, "cookie": login_cookie})
    assert answer.status_code == 303
    assert "; secure" in answer.headers.get_list("set-cookie")[0].lower()


def test_failed_logins_are_limited_per_client(server: LiveServer, browser: httpx.Client) -> None:
    attacker = {"x-forwarded-for": "203.0.113.7"}
    with httpx.Client(base_url=server.url) as http:
        for _ in range(FAILURE_LIMIT):
            assert sign_in(http, "guess", **attacker).status_code == 403
        limited = sign_in(http, "guess", **attacker)
        assert limited.status_code == 429 and "too many failed" in limited.text
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert sign_in(http, TOKEN, **attacker).status_code == 429  # not even compared
        assert sign_in(http, TOKEN, **{"x-forwarded-for": "203.0.113.8"}).status_code == 303
        bearer = {"authorization": f"Bearer {TOKEN}", **attacker}
        assert http.get("/api/experiments", headers=bearer).status_code == 429
    assert browser.get("/api/experiments").status_code == 200  # sessions are not guesses


def test_failed_bearer_tokens_are_limited_and_good_ones_never(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url) as http:
        good = {"authorization": f"Bearer {TOKEN}", "x-forwarded-for": "198.51.100.1"}
        for _ in range(3 * FAILURE_LIMIT):
            assert http.get("/api/experiments", headers=good).status_code == 200
        bad = {"authorization": "Bearer nope", "x-forwarded-for": "198.51.100.2"}
        for _ in range(FAILURE_LIMIT):
            assert http.get("/api/experiments", headers=bad).status_code == 403
        limited = http.get("/api/experiments", headers=bad)
        assert limited.status_code == 429 and limited.json()["error"]["code"] == "TOO_MANY_FAILURES"
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        metrics = http.get("/metrics", headers=bad)
        assert metrics.status_code == 429  # the same guesses, the same limit
        assert http.get("/api/experiments", headers=good).status_code == 200


def test_bearer_clients_are_not_asked_for_origin_or_csrf(server: LiveServer) -> None:
    headers = {
        "authorization": f"Bearer {TOKEN}",
        "origin": "https://elsewhere.example",
        "sec-fetch-site": "cross-site",
    }
    made = httpx.post(f"{server.url}/api/experiments", json={"name": "b"}, headers=headers)
    assert made.status_code == 201
    sdk = Client(server_url=server.url, token=TOKEN)
    assert sdk.set_experiment("sdk").experiment_id
    sdk.close()


def test_an_open_server_refuses_writes_from_other_origins(tmp_path: Path) -> None:
    with LiveServer(f"sqlite:///{tmp_path / 'o.db'}", str(tmp_path / "b")) as open_server:
        url = f"{open_server.url}/api/experiments"
        elsewhere = {"origin": "http://127.0.0.1:1"}
        assert httpx.post(url, json={"name": "x"}, headers=elsewhere).status_code == 403
        assert httpx.post(url, json={"name": "x"}).status_code == 201  # scripts, the SDK


def test_failure_limiter_window() -> None:
    now = [100.0]
    limiter = FailureLimiter(limit=3, window_s=60, clock=lambda: now[0])
    for _ in range(3):
        limiter.check("ip")
        limiter.fail("ip")
    with pytest.raises(TooManyFailures) as raised:
        limiter.check("ip")
    assert raised.value.retry_after == 60 and raised.value.http_status == 429
    limiter.check("other")  # per client
    now[0] += 59.5
    assert limiter.retry_after("ip") == 1
    now[0] += 1
    limiter.check("ip")  # the oldest failure left the window
    small = FailureLimiter(limit=1, window_s=60, clock=lambda: now[0], max_clients=2)
    for key in ("a", "b", "c"):
        small.fail(key)
    assert small.retry_after("a") == 0 and small.retry_after("c") == 60  # bounded memory
