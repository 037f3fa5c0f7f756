"""``opsloop gateway``: the LLM gateway on its own, one OpenAI-compatible endpoint for every
model in its config file."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from opsloop.app.server_cli import MetricsTokenOption

__all__ = ["gateway"]


def gateway(
    config: Annotated[
        str,
        typer.Option(
            "--config",
            "-c",
            envvar="OPSLOOP_GATEWAY_CONFIG",
            help="The gateway's YAML file: routes, targets, fallbacks, guardrails, cache, "
            "limits, auth.",
        ),
    ],
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 4000,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Check every section of the config and print its routes; serve nothing."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="With --check: print JSON.")] = False,
    metrics_token: MetricsTokenOption = None,
) -> None:
    """Serve the LLM gateway: POST /v1/chat/completions, POST /v1/embeddings, GET /v1/models
    (and GET /metrics for Prometheus, with a key or --metrics-token under `auth: keys`).

    Point any OpenAI client at it (base_url=http://HOST:PORT/v1, api_key=an opsloop key from
    `opsloop keys create`, or anything with `auth: open`); the model name picks a route.
    Each route has weighted targets (OpenAI-compatible upstreams, with their key read from an
    environment variable), retries with backoff, per-target timeouts, and fallback routes tried
    on errors, timeouts, 5xx, invalid JSON and streams cut before their first event. Every call
    is a span in the traces of this machine's opsloop store (`opsloop traces list`).

    A minimal gateway.yaml (more in docs/gateway.md):

      routes:
        - name: gpt-4o-mini
          targets:
            - {name: openai, base_url: https://api.openai.com/v1, api_key_env: OPENAI_API_KEY}
          retries: 1
          fallbacks: [local]
        - name: local
          targets: [{name: vllm, base_url: http://127.0.0.1:8000/v1, model: qwen2.5-7b}]
      auth: keys

    A route may also list guardrails (pii, injection, topics, banned, json_schema, pii_leak,
    grounded, length), turn on its answer cache, or name a registered model as a `kind: local`
    target; `limits:` keeps each key's limits (`opsloop keys limit`) in-process or on Redis.
    `--check` checks every section and prints one line naming the field that is wrong.

    A route belongs to a workspace (`workspace: team-a`, default: default); this gateway serves
    the routes of one (`opsloop --workspace team-a gateway ...`), and
    `opsloop server --gateway-config gateway.yaml` serves each workspace its own.
    """
    from opsloop.app.gateway import check_config

    checked = check_config(config)  # every section: a mistake is one line naming the field
    if check:
        routes = [
            {"name": r.name, "workspace": r.workspace, "targets": [t.name for t in r.targets],
             "fallbacks": r.fallbacks,
             "guardrails": [g.get("name") or g.get("rule") for g in r.guardrails],
             "cache": bool(r.cache)}
            for r in checked.routes
        ]  # fmt: skip
        limits = "redis" if checked.limits.redis_url else "in-process"
        if as_json:
            out = {"auth": checked.auth, "limits": limits, "routes": routes}
            typer.echo(json.dumps(out, indent=2))
            return
        typer.echo(f"{config}: {len(routes)} route(s), auth {checked.auth}, limits {limits}")
        for route in routes:
            extra = f"  (then {', '.join(route['fallbacks'])})" if route["fallbacks"] else ""
            if route["guardrails"]:
                extra += f"  guardrails: {', '.join(route['guardrails'])}"
            extra += "  cache" if route["cache"] else ""
            where = "" if route["workspace"] == "default" else f" [{route['workspace']}]"
            typer.echo(f"  {route['name']}{where}: {', '.join(route['targets'])}{extra}")
        return
    import uvicorn

    from opsloop.app.gateway import create_gateway_app
    from opsloop.config import load_settings

    settings = load_settings(metrics_token=metrics_token)
    app = create_gateway_app(config, settings)
    url = f"http://{host}:{port}/v1"
    served = len(checked.for_workspace(settings.workspace).routes)
    typer.echo(f"opsloop gateway on {url}  ({served} route(s) of workspace "
               f"{settings.workspace}, auth {checked.auth})")  # fmt: skip
    uvicorn.run(app, host=host, port=port, log_level="warning")
