"""One grammar across the CLI (issue 22): NAME@N / NAME@ALIAS wherever a model, dataset or
prompt version is asked for, ``--version``, one typo suggestion in every group, help texts whose
examples keep their lines, rounded tables with full-precision ``--json``, and a ``runs list``
that reads at 100 columns across every experiment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import typer
from click.testing import CliRunner

OPSLOOP = [str(Path(sys.executable).with_name("opsloop"))]
BOX = "│╭╮╰╯─┃"


def run(*args: str, code: int | None = 0, columns: int = 200) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": str(columns)}
    done = subprocess.run([*OPSLOOP, *args], capture_output=True, text=True, timeout=120, env=env)
    if code is not None:
        assert done.returncode == code, (args, done.returncode, done.stdout, done.stderr)
    return done


@pytest.fixture(scope="module")
def root() -> click.Group:
    """The whole command tree, every group loaded (as ``opsloop --help`` builds it)."""
    from opsloop.app import cli

    cli.register_commands([])
    group = typer.main.get_command(cli.app)
    assert isinstance(group, click.Group)
    return group


def walk(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from walk(sub, (*path, name))


def command_at(root: click.Group, path: tuple[str, ...]) -> click.Command:
    command: click.Command = root
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


def lines_of(text: str) -> list[str]:
    """Printed lines without the panels' box characters and the margins."""
    return [line.strip(BOX + " ") for line in text.splitlines()]


def example_lines(source: str) -> list[str]:
    """The example lines a help text was written with: ``opsloop ...`` lines that are
    indented, or that make up a whole paragraph."""
    found = []
    for paragraph in source.split("\n\n"):
        lines = [line for line in paragraph.split("\n") if line.strip() not in ("", "\b")]
        whole = all(line.strip().startswith("opsloop ") for line in lines[1:] or lines)
        for line in lines:
            if line.strip().startswith("opsloop ") and (line.startswith("  ") or whole):
                found.append(line.strip())
    return found


def test_version_flag_prints_the_version() -> None:
    from opsloop.kernel import __version__

    assert run("--version").stdout.strip() == __version__
    assert run("version").stdout.strip() == __version__


def test_every_help_keeps_its_example_lines_and_no_dangling_examples(root: click.Group) -> None:
    runner = CliRunner()
    checked = examples = 0
    for path in walk(root):
        done = runner.invoke(root, [*path, "--help"], env={"COLUMNS": "200"}, obj=None)
        assert done.exit_code == 0, (path, done.output)
        printed = lines_of(done.output)
        for at, line in enumerate(printed):
            if line.endswith(("Examples:", "Example:", "e.g.")):
                following = next((x for x in printed[at + 1 :] if x), "")
                assert following.startswith("opsloop "), (path, line, following)
        command = command_at(root, path)
        source = getattr(command, "_opsloop_source_help", None) or ""
        for example in example_lines(source):
            assert example in printed, (path, example, done.output)
            examples += 1
        checked += 1
    assert checked > 100 and examples > 40  # the walk reached every group and their examples


def test_examples_keep_their_lines_in_clicks_plain_help_too() -> None:
    """Without rich, Click rewraps every paragraph but those marked ``\\b``."""
    from opsloop.console.groups import tidy_text

    source = (
        "Do a thing, told at length so that Click has to wrap this paragraph onto two lines "
        "or more. Examples:\n\n  opsloop thing one --flag\n\n  opsloop thing two"
    )
    command = click.Command("thing", help=tidy_text(source, rich=False))
    with click.Context(command, info_name="thing", terminal_width=60) as ctx:
        printed = lines_of(command.get_help(ctx))
    assert printed[printed.index("Examples:") + 1 :][:2] == [
        "opsloop thing one --flag",
        "opsloop thing two",
    ]
    assert not any(line.endswith("Examples:") and line != "Examples:" for line in printed)


def test_a_typo_gets_one_suggestion_in_every_group(root: click.Group) -> None:
    runner = CliRunner()
    groups = [p for p in walk(root) if isinstance(command_at(root, p), click.Group)]
    assert len(groups) > 15
    for path in groups:
        group = command_at(root, path)
        name = next(n for n in group.commands if len(n) > 3)
        typo = name[:1] + name[2:]  # "list" -> "lst"
        done = runner.invoke(root, [*path, typo], env={"COLUMNS": "200"})
        assert done.exit_code == 2, (path, typo, done.output)
        assert done.output.count("Did you mean") == 1, done.output
        assert f"No such command {typo!r}. Did you mean" in done.output
        assert repr(name) in done.output


def test_pipelines_list_is_an_alias_and_lst_suggests_it() -> None:
    done = run("pipelines", "lst", code=2)
    assert "No such command 'lst'. Did you mean 'list'?" in done.stderr
    assert done.stderr.count("Did you mean") == 1
    assert json.loads(run("pipelines", "list", "--json").stdout) == []
    far = run("pipelines", "xyzzy", code=2).stderr
    assert "Commands: run, show" in far and "runs" in far


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., tuple[str, str]]:
    """``opsloop ARGS`` in this process, through the console entry point (``main``): the
    same parsing, output and error mapping as the command, without a Python start each."""
    from opsloop.app.cli import main

    monkeypatch.setenv("COLUMNS", "200")

    def invoke(*args: str, code: int = 0) -> tuple[str, str]:
        with pytest.raises(SystemExit) as exited:
            main(list(args))
        out, err = capsys.readouterr()
        assert (exited.value.code or 0) == code, (args, exited.value.code, out, err)
        return out, err

    return invoke


def test_models_data_and_prompts_take_name_at_version(
    tmp_path: Path, cli: Callable[..., tuple[str, str]]
) -> None:
    import numpy as np
    import skops.io
    from sklearn.linear_model import LogisticRegression

    X = np.random.default_rng(0).random((40, 3))
    skops.io.dump(LogisticRegression().fit(X, X[:, 0] > 0.5), tmp_path / "m.skops")
    for _ in range(2):
        cli("models", "register", "churn", "--file", str(tmp_path / "m.skops"))
    assert "churn@champion → churn@1" in cli("models", "alias", "churn@1", "champion")[0]
    assert "churn" in cli("models", "show", "churn@3", code=3)[1]
    assert json.loads(cli("models", "show", "churn@2", "--json")[0])["number"] == 2
    assert json.loads(cli("models", "show", "churn", "1", "--json")[0])["number"] == 1
    champion = json.loads(cli("models", "show", "churn@champion", "--json")[0])
    assert champion["number"] == 1 and champion["aliases"] == ["champion"]
    assert len(json.loads(cli("models", "show", "churn", "--json")[0])["versions"]) == 2
    cli("models", "alias", "churn@2", "challenger")
    assert "deleted churn@challenger" in cli("models", "unalias", "churn@challenger")[0]

    (tmp_path / "t.csv").write_text("a,b\n1,x\n2,y\n")
    cli("data", "add", str(tmp_path / "t.csv"), "--name", "tbl")
    cli("data", "alias", "tbl@1", "prod")
    assert json.loads(cli("data", "show", "tbl@prod", "--json")[0])["version"]["number"] == 1

    cli("prompts", "create", "answer", "--text", "A: {{ q }}")
    cli("prompts", "create", "answer", "--text", "Answer: {{ q }}")
    assert "answer@production → answer@2" in cli("prompts", "label", "answer@2", "production")[0]
    cli("prompts", "label", "answer", "1", "staging")  # the older form still works
    assert cli("prompts", "render", "answer@staging", "--var", "q=x")[0].strip() == "A: x"
    assert cli("prompts", "render", "answer", "--var", "q=x")[0].strip() == "Answer: x"
    assert "+Answer" in cli("prompts", "diff", "answer@1", "answer@production")[0]
    assert "+Answer" in cli("prompts", "diff", "answer", "1", "2")[0]
    cli("prompts", "unlabel", "answer@staging")
    assert json.loads(cli("prompts", "list", "--json")[0])[0]["labels"] == {"production": 2}

    for ref, code in (("@", 2), ("@-1", 2), ("@٣", 2), ("@0", 2), ("@nosuch", 3)):
        for args in (
            ("models", "show", f"churn{ref}"),
            ("models", "alias", f"churn{ref}", "challenger"),
            ("models", "promote", f"churn{ref}", "--force", "--reason", "drill"),
            ("data", "show", f"tbl{ref}"),
            ("data", "alias", f"tbl{ref}", "staging"),
            ("prompts", "show", f"answer{ref}"),
            ("prompts", "label", f"answer{ref}", "canary"),
        ):
            out, err = cli(*args, code=code)
            assert err.startswith("error: ") and err.count("\n") == 1 and not out, (args, err)
    assert json.loads(cli("prompts", "list", "--json")[0])[0]["labels"] == {"production": 2}
    assert "challenger" not in cli("models", "show", "churn")[0]
    assert json.loads(cli("data", "list", "--json")[0])[0]["aliases"] == {"prod": 1}


def test_a_bad_ref_is_one_line_from_the_installed_command() -> None:
    done = run("models", "show", "churn@٣", code=2)
    assert done.stderr == (
        "error: invalid version reference 'churn@٣': use NAME@N (a number) or NAME@ALIAS\n"
    )
    assert not done.stdout


def test_runs_list_reads_at_100_columns_across_experiments() -> None:
    from opsloop.client import Client

    client = Client()
    ids = {}
    for experiment in ("churn", "fraud-detection-with-a-long-name"):
        found = client.set_experiment(experiment)
        run_ = client.create_run(
            found.experiment_id, run_name=f"{experiment}-run", capture_env=False
        )
        client.log_params(run_.info.run_id, {"model": "random-forest-" + "x" * 40})
        client.log_metric(run_.info.run_id, "f1", 0.123456789)
        client.end_run(run_.info.run_id)
        ids[experiment] = run_.info.run_id

    done = run("runs", "list", columns=100)
    lines = done.stdout.splitlines()
    assert lines and all(len(line) <= 100 for line in lines), done.stdout
    assert {i[:8] for i in ids.values()} <= set(done.stdout.split())
    assert not any(i in done.stdout for i in ids.values())  # short ids only
    assert "metrics.f1" in lines[0] and "params.model" in lines[0]
    assert "0.1235" in done.stdout and "0.123456789" not in done.stdout
    assert "random-forest-" in done.stdout and "…" in done.stdout  # cut, not wrapped
    assert len(lines) == 4  # header, rule, one line per run

    listed = json.loads(run("runs", "list", "--json").stdout)["items"]
    assert {r["info"]["run_id"] for r in listed} == set(ids.values())
    assert listed[0]["data"]["metrics"]["f1"] == 0.123456789  # --json: every digit
    assert listed[0]["data"]["params"]["model"] == "random-forest-" + "x" * 40

    one = json.loads(run("runs", "list", "-e", "churn", "--json").stdout)["items"]
    assert [r["info"]["run_id"] for r in one] == [ids["churn"]]
    shown = run("runs", "show", ids["churn"][:8]).stdout
    assert "0.1235" in shown and "0.123456789" not in shown


def test_runs_list_with_no_experiment_at_all_is_empty_not_an_error() -> None:
    assert json.loads(run("runs", "list", "--json").stdout)["items"] == []
