"""``opsloop server``, ``opsloop ui`` and ``opsloop db-upgrade``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from typing import Any

import typer

HostOption = Annotated[str, typer.Option(help="Interface to bind.")]
PortOption = Annotated[int, typer.Option(help="Port to listen on.")]
DatabaseOption = Annotated[str | None, typer.Option(help="Metadata store URL (default: settings).")]
BlobOption = Annotated[
    str | None, typer.Option(help="Blob store folder or URL (default: settings).")
]
TokenOption = Annotated[
    str | None, typer.Option(envvar="OPSLOOP_TOKEN", help="Require this bearer token.")
]
MetricsTokenOption = Annotated[
    str | None,
    typer.Option(
        envvar="OPSLOOP_METRICS_TOKEN",
        help="A scrape token accepted on /metrics only (the server token is accepted too).",
    ),
]
AuthOption = Annotated[
    str | None,
    typer.Option(
        envvar="OPSLOOP_AUTH",
        help="token (one shared token; the default when a token is set) or users (API keys of "
        "built-in users and service accounts, with roles).",
    ),
]

_SSO_PANEL = "Single sign-on (OIDC)"


def _sso_option(help: str, *flags: str) -> Any:
    """An option of OpenID Connect single sign-on, listed apart in ``--help``."""
    return typer.Option(*flags, help=help, rich_help_panel=_SSO_PANEL)


OidcIssuerOption = Annotated[
    str | None,
    _sso_option(
        "OpenID Connect single sign-on for the web UI (users mode): the provider's issuer URL, "
        "e.g. https://keycloak.example.com/realms/ml."
    ),
]
OidcClientIdOption = Annotated[str | None, _sso_option("This server's client id at the provider.")]
OidcSecretEnvOption = Annotated[
    str | None,
    _sso_option(
        "The name of the environment variable holding the client secret (never the secret "
        "itself). Leave out for a public client (PKCE only)."
    ),
]
OidcRoleClaimOption = Annotated[
    str | None,
    _sso_option(
        "The ID token claim listing the user's groups (default groups; a dotted path such as "
        "realm_access.roles reaches into an object)."
    ),
]
OidcRoleMapOption = Annotated[
    str | None,
    _sso_option(
        "Groups to roles, applied at every sign-in: 'ml-admins=admin,ml-team=editor' (the "
        "highest wins)."
    ),
]
OidcDefaultRoleOption = Annotated[
    str | None,
    _sso_option("The role of a user in no mapped group (default viewer; none refuses them)."),
]
OidcLinkEmailOption = Annotated[
    bool | None,
    _sso_option(
        "Let a first sign-in take over the existing user named by its verified e-mail "
        "(default: off; a new user is created).",
        "--oidc-link-email/--no-oidc-link-email",
    ),
]
OidcNameOption = Annotated[
    str | None,
    _sso_option("The provider's name on the login button (default: the issuer's host)."),
]


def server(
    host: HostOption = "127.0.0.1",
    port: PortOption = 5000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    database_url: DatabaseOption = None,
    blob_url: BlobOption = None,
    token: TokenOption = None,
    metrics_token: MetricsTokenOption = None,
    auth: AuthOption = None,
    gateway_config: Annotated[
        str | None,
        typer.Option(
            envvar="OPSLOOP_GATEWAY_CONFIG",
            help="The LLM gateway's routes (YAML; see `opsloop gateway --help`): any OpenAI "
            "client then calls http://HOST:PORT/v1 with its API key.",
        ),
    ] = None,
    oidc_issuer: OidcIssuerOption = None,
    oidc_client_id: OidcClientIdOption = None,
    oidc_client_secret_env: OidcSecretEnvOption = None,
    oidc_role_claim: OidcRoleClaimOption = None,
    oidc_role_map: OidcRoleMapOption = None,
    oidc_default_role: OidcDefaultRoleOption = None,
    oidc_link_email: OidcLinkEmailOption = None,
    oidc_provider_name: OidcNameOption = None,
    allow_code: Annotated[
        str | None,
        typer.Option(
            envvar="OPSLOOP_ALLOW_CODE",
            help="Modules the server may import when a pipeline run, tuning, trigger or "
            "retraining policy names code (comma-separated prefixes: mypkg.flows,team.jobs). "
            "With --auth users it runs nothing else and never a file path; unset there, it "
            "runs no named code at all.",
        ),
    ] = None,
) -> None:
    """Run the opsloop server: web UI at /, REST API under /api, docs at /docs, health at /healthz.

    Teams point the SDK and CLI at it with OPSLOOP_SERVER_URL=http://HOST:PORT, and MLflow
    scripts with MLFLOW_TRACKING_URI=http://HOST:PORT (its REST API, unchanged). With --auth
    users each caller sends their own API key (OPSLOOP_TOKEN); make the first admin with
    `OPSLOOP_DATABASE_URL=<this server's store> opsloop users create NAME --role admin`, and
    list the modules it may run pipelines from with --allow-code.
    """
    _serve(
        host, port, workers, database_url, blob_url, token, open_browser=False,
        metrics_token=metrics_token, auth=auth, gateway_config=gateway_config,
        allow_code=allow_code,
        oidc={"oidc_issuer": oidc_issuer, "oidc_client_id": oidc_client_id,
              "oidc_client_secret_env": oidc_client_secret_env, "oidc_role_claim": oidc_role_claim,
              "oidc_role_map": oidc_role_map, "oidc_default_role": oidc_default_role,
              "oidc_link_email": oidc_link_email, "oidc_provider_name": oidc_provider_name},
    )  # fmt: skip


def ui(
    host: HostOption = "127.0.0.1",
    port: PortOption = 5000,
    database_url: DatabaseOption = None,
    blob_url: BlobOption = None,
    token: TokenOption = None,
    browser: Annotated[bool, typer.Option(help="Open the UI in a web browser.")] = True,
) -> None:
    """Open the web UI on your own store (the embedded default unless configured otherwise).

    The same server as `opsloop server`, with one worker, opening your browser at its start.
    """
    _serve(host, port, 1, database_url, blob_url, token, open_browser=browser)


def _serve(
    host: str,
    port: int,
    workers: int,
    database_url: str | None,
    blob_url: str | None,
    token: str | None,
    *,
    open_browser: bool,
    metrics_token: str | None = None,
    auth: str | None = None,
    gateway_config: str | None = None,
    oidc: dict[str, Any] | None = None,
    allow_code: str | None = None,
) -> None:
    import os
    import threading
    import webbrowser

    import uvicorn

    from opsloop.config import load_settings
    from opsloop.schema import open_store

    settings = load_settings(
        database_url=database_url, blob_url=blob_url, token=token, metrics_token=metrics_token,
        auth=auth, gateway_config=gateway_config, allow_code=allow_code, **(oidc or {}),
    )  # fmt: skip
    if settings.auth_mode == "token" and not settings.token:
        from opsloop.errors import InvalidInput

        raise InvalidInput("--auth token needs a token: pass --token or set OPSLOOP_TOKEN")
    # Workers re-create the app from settings in their own process: pass them by environment.
    os.environ["OPSLOOP_DATABASE_URL"] = settings.database_url
    os.environ["OPSLOOP_BLOB_URL"] = settings.blob_url
    if settings.token:
        os.environ["OPSLOOP_TOKEN"] = settings.token
    if settings.metrics_token:
        os.environ["OPSLOOP_METRICS_TOKEN"] = settings.metrics_token
    if settings.auth:
        os.environ["OPSLOOP_AUTH"] = settings.auth
    if settings.allow_code:
        os.environ["OPSLOOP_ALLOW_CODE"] = settings.allow_code
    if settings.gateway_config:
        from opsloop.app.gateway import check_config

        check_config(settings.gateway_config)  # a mistake stops here, before workers start
        os.environ["OPSLOOP_GATEWAY_CONFIG"] = str(Path(settings.gateway_config).resolve())
    _export_oidc(settings)
    os.environ.pop("OPSLOOP_SERVER_URL", None)
    # migrate once, before workers start
    store = open_store(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
    url = f"http://{host}:{port}"
    typer.echo(f"opsloop server on {url}  (web UI at {url}/, REST API docs at {url}/docs)")
    typer.echo(f"  store: {settings.database_url}\n  blobs: {settings.blob_url}")
    typer.echo(f"  MLflow clients: MLFLOW_TRACKING_URI={url}")
    _say_auth_mode(settings, store)
    if open_browser:
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    uvicorn.run(
        "opsloop.app.server:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
    )


def _say_auth_mode(settings: Any, store: Any) -> None:
    """One line on how callers sign in; in users mode, how to make the first admin if none."""
    from opsloop.kernel.code_policy import server_code_policy

    mode = settings.auth_mode
    typer.echo(f"  code it runs for callers: {server_code_policy(settings).describe()}")
    if mode != "users":
        typer.echo(f"  auth: {'one shared token' if mode == 'token' else 'none (open)'}")
        return
    from opsloop.governance.local import LocalGovernanceBackend

    admins = [u for u in LocalGovernanceBackend(store).list_users() if u.role == "admin"]
    typer.echo(f"  auth: users ({len(admins)} admin(s)); callers send their API key")
    if not admins:
        typer.echo(
            f"  no admin yet: export OPSLOOP_DATABASE_URL={settings.database_url}, then run "
            "opsloop users create NAME --role admin && opsloop keys create --user NAME --name "
            "first (on this machine, without OPSLOOP_SERVER_URL)",
            err=True,
        )


def _export_oidc(settings: Any) -> None:
    """Check the OIDC settings now (a mistake stops the server before it starts, in one line)
    and hand them to the workers, which re-create the app from the environment."""
    import os

    from opsloop.governance.oidc_config import oidc_config

    config = oidc_config(settings)
    if config is None:
        return
    for name in (
        "oidc_issuer",
        "oidc_client_id",
        "oidc_client_secret_env",
        "oidc_role_claim",
        "oidc_default_role",
        "oidc_link_email",
        "oidc_scopes",
        "oidc_provider_name",
    ):
        value = getattr(settings, name)
        if value is not None:
            os.environ[f"OPSLOOP_{name.upper()}"] = str(value)
    os.environ["OPSLOOP_OIDC_ROLE_MAP"] = ",".join(f"{g}={r}" for g, r in config.role_map)
    typer.echo(f"  sign-in: {config.provider_name} (OIDC, {config.issuer}); "
               f"redirect URI: <this server's URL>/login/oidc/callback")  # fmt: skip


def db_upgrade(database_url: DatabaseOption = None) -> None:
    """Bring the metadata store's schema up to date (the server and SDK also do this on open)."""
    from opsloop.config import load_settings
    from opsloop.schema import open_store
    from opsloop.store.migrate import SCHEMA_HEAD

    settings = load_settings(database_url=database_url)
    open_store(settings.database_url)
    typer.echo(f"schema at {SCHEMA_HEAD}: {settings.database_url}")
