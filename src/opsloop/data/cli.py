"""``opsloop data ...``: version, share, compare, validate and profile datasets."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Annotated
from typing import Any

import typer

from opsloop.console.commands import AliasArg
from opsloop.console.commands import AliasedNameArg
from opsloop.console.commands import JsonOption
from opsloop.console.commands import RefArg
from opsloop.console.commands import alias_ref
from opsloop.console.commands import command_group
from opsloop.console.commands import every_item
from opsloop.console.output import command_client
from opsloop.console.output import parse_tags
from opsloop.console.output import print_json
from opsloop.console.output import print_listing
from opsloop.console.output import print_outcome
from opsloop.console.output import print_table
from opsloop.console.output import when

if TYPE_CHECKING:
    from opsloop.data.entities import DatasetVersion

data_app = command_group(
    "Version files, folders and tables as immutable, content-addressed dataset versions.\n\n"
    "A version is NAME@N; NAME@latest (or just NAME) is the newest and NAME@ALIAS any alias "
    "you set. Examples:\n\n"
    "  opsloop data add ./images --name pets -m 'first crawl'\n"
    "  opsloop data add train.csv --name churn --expect expectations.yaml\n"
    "  opsloop data show churn@2\n"
    "  opsloop data alias churn@2 prod\n"
    "  opsloop data diff churn@1 churn@prod\n"
    "  opsloop data checkout churn@1 ./old-churn"
)


def _bars(json_: bool) -> bool:
    """Progress bars go to a terminal only: not into --json output, logs or CI transcripts."""
    return not json_ and sys.stderr.isatty()


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _version_row(v: DatasetVersion) -> tuple[Any, ...]:
    return (
        v.ref,
        v.kind,
        f"{v.file_count:,}",
        _size(v.total_bytes),
        v.table.rows if v.table else "",
        v.validation_status or "",
        ", ".join(v.aliases),
        when(v.created_at),
        v.message or "",
    )


_VERSION_COLUMNS = [
    "version",
    "kind",
    "files",
    "size",
    "rows",
    "valid",
    "aliases",
    "created",
    "message",
]


@data_app.command("add")
def add(
    path: Annotated[Path, typer.Argument(help="A file, a folder, or a table (CSV/Parquet/JSONL).")],
    name: Annotated[str, typer.Option("--name", "-n", help="Dataset name.")],
    message: Annotated[str | None, typer.Option("--message", "-m", help="What changed.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="KEY=VALUE, repeatable.")] = None,
    expect: Annotated[
        Path | None, typer.Option(help="Expectations (YAML/JSON) to validate the table against.")
    ] = None,
    push: Annotated[bool, typer.Option(help="Upload the blobs to the blob store too.")] = False,
    json_: JsonOption = False,
) -> None:
    """Add PATH as the next version of a dataset (no new version if nothing changed).

    Files are hashed with BLAKE3 and stored once in the blob cache; unchanged files are
    recognised by size and mtime and not read again. Exits 1 when --expect checks fail (the
    version is still recorded, marked failed).
    """
    result = command_client().data.add(
        path,
        name,
        message=message,
        tags=parse_tags(tag),
        expectations=expect,
        push=push,
        progress=_bars(json_),
    )
    if json_:
        print_json(result)
    else:
        v = result.version
        verb = "added" if result.created else "unchanged, already"
        typer.echo(
            f"{verb} {v.ref}: {v.file_count:,} files, {_size(v.total_bytes)} "
            f"({result.hashed_files:,} hashed), version {v.version_id[:12]}"
        )
        if result.validation is not None:
            _print_validation(result.validation)
    if result.validation is not None and not result.validation["passed"]:
        raise typer.Exit(1)


@data_app.command("list")
def list_datasets(json_: JsonOption = False) -> None:
    """List datasets with their latest version and aliases."""
    data = command_client().data
    items = every_item(lambda token: data.list(page_token=token))
    rows = [
        (
            d.name,
            d.version_count,
            f"@{d.latest}" if d.latest else "",
            ", ".join(f"{a}→@{n}" for a, n in sorted(d.aliases.items())),
            when(d.updated_at),
        )
        for d in items
    ]
    print_listing(
        items, ["dataset", "versions", "latest", "aliases", "updated"], rows, as_json=json_
    )


@data_app.command("versions")
def list_versions(name: str, json_: JsonOption = False) -> None:
    """List a dataset's versions, newest first."""
    data = command_client().data
    items = every_item(lambda token: data.versions(name, page_token=token))
    print_listing(items, _VERSION_COLUMNS, [_version_row(v) for v in items], as_json=json_)


@data_app.command("show")
def show(ref: RefArg, json_: JsonOption = False) -> None:
    """Show a version: files, table schema, validation, and its lineage one step each way:
    what it came from (the run that made it, a batch's model and input, an export's traces)
    and what used it (runs, evaluations, batches)."""
    client = command_client()
    version = client.data.version(ref)
    links = client.data.lineage(ref)
    if json_:
        print_json({"version": version, "lineage": links})
        return
    rows: list[tuple[Any, Any]] = [
        ("version", version.ref),
        ("id", version.version_id),
        ("kind", version.kind),
        ("files", f"{version.file_count:,}"),
        ("size", _size(version.total_bytes)),
        ("message", version.message),
        ("source", version.source),
        ("created", f"{when(version.created_at)} by {version.created_by}"),
        ("aliases", ", ".join(version.aliases)),
        ("validation", version.validation_status or "not validated"),
        *((f"tags.{k}", v) for k, v in version.tags.items()),
    ]
    if version.table:
        rows.append(("rows", f"{version.table.rows:,} ({version.table.format})"))
    print_table(["field", "value"], rows)
    if version.table:
        print_table(
            ["column", "type", "nulls %", "distinct", "min", "max", "mean"],
            [
                (
                    c.name,
                    c.type,
                    c.stats.get("null_pct"),
                    c.stats.get("distinct"),
                    c.stats.get("min"),
                    c.stats.get("max"),
                    c.stats.get("mean"),
                )
                for c in version.table.columns
            ],
            title="schema",
        )
    if links:
        print_table(
            ["", "relation", "what", "recorded"],
            [
                (_direction(link), link.relation, link.label or link.run_id, when(link.created_at))
                for link in sorted(links, key=lambda link: _direction(link) != "upstream")
            ],
            title="lineage",
        )
    else:
        typer.echo(
            "lineage: nothing recorded yet (no run, batch, feedback export or evaluation "
            "names this version)"
        )


def _direction(link: Any) -> str:
    """Upstream (what the version came from) or downstream (what used it); an older server
    says neither, and only sends runs: an input run used it, an output run made it."""
    if link.direction:
        return str(link.direction)
    return "downstream" if link.relation == "input" else "upstream"


@data_app.command("status")
def status(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Tracked paths (default: all).")
    ] = None,
    remote: Annotated[
        bool, typer.Option("--remote", help="Also say which files the blob store lacks.")
    ] = False,
    json_: JsonOption = False,
) -> None:
    """Compare tracked local folders and files with the versions they were added as or
    checked out from; with --remote, also whether their bytes were pushed. Exits 1 when
    anything changed (or, with --remote, is not pushed)."""
    from opsloop.config import load_settings
    from opsloop.data.localstate import LocalState
    from opsloop.data.status import workspace_status

    # Local state only: no metadata store (and no SQLAlchemy) unless a manifest is unknown.
    state = LocalState(load_settings().home)
    results = workspace_status(
        state, tuple(paths or []), lambda ref: command_client().data.manifest(ref)[1]
    )
    unpushed = {r.ref: command_client().data.unpushed(r.ref) for r in results} if remote else {}
    if json_:
        print_json(
            [{**dataclasses.asdict(r), "unpushed": unpushed.get(r.ref)} for r in results]
            if remote
            else results
        )
    elif not results:
        typer.echo("nothing tracked on this machine yet: add or check out a version first")
    for r in results if not json_ else []:
        if r.missing:
            typer.echo(f"{r.path}: missing (was {r.ref})")
        elif r.clean:
            typer.echo(f"{r.path}: up to date with {r.ref}")
        else:
            typer.echo(
                f"{r.path}: changed since {r.ref}: {len(r.added)} added, "
                f"{len(r.removed)} removed, {len(r.modified)} modified"
            )
            for label, items in (
                ("added", r.added),
                ("removed", r.removed),
                ("modified", r.modified),
            ):
                for item in items[:10]:
                    typer.echo(f"  {label:9} {item}")
                if len(items) > 10:
                    typer.echo(f"  ... and {len(items) - 10} more {label}")
        if unpushed.get(r.ref):
            typer.echo(
                f"  {len(unpushed[r.ref])} file(s) of {r.ref} are not in the blob store: "
                f"opsloop data push {r.ref}"
            )
    if any(not r.clean for r in results) or any(unpushed.values()):
        raise typer.Exit(1)


@data_app.command("diff")
def diff(
    old: Annotated[str, typer.Argument(help="The older version, e.g. churn@1.")],
    new: Annotated[str, typer.Argument(help="The newer version, e.g. churn@2.")],
    limit: Annotated[int, typer.Option(help="Most file changes to list.")] = 50,
    json_: JsonOption = False,
) -> None:
    """Files added, removed and modified; for tables also schema, rows and column stats."""
    result = command_client().data.diff(old, new)
    if json_:
        print_json(result)
        return
    typer.echo(
        f"{result.old} → {result.new}: {result.added} added, {result.removed} removed, "
        f"{result.modified} modified, {result.unchanged} unchanged "
        f"({'-' if result.bytes_delta < 0 else '+'}{_size(abs(result.bytes_delta))})"
    )
    if result.files:
        print_table(
            ["change", "path", "old size", "new size"],
            [
                (
                    f.change,
                    f.path,
                    _size(f.old_size) if f.old_size is not None else "",
                    _size(f.new_size) if f.new_size is not None else "",
                )
                for f in result.files[:limit]
            ],
        )
        if len(result.files) > limit:
            typer.echo(f"... and {len(result.files) - limit} more (use --limit or --json)")
    if result.table:
        t = result.table
        typer.echo(f"rows: {t.old_rows:,} → {t.new_rows:,} ({t.new_rows - t.old_rows:+,})")
        rows = []
        for c in t.columns:
            if c.change in ("added", "removed", "type"):
                rows.append((c.name, c.change, f"{c.old_type or ''} → {c.new_type or ''}"))
            for stat, (a, b) in c.stats.items():
                rows.append((c.name, stat, f"{a} → {b}"))
        if rows:
            print_table(["column", "change", "old → new"], rows, title="table changes")


@data_app.command("push")
def push(ref: RefArg, json_: JsonOption = False) -> None:
    """Upload the version's blobs that the blob store lacks (in parallel)."""
    result = command_client().data.push(ref, progress=_bars(json_))
    _print_transfer(result, "pushed", json_)


@data_app.command("pull")
def pull(ref: RefArg, json_: JsonOption = False) -> None:
    """Download the version's blobs that the local cache lacks (verified, resumable)."""
    result = command_client().data.pull(ref, progress=_bars(json_))
    _print_transfer(result, "pulled", json_)


@data_app.command("checkout")
def checkout(
    ref: RefArg,
    path: Annotated[Path, typer.Argument(help="Where to write the files.")],
    force: Annotated[bool, typer.Option(help="Overwrite local changes.")] = False,
    json_: JsonOption = False,
) -> None:
    """Write a version's files at PATH (a new or empty folder, or an earlier checkout)."""
    result = command_client().data.checkout(ref, path, force=force, progress=_bars(json_))
    _print_transfer(result, "wrote", json_)


def _print_transfer(result: Any, verb: str, json_: bool) -> None:
    line = (
        f"{result.ref}: {verb} {result.files:,} of {result.total_files:,} files "
        f"({_size(result.bytes)}); the rest were already there"
    )
    print_outcome(result, line, as_json=json_)


@data_app.command("validate")
def validate(
    ref: RefArg,
    expect: Annotated[Path, typer.Option(help="Expectations file (YAML or JSON).")],
    json_: JsonOption = False,
) -> None:
    """Check a table version against expectations; the verdict is recorded on the version.
    Exits 1 when a check fails."""
    _, report = command_client().data.validate(ref, expect)
    if json_:
        print_json(report)
    else:
        _print_validation(report)
    if not report["passed"]:
        raise typer.Exit(1)


def _print_validation(report: dict[str, Any]) -> None:
    verdict = "passed" if report["passed"] else "FAILED"
    typer.echo(
        f"validation {verdict}: {report['checks_run'] - report['checks_failed']} of "
        f"{report['checks_run']} checks passed over {report['rows']:,} rows"
    )
    for check in report["checks"]:
        if check["passed"]:
            continue
        rows = ", ".join(str(s.get("row", s)) for s in check.get("sample", [])[:10])
        typer.echo(
            f"  ✗ {check['check']}: {check['message']}" + (f" (rows {rows})" if rows else "")
        )


@data_app.command("profile")
def profile(
    ref: RefArg,
    out: Annotated[Path, typer.Option(help="Folder for the HTML report and JSON.")] = Path("."),
    json_: JsonOption = False,
) -> None:
    """Write a shareable HTML profile (distributions, missing values, correlations) and a JSON
    summary of a table version."""
    html, summary = command_client().data.profile(ref, out)
    paths = {"html": str(html), "json": str(summary)}
    print_outcome(paths, f"wrote {html} and {summary}", as_json=json_)


@data_app.command("alias")
def alias(
    ref: RefArg, name: Annotated[str, typer.Argument(help="Alias to set, e.g. prod.")]
) -> None:
    """Point an alias at a version (moving it if it pointed elsewhere)."""
    version = command_client().data.set_alias(ref, name)
    typer.echo(f"{version.name}@{name} → {version.ref}")


@data_app.command("unalias")
def unalias(dataset: AliasedNameArg, name: AliasArg = None) -> None:
    """Remove an alias from a dataset: churn@prod, or churn prod."""
    dataset, name = alias_ref(dataset, name, "dataset")
    command_client().data.delete_alias(dataset, name)
    typer.echo(f"removed {dataset}@{name}")


@data_app.command("tag")
def tag(ref: RefArg, key: str, value: str) -> None:
    """Set a tag on a version."""
    version = command_client().data.set_tag(ref, key, value)
    typer.echo(f"{version.ref}: {key}={value}")


@data_app.command("scan")
def scan(
    ref: RefArg,
    pii: Annotated[bool, typer.Option("--pii", help="Look for personal data (PII).")] = False,
    entity: Annotated[
        list[str] | None,
        typer.Option("--entity", "-e", help="Only this entity (repeatable), e.g. EMAIL_ADDRESS."),
    ] = None,
    engine: Annotated[
        str, typer.Option(help="opsloop (our recognizers) or presidio (Presidio's, slower).")
    ] = "opsloop",
    samples: Annotated[int, typer.Option(help="Masked sample rows per column and entity.")] = 3,
    json_: JsonOption = False,
) -> None:
    """Scan a table version's columns for personal data: e-mails, phone numbers, cards
    (Luhn), IBANs (mod 97), IPs, US SSNs and cued names. Shows rows per column and entity with
    masked samples (never a whole value). No model download and no network call."""
    from opsloop.data.pii_scan import scan_table
    from opsloop.errors import InvalidInput

    if not pii:
        raise InvalidInput("say what to scan for: --pii (personal data) is the only scan yet")
    handle = command_client().data.get(ref)
    files, fmt = handle.table_files()
    report = scan_table(
        files, fmt, entity, engine=engine, samples=samples, progress=_bars(json_), label=ref
    )
    report = {"version": handle.ref, **report}
    if json_:
        print_json(report)
        return
    rows = [
        (
            c["column"],
            name,
            f"{hit['rows']:,}",
            ", ".join(f"{s['row']}: {s['value']}" for s in hit["samples"]),
        )
        for c in report["columns"]
        for name, hit in c["entities"].items()
    ]
    typer.echo(
        f"{handle.ref}: {report['rows_with_pii']:,} of {report['rows']:,} rows hold PII "
        f"({', '.join(report['entities'])}; engine {engine})"
    )
    if rows:
        print_table(["column", "entity", "rows", "samples (row: masked value)"], rows)
    if report["skipped"]:
        typer.echo(f"not scanned (numbers, dates, booleans): {', '.join(report['skipped'])}")
    for note in report["notes"]:
        typer.echo(f"note: {note}")


# deduplication and contamination (the commands live with the engine, in data/duplicates)
from opsloop.data.duplicates import commands as _duplicates  # noqa: E402

data_app.command("dedup")(_duplicates.dedup)
data_app.command("dedup-report")(_duplicates.dedup_report)
data_app.command("overlap")(_duplicates.overlap)
