"""``opsloop data dedup``, ``dedup-report`` and ``overlap``: registered on ``opsloop data``
by ``data/cli.py``; the work is the SDK's (``client.data.dedup``, ``.overlap``)."""

from __future__ import annotations

import sys
from typing import Annotated
from typing import Any

import typer

from opsloop.console.commands import JsonOption
from opsloop.console.commands import RefArg
from opsloop.console.output import command_client
from opsloop.console.output import print_json
from opsloop.console.output import print_table

__all__ = ["dedup", "dedup_report", "overlap"]


def _bars(json_: bool) -> bool:
    """Progress on a terminal only: not into --json output, logs or CI transcripts."""
    return not json_ and sys.stderr.isatty()


_NEAR_HELP = "Jaccard similarity of word n-grams, in (0, 1], that makes two rows duplicates."
_ExecutorOption = Annotated[
    str,
    typer.Option(
        help="local, or ray: exact and near search as Ray tasks on RAY_ADDRESS's cluster, "
        "else a local Ray (the ray extra); the local run's result."
    ),
]
_PartitionsOption = Annotated[
    int | None,
    typer.Option(
        help="--executor ray: parts the rows are cut into (default: one per cluster CPU, "
        "more past 200,000 rows each).",
        show_default=False,
    ),
]


def dedup(
    ref: RefArg,
    column: Annotated[str, typer.Option(help="The text column compared.")] = "text",
    exact: Annotated[bool, typer.Option("--exact", help="Drop equal normalised texts.")] = False,
    near: Annotated[bool, typer.Option("--near", help="Drop near-duplicates (MinHash).")] = False,
    semantic: Annotated[
        bool,
        typer.Option(
            "--semantic", help="Drop rows that say the same in other words (SemDeDup; llm extra)."
        ),
    ] = False,
    eps: Annotated[
        float, typer.Option(help="--semantic: cosine similarity above 1 - eps is a duplicate.")
    ] = 0.05,
    substring: Annotated[
        bool,
        typer.Option(
            "--substring",
            help="Cut spans repeated from earlier rows out of the kept rows (suffix array; "
            "llm extra); rows left empty are dropped.",
        ),
    ] = False,
    min_length: Annotated[
        int,
        typer.Option(
            help="--substring: shortest repeat cut, in bytes of UTF-8 (ASCII: characters)."
        ),
    ] = 100,
    threshold: Annotated[float, typer.Option(help=_NEAR_HELP)] = 0.8,
    ngram: Annotated[int, typer.Option(help="Words per shingle.")] = 5,
    num_perm: Annotated[int, typer.Option(help="MinHash permutations.")] = 128,
    verify: Annotated[
        str, typer.Option(help="Check candidates by 'exact' Jaccard or its MinHash 'estimate'.")
    ] = "exact",
    keep: Annotated[
        str, typer.Option(help="Row each cluster keeps: first, longest or best-scored.")
    ] = "first",
    score_column: Annotated[
        str | None, typer.Option(help="Numeric column for --keep best-scored.")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="Dataset of the new version.")
    ] = None,
    message: Annotated[str | None, typer.Option("--message", "-m")] = None,
    executor: _ExecutorOption = "local",
    partitions: _PartitionsOption = None,
    json_: JsonOption = False,
) -> None:
    """Drop duplicate rows of a table version's text column (JSONL, Parquet or CSV) into the
    next version, linked to it in the lineage, with a report of what went.

    Exact: texts equal once normalised (Unicode NFKC, case, punctuation, spaces). Near: rows
    sharing at least --threshold of their word --ngram-grams, found with MinHash signatures
    and LSH bands chosen from the threshold. Semantic: sentence embeddings (all-MiniLM-L6-v2,
    offline, the llm extra) grouped by k-means, and within a group a row whose
    cosine similarity to a kept row is above 1 - --eps goes. Pairs are clustered; each cluster
    keeps one row. Substring (applied last, to the rows kept): every span of at least
    --min-length bytes of UTF-8 that occurred earlier in the column is cut from the row
    (the first occurrence stays); rows left empty are dropped. No method flag means --exact
    --near. Empty rows are counted, never clustered nor cut.

    With --executor ray the exact and near search run as Ray tasks, for tables one machine
    cannot sketch: each partition is sketched by a task, band hashes are shuffled by key,
    pairs verified and clusters merged; the new version and report are the local run's. Ray
    is the cluster at RAY_ADDRESS (host:port, or ray://host:port), else a local one. Examples:

      opsloop data dedup corpus@1 --column text
      opsloop data dedup corpus@1 --near --threshold 0.7 --keep longest
      opsloop data dedup corpus@1 --exact --semantic --eps 0.05
      opsloop data dedup corpus@1 --substring --min-length 200
      opsloop data dedup corpus@1 --exact --keep best-scored --score-column quality
      RAY_ADDRESS=head:6379 opsloop data dedup corpus@1 --executor ray --partitions 64
    """
    from contextlib import nullcontext

    from opsloop.console.output import console

    both = not exact and not near and not semantic and not substring
    client = command_client()
    bars = _bars(json_)
    remote = client.settings.is_remote  # the server hashes: a spinner, not a bar, here
    on_ray = executor == "ray"  # Ray's tasks count no rows: a spinner too
    where = "on the server" if remote else "on Ray"
    waiting = console(stderr=True).status(f"deduplicating {ref} {where}")
    with waiting if bars and (remote or on_ray) else nullcontext():
        result = client.data.dedup(
            ref, column, exact=exact or both, near=near or both, semantic=semantic, eps=eps,
            substring=substring, min_length=min_length, threshold=threshold, ngram=ngram,
            num_perm=num_perm, verify=verify, keep=keep, score_column=score_column, name=name,
            message=message, executor=executor,
            partitions=partitions, progress=bars and not remote,
        )  # fmt: skip
    if json_:
        print_json({"source": result.source, "version": result.version, "report": result.report})
        return
    report = result.report
    removed = report["removed"]
    where = f" on Ray ({report['partitions']} partitions)" if "partitions" in report else ""
    methods = {"exact": exact or both, "near": near or both, "semantic": semantic}
    counts = [f"{removed.get(m, 0):,} {m}" for m, ran in methods.items() if ran]
    summary = f"{result.source}: {report['rows']:,} rows, {report['empty_rows']:,} empty"
    if counts:  # --substring alone runs no row method
        removals = " and ".join([", ".join(counts[:-1]), counts[-1]] if len(counts) > 1 else counts)
        summary += f", removed {removals} duplicates in {report['clusters_total']:,} clusters"
    typer.echo(summary + where)
    if substring:
        typer.echo(_cut_line(report["substring"]))
    if result.version is None:
        typer.echo("no duplicates: no new version")
        return
    typer.echo(f"wrote {result.version.ref} ({report['rows_kept']:,} rows)")
    if substring and report["substring"]["spans"]:
        print_table(
            ["repeated span", "bytes", "cut", "first cut row"],
            [
                (s["text"][:60], s["bytes"], s["cuts"], s["row"])
                for s in report["substring"]["spans"][:10]
            ],
        )
    rows = [
        (c["kept"], d["row"], d["method"], f"{d['similarity']:.3f}", d["text"][:60])
        for c in report["clusters"][:10]
        for d in c["dropped"][:3]
    ]
    if rows:
        print_table(["kept row", "dropped row", "method", "similarity", "text"], rows)
        typer.echo(f"all clusters: opsloop data dedup-report {result.version.ref} --json")


def _cut_line(cut: dict[str, Any]) -> str:
    return (
        f"substring (>= {cut['min_length']:,} bytes): cut {cut['spans_removed']:,} repeated "
        f"spans, {cut['characters_removed']:,} characters, from {cut['rows_changed']:,} rows; "
        f"{cut['rows_dropped']:,} rows left empty dropped"
    )


def dedup_report(ref: RefArg, json_: JsonOption = False) -> None:
    """Show the report stored with a version `opsloop data dedup` made: rows removed per
    method, and each cluster's kept row, dropped rows and their similarity."""
    report = command_client().data.dedup_report(ref)
    if json_:
        print_json(report)
        return
    typer.echo(
        f"{report['output']} from {report['source']} ({report['column']}): "
        f"{report['rows']:,} → {report['rows_kept']:,} rows; removed "
        f"{report['removed']['exact']:,} exact, {report['removed']['near']:,} near, "
        f"{report['removed'].get('semantic', 0):,} semantic"
    )
    if "substring" in report:
        typer.echo(_cut_line(report["substring"]))
    print_table(
        ["kept row", "size", "dropped (row: similarity)", "text"],
        [
            (
                c["kept"],
                c["size"],
                ", ".join(f"{d['row']}: {d['similarity']:.2f}" for d in c["dropped"][:8]),
                c["text"][:60],
            )
            for c in report["clusters"]
        ],
    )


def overlap(
    train: Annotated[str, typer.Argument(help="The training table version, e.g. corpus@2.")],
    eval_set: Annotated[str, typer.Argument(metavar="EVAL", help="The eval version, e.g. qa@1.")],
    column: Annotated[str, typer.Option(help="The text column compared.")] = "text",
    eval_column: Annotated[
        str | None, typer.Option(help="The eval table's column, when named otherwise.")
    ] = None,
    threshold: Annotated[float, typer.Option(help=_NEAR_HELP)] = 0.8,
    ngram: Annotated[int, typer.Option(help="Words per shingle.")] = 5,
    num_perm: Annotated[int, typer.Option(help="MinHash permutations.")] = 128,
    max_rate: Annotated[
        float | None, typer.Option(help="Exit 1 when the contaminated share is above this.")
    ] = None,
    executor: _ExecutorOption = "local",
    partitions: _PartitionsOption = None,
    json_: JsonOption = False,
) -> None:
    """Share of EVAL's rows with an exact or near duplicate in TRAIN: test-set contamination.
    With --max-rate it is a gate: exit 1 when the share is above it (before an eval suite or a
    fine-tuning run).

    With --executor ray the search runs as Ray tasks, for tables one machine cannot sketch:
    the train rows then the eval rows cut into --partitions parts, each sketched by a task,
    band keys shuffled and joined between the two sides, candidates verified; the report
    and the verdict are the local run's. Examples:

      opsloop data overlap corpus@2 benchmark@1 --column text --max-rate 0.01
      RAY_ADDRESS=head:6379 opsloop data overlap corpus@2 benchmark@1 --executor ray
    """
    report = command_client().data.overlap(
        train, eval_set, column, eval_column=eval_column, threshold=threshold, ngram=ngram,
        num_perm=num_perm, max_rate=max_rate, executor=executor, partitions=partitions,
    )  # fmt: skip
    if json_:
        print_json(report)
    else:
        check = report["checks"][0]
        verdict = "" if max_rate is None else ("passed: " if check["passed"] else "FAILED: ")
        where = f" (on Ray, {report['partitions']} partitions)" if "partitions" in report else ""
        typer.echo(f"{verdict}{check['message']}{where}")
        by = report["by_method"]
        typer.echo(f"  exact {by['exact']:,}, near {by['near']:,}")
        if report["samples"]:
            print_table(
                ["eval row", "train row", "method", "similarity", "text"],
                [
                    (
                        s["eval_row"],
                        s["train_row"],
                        s["method"],
                        f"{s['similarity']:.3f}",
                        s["text"][:60],
                    )
                    for s in report["samples"][:10]
                ],
            )
    if not report["passed"]:
        raise typer.Exit(1)
