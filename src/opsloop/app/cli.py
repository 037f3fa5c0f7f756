"""The ``opsloop`` command: a Typer root to which each domain adds its command group.

Errors: an ``OpsloopError`` prints ``error: <one line>`` on stderr and exits with the error's
``exit_code`` (2 invalid input, 3 not found, 4 conflict, 5/6 auth, 7 store); usage errors exit 2.
Domain command modules import their services inside the commands, keeping ``--help`` fast.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Callable
from importlib import import_module
from typing import Annotated
from typing import Any

import typer

from opsloop.console.groups import OpsloopGroup
from opsloop.console.quick_exit import exit_without_teardown
from opsloop.kernel import __version__

app = typer.Typer(
    name="opsloop",
    help=(
        "opsloop: track experiments, version data, register, serve and monitor models.\n\n"
        "Runs on the embedded store (~/.opsloop: SQLite + a blob folder) with no setup; set "
        "OPSLOOP_SERVER_URL (or server_url in opsloop.toml) to use a shared `opsloop server`.\n\n"
        "Start with:  opsloop quickstart"
    ),
    no_args_is_help=True,
    cls=OpsloopGroup,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(asked: bool) -> None:
    if asked:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the opsloop version and exit.",
        ),
    ] = False,
    workspace: Annotated[
        str | None,
        typer.Option(
            "--workspace",
            envvar="OPSLOOP_WORKSPACE",
            help="Work in this workspace (default: default). `opsloop workspaces list` names them.",
        ),
    ] = None,
) -> None:
    # Typer reads the app's help from Typer(help=...); this callback adds --version and
    # --workspace, which reaches every command's settings through the environment.
    if workspace:
        import os

        os.environ["OPSLOOP_WORKSPACE"] = workspace


@app.command("version")
def version() -> None:
    """Print the opsloop version."""
    typer.echo(__version__)


# Each function adds some top-level commands. A process adds only the ones its first word
# names (``opsloop data status`` imports the data group alone): Typer turned every registered
# command into a Click command on each call, reading all its type hints, which cost 0.15 s of a
# 0.35 s ``data status``; :func:`main` now builds only the commands a call reaches
# (console/lazy_groups.py), and importing a group's module is what is left to save.
# ``opsloop``, ``--help`` and shell completion add all.


def _runs() -> None:
    from opsloop.pipelines.cli import reproduce_command
    from opsloop.tracking import cli as tracking_cli

    app.add_typer(tracking_cli.runs_app, name="runs")
    tracking_cli.runs_app.command("reproduce")(reproduce_command)


def _registry() -> None:
    from opsloop.registry import cli as registry_cli
    from opsloop.serving import image_cli  # on the serving floor, above the registry's CLI

    registry_cli.models_app.command("build-image")(image_cli.build_model_image)
    app.add_typer(registry_cli.models_app, name="models")
    app.command("lineage")(registry_cli.lineage)


def _llm() -> None:
    from opsloop.llm.evals.cli import eval_app
    from opsloop.llm.feedback.cli import feedback_app
    from opsloop.llm.prompts.cli import prompts_app
    from opsloop.llm.tracing.cli import traces_app

    app.add_typer(prompts_app, name="prompts")
    app.add_typer(traces_app, name="traces")
    app.add_typer(feedback_app, name="feedback")
    app.add_typer(eval_app, name="eval")


def _serving() -> None:
    from opsloop.app import serving_cli as serve_command
    from opsloop.serving import cli as serving_cli

    app.add_typer(serving_cli.deployments_app, name="deployments")
    app.command("deploy")(serving_cli.deploy)
    app.command("serve")(serve_command.serve)
    app.command("predict")(serving_cli.predict)


def _pipelines() -> None:
    from opsloop.app import scheduler_cli
    from opsloop.pipelines.cli import pipelines_app
    from opsloop.pipelines.cli import tune_command

    app.add_typer(pipelines_app, name="pipelines")
    app.command("scheduler")(scheduler_cli.scheduler)
    app.command("tune")(tune_command)


def _monitoring() -> None:
    from opsloop.monitoring import cli as monitoring_cli
    from opsloop.monitoring.drift_cli import drift_command

    app.add_typer(monitoring_cli.monitors_app, name="monitors")
    app.add_typer(monitoring_cli.alerts_app, name="alerts")
    app.add_typer(monitoring_cli.loop_app, name="loop")
    app.command("drift")(drift_command)


def _server() -> None:
    from opsloop.app import quickstart
    from opsloop.app import server_cli

    app.command("server")(server_cli.server)
    app.command("ui")(server_cli.ui)
    app.command("db-upgrade")(server_cli.db_upgrade)
    app.command("quickstart")(quickstart.quickstart)


def _governance() -> None:
    from opsloop.governance import cli as governance_cli
    from opsloop.governance import login_cli

    app.add_typer(governance_cli.users_app, name="users")
    app.add_typer(governance_cli.keys_app, name="keys")
    app.add_typer(governance_cli.audit_app, name="audit")
    app.add_typer(governance_cli.workspaces_app, name="workspaces")
    app.command("whoami")(governance_cli.whoami)
    app.command("login")(login_cli.login)


def _one(module: str, attribute: str, name: str, *, group: bool = True) -> Callable[[], None]:
    """The adder of a module that brings one command group (``opsloop NAME ...``) or, with
    ``group=False``, one command: it imports ``module`` when called, as the functions above do."""

    def add() -> None:
        found = getattr(import_module(module), attribute)
        if group:
            app.add_typer(found, name=name)
        else:
            app.command(name)(found)

    return add


_experiments = _one("opsloop.tracking.cli", "experiments_app", "experiments")
_data = _one("opsloop.data.cli", "data_app", "data")
_guardrails = _one("opsloop.llm.gateway.guardrails_cli", "guardrails_app", "guardrails")
_gateway = _one("opsloop.app.gateway_cli", "gateway", "gateway", group=False)
_gateway_routes = _one("opsloop.app.gateway_routes_cli", "routes_app", "gateway-routes")
_finetune = _one("opsloop.app.finetune_cli", "finetune", "finetune", group=False)
_privacy = _one("opsloop.app.privacy_cli", "privacy_app", "privacy")
_imports = _one("opsloop.app.mlflow_import.cli", "import_app", "import")
_ci = _one("opsloop.ci.cli", "ci_app", "ci")


_ADDS_COMMANDS: dict[Callable[[], None], tuple[str, ...]] = {  # in the order --help lists them
    _server: ("server", "ui", "db-upgrade", "quickstart"),
    _experiments: ("experiments",),
    _runs: ("runs",),  # its reproduce command is the pipelines' (imported with it)
    _data: ("data",),
    _registry: ("models", "lineage"),
    _serving: ("deployments", "deploy", "serve", "predict"),
    _monitoring: ("monitors", "alerts", "loop", "drift"),
    _pipelines: ("pipelines", "scheduler", "tune"),
    _llm: ("prompts", "traces", "feedback", "eval"),
    _guardrails: ("guardrails",),
    _gateway: ("gateway",),
    _gateway_routes: ("gateway-routes",),
    _finetune: ("finetune",),
    _governance: ("users", "keys", "audit", "workspaces", "whoami", "login"),
    _privacy: ("privacy",),
    _imports: ("import",),
    _ci: ("ci",),
}


_ADDED: set[Callable[[], None]] = set()


def register_commands(argv: list[str]) -> None:
    """Add the commands ``argv`` (the arguments after ``opsloop``) can reach; each group once,
    however often a process (a test calling :func:`main`) asks."""
    first = argv[0] if argv else ""
    named = [add for add, names in _ADDS_COMMANDS.items() if first in names]
    completing = any(key.startswith("_OPSLOOP_COMPLETE") for key in os.environ)
    for add in _ADDS_COMMANDS if completing or not named else named:
        if add not in _ADDED:
            _ADDED.add(add)
            add()


def _client_on_first_use(*, freeze: bool) -> Callable[[], Any]:
    """What commands get as ``ctx.obj``: the ``Client`` for this process, built when first
    asked (``--help`` and ``data status`` never build one); with ``freeze``, what building it
    imported is frozen (see :func:`main`)."""
    built: list[Any] = []

    def provide() -> Any:
        if not built:
            from opsloop.client import Client

            built.append(Client())
            if freeze:
                gc.freeze()
        return built[0]

    return provide


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app on ``argv`` (default: the process's arguments),
    mapping opsloop errors to exit codes. Always ends in ``SystemExit``."""
    # The modules, classes and functions imports make live as long as the process, and the
    # cyclic collector went over them again at each collection while a command started (5-6%
    # of a listing command's instructions). When this process is the ``opsloop`` command, they
    # are frozen: left out of collections (they are still freed as usual when unreferenced).
    freeze = argv is None
    if freeze:
        gc.freeze()
    # The ``opsloop`` process ends without the interpreter's teardown (console/quick_exit.py);
    # a test calling main() goes on.
    with exit_without_teardown() if freeze else contextlib.nullcontext():
        _run(args=sys.argv[1:] if argv is None else argv, freeze=freeze)


def _run(args: list[str], *, freeze: bool) -> None:
    """Parse ``args`` and run the command they name; raises ``SystemExit``."""
    from opsloop.console.lazy_groups import lazy_typer
    from opsloop.errors import OpsloopError

    register_commands(args)
    try:
        # Each command becomes a Click command when the parser first reaches it: building all
        # of every group's up front was half of ``--help`` (console/lazy_groups.py).
        lazy_typer(app)(args=args, prog_name="opsloop", standalone_mode=True,
                        obj=_client_on_first_use(freeze=freeze))  # fmt: skip
    except OpsloopError as exc:
        first_line, _, rest = exc.message.partition("\n")
        sys.stderr.write(f"error: {first_line}\n")
        if rest:
            sys.stderr.write(rest + "\n")
        raise SystemExit(exc.exit_code) from None
