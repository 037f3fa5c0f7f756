"""``bench/dedup.py``'s runs at scale: end to end in one process (``--scale``), through the CLI
with peak memory on short documents (``--memory``), and local vs a local Ray instance
(``--ray``, dedup and then overlap). Run them through ``bench/dedup.py``."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from dedup import python_docs

from opsloop.data.duplicates.engine import NearParams


def _scale_corpus(count: int, seed: int = 9) -> tuple[list[str], int]:
    """``count`` 200-word documents of words drawn from the Python docs' vocabulary: a tenth
    are near copies of an earlier one (4 words replaced, true Jaccard about 0.8) and a
    twentieth exact copies; the number of planted copies is returned too."""
    rng = np.random.default_rng(seed)
    vocab = sorted(set(" ".join(python_docs()).split()))
    docs: list[str] = []
    planted = 0
    for lo in range(0, count, 10_000):
        ids = rng.integers(0, len(vocab), size=(min(10_000, count - lo), 200)).tolist()
        for row in ids:
            roll = rng.random()
            if docs and roll < 0.15:
                planted += 1
                source = docs[int(rng.integers(0, len(docs)))]
                if roll < 0.05:
                    docs.append(source)
                    continue
                words = source.split()
                for spot in rng.integers(0, 200, 4):
                    words[spot] = vocab[int(rng.integers(0, len(vocab)))]
                docs.append(" ".join(words))
            else:
                docs.append(" ".join([vocab[i] for i in row]))
    return docs, planted


def end_to_end_child(count: int) -> None:
    """Run in a fresh process (its peak RSS is its own): build the corpus, then deduplicate
    it as ``opsloop data dedup --threshold 0.5`` does; print the figures as JSON."""
    import json
    import resource

    from opsloop.data.duplicates.engine import deduplicate

    docs, planted = _scale_corpus(count)
    corpus_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    wall, cpu = time.perf_counter(), time.process_time()
    keep, report = deduplicate(docs, near=NearParams(threshold=0.5))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({
        "docs": count, "planted": planted, "removed": int((~keep).sum()),
        "by_method": report["removed"], "checked": report["candidates_checked"],
        "spilled": report["spilled"], "wall": wall, "cpu": cpu,
        "corpus_rss": corpus_rss, "peak_rss": peak,
    }))  # fmt: skip


def end_to_end(count: int) -> dict:
    """Figures of :func:`_end_to_end_child` for ``count`` documents."""
    import json
    import subprocess

    out = subprocess.run(
        [sys.executable, "-W", "ignore", str(Path(__file__).with_name("dedup.py")),
         "--end-to-end-child", str(count)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    figures: dict = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


def _short_corpus(count: int, path: str, seed: int = 10) -> int:
    """Write ``count`` short documents (10 to 30 words of pydoc's topics' vocabulary) to the
    Parquet file ``path`` (columns ``id``, ``text``), 100,000 rows at a time so a corpus of
    ten million never sits in memory: a twentieth are exact copies of an earlier document
    (upper-cased, a full stop added), a tenth near copies (one word appended: true 5-gram
    Jaccard about 0.9). Returns the number of planted copies."""
    from pydoc_data.topics import topics  # not python_docs: its modules vary run to run

    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    vocab = np.array(sorted(set(" ".join(topics.values()).split())), dtype=object)
    docs: list[str] = []  # the originals so far, for copies (short: ~150 bytes each)
    planted = 0
    with pq.ParquetWriter(path, pa.schema([("id", pa.int64()), ("text", pa.string())])) as out:
        for lo in range(0, count, 100_000):
            n = min(100_000, count - lo)
            sizes = rng.integers(10, 31, n)
            words = vocab[rng.integers(0, vocab.size, int(sizes.sum()))].tolist()
            roll, pick = rng.random(n), rng.random(n)
            cuts = np.concatenate([[0], np.cumsum(sizes)]).tolist()
            batch = []
            for i in range(n):
                if docs and roll[i] < 0.15:
                    planted += 1
                    source = docs[int(pick[i] * len(docs))]
                    batch.append(source.upper() + "." if roll[i] < 0.05 else source + " copy")
                else:
                    text = " ".join(words[cuts[i] : cuts[i + 1]])
                    docs.append(text)
                    batch.append(text)
            ids = pa.array(np.arange(lo, lo + n))
            out.write_table(pa.table({"id": ids, "text": pa.array(batch, pa.string())}))
    return planted


def _sample_memory(pid: int, peaks: dict[str, int], done: Callable[[], bool]) -> None:
    """Poll ``/proc/PID/status`` until ``done()``: the largest anonymous and file-backed
    resident sizes seen (memory-mapped spill files count in RSS as file pages, which the
    kernel can drop; anonymous pages it cannot)."""
    while not done():
        try:
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    name, _, value = line.partition(":")
                    if name in ("RssAnon", "RssFile", "RssShmem", "VmHWM"):
                        peaks[name] = max(peaks.get(name, 0), int(value.split()[0]) * 1024)
        except OSError:
            return
        time.sleep(0.1)


def memory(count: int) -> dict:
    """``opsloop data dedup`` through the CLI, as a user runs it, on ``count`` short documents
    (:func:`_short_corpus`, added as a Parquet version in a throw-away ``OPSLOOP_HOME``):
    wall, CPU and peak RSS of the dedup command alone."""
    import json
    import shutil
    import subprocess
    import tempfile
    import threading

    home = tempfile.mkdtemp(prefix="opsloop-bench-dedup-")
    env = {**os.environ, "OPSLOOP_HOME": home}
    opsloop = [sys.executable, "-W", "ignore", "-c", "from opsloop.app.cli import main; main()"]
    try:
        corpus = os.path.join(home, "corpus.parquet")
        planted = _short_corpus(count, corpus)
        subprocess.run([*opsloop, "data", "add", corpus, "--name", "corpus"], env=env,
                       check=True, capture_output=True)  # fmt: skip
        wall = time.perf_counter()
        with open(os.path.join(home, "report.json"), "w+") as out:
            proc = subprocess.Popen([*opsloop, "data", "dedup", "corpus@1", "--json"], env=env,
                                    stdout=out)  # fmt: skip
            peaks: dict[str, int] = {}
            finished = threading.Event()
            poll = threading.Thread(target=_sample_memory, args=(proc.pid, peaks, finished.is_set))
            poll.start()
            _, status, usage = os.wait4(proc.pid, 0)
            finished.set()
            poll.join()
            proc.returncode = os.waitstatus_to_exitcode(status)
            wall = time.perf_counter() - wall
            if proc.returncode:
                raise SystemExit(f"opsloop data dedup exited {proc.returncode}")
            out.seek(0)
            text = out.read()
            try:  # DuckDB's progress bars (describe_table's SUMMARIZE) may come first
                start = text.index("{") if text.startswith("{") else text.index("\n{") + 1
                report = json.JSONDecoder().raw_decode(text[start:])[0]["report"]
            except ValueError:
                raise SystemExit(f"dedup printed no JSON report: {text[:2000]}") from None
        return {
            "docs": count, "planted": planted, "wall": wall,
            "cpu": usage.ru_utime + usage.ru_stime, "peak_rss": usage.ru_maxrss * 1024,
            **peaks, "removed": report["removed"], "spilled": report["spilled"],
        }  # fmt: skip
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _cpu_with_children() -> float:
    """CPU seconds of this process and every live descendant (Ray's raylet and workers: the
    driver's ``process_time`` alone would hide the tasks' work)."""
    import psutil

    me = psutil.Process()
    total = 0.0
    for proc in [me, *me.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.Error:  # a worker that exited meanwhile
            continue
        total += times.user + times.system
    return total


Row = tuple[str, float, float, bool]


def on_ray(count: int, partitions: list[int]) -> tuple[list[Row], list[Row]]:
    """``count`` docs of :func:`_scale_corpus` deduplicated locally, then on a local Ray
    instance (``num_cpus=2``) at each number of ``partitions``: (label, wall, cpu of the
    process tree, same kept rows and report as local); then the overlap of its last tenth
    (eval, with copies of earlier docs) with the rest (train), locally and on Ray at the
    largest number of partitions (same report). The Ray instance is started before the
    clock and warmed with one tiny run, so its start-up is not counted."""
    import ray

    from opsloop.data.duplicates.engine import contamination
    from opsloop.data.duplicates.engine import deduplicate
    from opsloop.data.duplicates.on_ray import deduplicate_on_ray
    from opsloop.data.duplicates.on_ray import overlap_on_ray

    docs, _ = _scale_corpus(count)
    near = NearParams(threshold=0.5)
    rows: list[tuple[str, float, float, bool]] = []
    wall, cpu = time.perf_counter(), _cpu_with_children()
    keep, report = deduplicate(docs, near=near)
    rows.append(("local", time.perf_counter() - wall, _cpu_with_children() - cpu, True))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        deduplicate_on_ray(ray, docs[:200], partitions=2, near=near)  # warm the workers
        for parts in partitions:
            wall, cpu = time.perf_counter(), _cpu_with_children()
            keep_ray, report_ray = deduplicate_on_ray(ray, docs, partitions=parts, near=near)
            wall, cpu = time.perf_counter() - wall, _cpu_with_children() - cpu
            report_ray.pop("partitions")
            same = bool(np.array_equal(keep, keep_ray)) and report_ray == report
            rows.append((f"ray, {parts} partitions", wall, cpu, same))
        train, evaluation = docs[: count - count // 10], docs[count - count // 10 :]
        wall, cpu = time.perf_counter(), _cpu_with_children()
        report = contamination(train, evaluation, near=near)
        overlap = [("overlap, local", time.perf_counter() - wall, _cpu_with_children() - cpu, True)]
        wall, cpu = time.perf_counter(), _cpu_with_children()
        report_ray = overlap_on_ray(ray, train, evaluation, partitions=partitions[-1], near=near)
        wall, cpu = time.perf_counter() - wall, _cpu_with_children() - cpu
        report_ray.pop("partitions")
        overlap.append((f"overlap, ray, {partitions[-1]}", wall, cpu, report_ray == report))
    finally:
        ray.shutdown()
    return rows, overlap


def print_on_ray(count: int, partitions: list[int]) -> None:
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    rows, overlap = on_ray(count, partitions)
    print(f"local vs local Ray (num_cpus=2), {count:,} 200-word docs, exact + near at 0.5; "
          f"overlap: the last tenth (eval) against the rest "
          f"(load average before: {load})")  # fmt: skip
    print(f"{'run':22} {'wall s':>7} {'cpu s':>7}  same kept rows and report")
    for label, wall, cpu, same in rows + overlap:
        print(f"{label:22} {wall:7.1f} {cpu:7.1f}  {same}")
    if len(rows) > 2:
        (_, low_wall, low_cpu, _), (_, high_wall, high_cpu, _) = rows[1], rows[-1]
        added = partitions[-1] - partitions[0]
        print(f"per added partition: {(high_wall - low_wall) / added:+.2f} s wall, "
              f"{(high_cpu - low_cpu) / added:+.2f} s cpu")  # fmt: skip


def print_memory(counts: list[int]) -> None:
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"opsloop data dedup corpus@1 (exact + near at 0.8) on short docs, through the CLI "
          f"(load average before: {load})")  # fmt: skip
    print(f"{'docs':>11} {'wall s':>7} {'cpu s':>7} {'peak RSS':>9} {'B/doc':>6} "
          f"{'anon':>9} {'file':>9}  removed")  # fmt: skip
    for count in counts:
        f = memory(count)
        gib = 2**30
        print(f"{count:11,} {f['wall']:7.1f} {f['cpu']:7.1f} {f['peak_rss'] / gib:8.2f}G "
              f"{f['peak_rss'] / count:6.0f} {f.get('RssAnon', 0) / gib:8.2f}G "
              f"{f.get('RssFile', 0) / gib:8.2f}G  {f['removed']} of {f['planted']:,} planted, "
              f"spilled {f['spilled']}")  # fmt: skip
