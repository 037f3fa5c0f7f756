"""``opsloop models compress``: a compressed copy of a version, measured and gated (its own
module beside the registry's other commands, which register it in the ``models`` group)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Annotated
from typing import Any

import typer

from opsloop.console.commands import JsonOption
from opsloop.console.commands import RefArg
from opsloop.console.commands import version_ref
from opsloop.console.output import command_client
from opsloop.console.output import console
from opsloop.console.output import print_json
from opsloop.console.output import print_table

if TYPE_CHECKING:
    from opsloop.registry.compression_schemas import CompressionResult

__all__ = ["compress"]


def compress(
    ref: RefArg,
    method: Annotated[
        str, typer.Option("--method", help="onnx-int8 (scikit-learn, ONNX), dynamic-int8 or prune.")
    ],
    amount: Annotated[
        float | None, typer.Option(help="prune: the fraction of each Linear weight zeroed (0.3).")
    ] = None,
    data: Annotated[
        str | None, typer.Option("--data", help="Dataset version (NAME@N) to measure quality on.")
    ] = None,
    target: Annotated[
        str | None, typer.Option("--target", help="The label column (a causal LM: the text one).")
    ] = None,
    max_quality_drop: Annotated[
        float, typer.Option(help="Gate: at most this much worse, relative (0.01 = 1%).")
    ] = 0.01,
    min_size_ratio: Annotated[
        float, typer.Option(help="Gate: the package at least this many times smaller.")
    ] = 3.0,
    alias_name: Annotated[
        str | None, typer.Option("--alias", help="Move this alias to the new version on a pass.")
    ] = None,
    json_: JsonOption = False,
) -> None:
    """Register a compressed copy of a version as the model's next version, and judge it.

    Both versions are measured on package size, one-row and batch latency and, with --data and
    --target, quality (accuracy, RMSE, or a causal LM's next-token loss on a text column). The
    gate passes when the package is at least --min-size-ratio times smaller and quality at
    most --max-quality-drop worse; --alias moves only on a pass, and the decision is recorded
    in the alias history either way. The new version stays registered, tagged
    compressed_from. Exits 1 when the gate fails.
    """
    with console(stderr=True).status(f"compressing {ref} ({method}), measuring both versions"):
        result = command_client().models.compress(
            str(version_ref(ref, noun="model")),
            method,
            amount=amount,
            data=None if data is None else str(version_ref(data, noun="dataset")),
            target=target,
            max_quality_drop=max_quality_drop,
            min_size_ratio=min_size_ratio,
            alias=alias_name,
        )
    if json_:
        print_json(result)
    else:
        _print_compression(result)
    if not result.passed:
        raise typer.Exit(1)


def _print_compression(result: CompressionResult) -> None:
    out = console()
    out.print(f"registered {result.version.ref}: {result.method} of {result.original}")
    rows: list[tuple[Any, ...]] = [
        ("size (bytes)", result.original_bytes, result.compressed_bytes,
         f"{result.size_ratio:.2f}x smaller"),
    ]  # fmt: skip
    for label, shown in (("one row", "one_row"), (f"batch of {result.batch_rows}", "batch")):
        ms = result.latency_ms[shown]
        rows.append((f"latency {label} (ms)", ms["original"], ms["compressed"],
                     f"{ms['speedup']:.2f}x faster"))  # fmt: skip
    if result.quality is not None:
        q = result.quality
        rows.append((f"{q.metric} on {q.data}", q.before, q.after, f"{q.drop:+.2%} worse"))
        if q.perplexity_before is not None:
            rows.append(("perplexity", q.perplexity_before, q.perplexity_after, ""))
    if result.sparsity is not None:
        rows.append(("sparsity of Linear weights", "", result.sparsity, ""))
    print_table(["", "original", "compressed", ""], rows)
    gate = [
        ("PASS" if r["passed"] else "FAIL", r["rule"], r["value"], r.get("detail", ""))
        for r in result.verdict["rules"]
    ]
    print_table(["", "rule", "value", "detail"], gate, title="gate")
    event = result.alias_event
    if event is not None and event.moved:
        out.print(f"[green]passed[/green]: {event.name}@{event.alias} → {result.version.ref}")
    elif event is not None:
        held = "unset" if event.from_number is None else f"at {event.from_number}"
        out.print(f"[red]failed[/red]: {event.name}@{event.alias} stays {held}")
    else:
        verdict = "[green]passed[/green]" if result.passed else "[red]failed[/red]"
        out.print(f"gate {verdict} (no --alias: no alias moved)")
    for note in result.notes:
        out.print(f"[dim]note: {note}[/dim]")
