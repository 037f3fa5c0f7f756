"""Near-duplicate detection: opsloop's MinHash-LSH vs datasketch's ``MinHashLSH`` (issue 26).

    .venv/bin/python bench/dedup.py [--sources 1000] [--unrelated 1000] [--docs 10000]
        [--semantic-docs 20000] [--scale 1000000] [--skip quality throughput semantic]
    .venv/bin/python bench/dedup.py --ray 100000 [--partitions 2 8]
    nice -n 10 .venv/bin/python bench/dedup.py --memory 1000000 2000000 [10000000]
    .venv/bin/python bench/dedup.py --substring 5000

1. Quality. A corpus built here, with ground truth: 200-word documents cut from the Python
   documentation shipped with the standard library (``pydoc_data.topics``, module docstrings)
   and from Faker prose; each source gets one copy edited (word swaps, insertions, deletions,
   character noise, truncation, mixed) until its true 5-gram Jaccard falls to a drawn level,
   plus unrelated documents. A pair is a duplicate when its true Jaccard (computed on the
   shingle sets) is >= 0.5; every pair any tool reports is checked against the true Jaccard,
   so duplicates the generator did not plan (repeated boilerplate in the docs) count too.
   Precision and recall at threshold 0.5 for ours (candidates verified by the true Jaccard,
   the default, and by the MinHash estimate) and datasketch (defaults, and banding tuned for recall,
   both as its LSH answers, unverified, and verified by its own estimate).
2. Hashing throughput: MinHash signatures (128 permutations, 5-word shingles) of ``--docs``
   200-word documents, ours vs datasketch (``MinHash.update_batch``; datasketch hashes a
   sample of 1,000 and is scaled, which is linear).
   Wall time and CPU time (``process_time``: steadier on a shared machine), best of 3.
3. Index memory per document: our band keys vs datasketch's hash tables (tracemalloc).
4. Semantic dedup (SemDeDup) of ``--semantic-docs`` short documents (sentences of the Python
   docs and Faker, a fifth of them copied with light edits: a word dropped or repeated, case,
   punctuation, a filler word): embedding time (all-MiniLM-L6-v2 on the CPU), then k-means
   and the within-cluster pass, against brute force over every pair (blocked matrix products):
   the share of brute-force pairs (cosine > 1 - eps) that fall in one k-means cluster, and
   the precision and recall of the rows SemDeDup drops against the rows brute force drops.
5. ``--scale N``: end to end, ``deduplicate`` (exact and near, threshold 0.5) of N 200-word
   documents (a tenth near copies, a twentieth exact copies) in a fresh process: wall and CPU
   time, peak RSS (the corpus alone, then with the dedup); past 250,000 rows the sketches
   spill to disk.
6. ``--ray N [--partitions 2 8]``: the same corpus deduplicated locally, then on a local
   Ray instance (2 CPUs) at each partition count: wall time, CPU of the whole process tree
   (driver, raylet, workers), and whether the kept rows and report are the local ones. On one
   small machine Ray cannot win: it shows what partitions, the shuffle and the object store
   cost, which a cluster pays back in memory and cores.
7. ``--memory N [N ...]``: ``opsloop data dedup corpus@1 --json`` through the CLI, as a user
   runs it (exact + near at 0.8), on N short documents (10 to 30 words, a twentieth exact
   and a tenth near copies) added as a Parquet version in a throw-away ``OPSLOOP_HOME``:
   wall, CPU and peak RSS of that process (``wait4``), and the largest anonymous and
   file-backed resident sizes seen (spilled sketches are memory maps: file pages the kernel
   can drop). Ten million documents take about 15 minutes on two busy cores.
8. ``--substring N``: exact-substring dedup (suffix array, ``--min-length 100`` bytes) of N
   500-word documents (words drawn from the Python docs) with 50 planted 80-word paragraphs,
   each in a third of the documents: wall and CPU time, MB/s, the peak of memory traced
   per byte of text, and the planted copies cut whole (all but each paragraph's first).
   text-dedup, the peer, is not installed here: ours alone.

Targets (issue 26): precision and recall >= 0.95 at Jaccard >= 0.5; signatures of 10,000
200-word documents in <= 1 s and >= 10x datasketch; <= 64 bytes per document of index.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import tracemalloc
from collections.abc import Callable

import numpy as np

from opsloop.data.duplicates.engine import NearParams
from opsloop.data.duplicates.engine import near_pairs
from opsloop.data.duplicates.lsh import BandIndex
from opsloop.data.duplicates.minhash import MinHasher
from opsloop.data.duplicates.semantic import SemanticParams
from opsloop.data.duplicates.semantic import cluster_labels
from opsloop.data.duplicates.semantic import embed_rows
from opsloop.data.duplicates.semantic import semantic_duplicates
from opsloop.data.duplicates.sketch import Sketch
from opsloop.data.duplicates.sketch import Spill
from opsloop.data.duplicates.substring import SubstringParams
from opsloop.data.duplicates.substring import cut_repeats
from opsloop.data.duplicates.text import normal_form
from opsloop.data.duplicates.text import normal_forms
from opsloop.data.duplicates.text import shingle_hashes

N = 5
LEVELS = [0.2, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95]
EDITS = ["swap", "insert", "delete", "noise", "truncate", "mixed"]


def python_docs() -> list[str]:
    """pydoc's topics and the docstrings of the standard-library modules loaded already
    (importing more could open windows or browsers: ``turtle``, ``antigravity``)."""
    from pydoc_data.topics import topics

    stdlib = [m for n, m in list(sys.modules.items()) if n.split(".")[0] in sys.stdlib_module_names]
    return list(topics.values()) + [m.__doc__ for m in stdlib if getattr(m, "__doc__", None)]


def _chunks(words: list[str], size: int = 200) -> list[list[str]]:
    return [words[i : i + size] for i in range(0, len(words) - size + 1, size)]


def _sources(count: int, rng: random.Random) -> list[list[str]]:
    """200-word chunks of the Python docs (a few hundred), then Faker prose for the rest."""
    docs = _chunks(" ".join(python_docs()).split())
    rng.shuffle(docs)
    return docs[:count] + _faker_docs(max(0, count - len(docs)), rng.randrange(1 << 30))


def _faker_docs(count: int, seed: int) -> list[list[str]]:
    from faker import Faker

    Faker.seed(seed)
    fake = Faker("en_US")
    return [" ".join(fake.paragraphs(nb=12)).split()[:200] for _ in range(count)]


def _shingles(words: list[str]) -> set[bytes]:
    tokens = normal_form(" ".join(words)).split()
    if len(tokens) < N:
        return {b" ".join(tokens)} if tokens else set()
    return {b" ".join(tokens[i : i + N]) for i in range(len(tokens) - N + 1)}


def _jaccard(a: set[bytes], b: set[bytes]) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


def _edit(source: list[str], level: float, kind: str, rng: random.Random) -> list[str]:
    """Edit a copy of ``source`` one step at a time until its Jaccard is <= ``level``."""
    copy, truth = list(source), _shingles(source)
    vocab = [*source, "lorem", "ipsum", "dolor", "amet", "python", "module"]
    while _jaccard(truth, _shingles(copy)) > level and len(copy) > N:
        step = rng.choice(["swap", "insert", "delete", "noise"]) if kind == "mixed" else kind
        i = rng.randrange(len(copy))
        if step == "swap":
            j = rng.randrange(len(copy))
            copy[i], copy[j] = copy[j], copy[i]
        elif step == "insert":
            copy.insert(i, rng.choice(vocab))
        elif step == "delete":
            del copy[i]
        elif step == "noise":  # OCR-style: a character replaced
            w = copy[i]
            k = rng.randrange(len(w))
            copy[i] = w[:k] + rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") + w[k + 1 :]
        else:  # truncate from the end
            copy = copy[: max(N, len(copy) - 5)]
    return copy


def build(sources: int, unrelated: int, seed: int) -> tuple[list[list[str]], dict]:
    rng = random.Random(seed)
    docs = _sources(sources, rng)
    planned = {}
    for i in range(len(docs)):
        copy = _edit(docs[i], rng.choice(LEVELS), rng.choice(EDITS), rng)
        planned[(i, len(docs))] = None
        docs.append(copy)
    docs += _faker_docs(unrelated, seed + 1)
    return docs, planned


def _truth(docs: list[list[str]], pairs: set[tuple[int, int]], sets: list) -> dict:
    return {p: _jaccard(sets[p[0]], sets[p[1]]) for p in pairs}


def ours(docs: list[list[str]], verify: str) -> set[tuple[int, int]]:
    params = NearParams(threshold=0.5, ngram=N, verify=verify)
    with Spill(len(docs)) as spill:
        sketch = Sketch.build([" ".join(d) for d in docs], spill, params)
        pairs = near_pairs(sketch)
        keep = sketch.similarity(pairs[0], sketch, pairs[1]) >= 0.5
    return {(int(a), int(b)) for a, b in pairs[:, keep].T}


def datasketch(docs: list[list[str]], weights: tuple[float, float], verify: bool) -> set:
    from datasketch import MinHash
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=0.5, num_perm=128, weights=weights)
    sketches = []
    for i, d in enumerate(docs):
        m = MinHash(num_perm=128)
        m.update_batch(list(_shingles(d)))
        lsh.insert(i, m)
        sketches.append(m)
    pairs = set()
    for i, m in enumerate(sketches):
        for j in lsh.query(m):
            if j != i and (not verify or m.jaccard(sketches[j]) >= 0.5):
                pairs.add((min(i, j), max(i, j)))
    return pairs


def quality(args: argparse.Namespace) -> list[tuple[str, float, float, int]]:
    docs, planned = build(args.sources, args.unrelated, args.seed)
    sets = [_shingles(d) for d in docs]
    runs = {
        "opsloop (default: exact verify)": ours(docs, "exact"),
        "opsloop (estimate verify)": ours(docs, "estimate"),
        "datasketch defaults": datasketch(docs, (0.5, 0.5), False),
        "datasketch defaults, verified": datasketch(docs, (0.5, 0.5), True),
        "datasketch tuned (0.2, 0.8)": datasketch(docs, (0.2, 0.8), False),
        "datasketch tuned, verified": datasketch(docs, (0.2, 0.8), True),
    }
    every = set(planned) | set().union(*runs.values())
    truth = _truth(docs, every, sets)
    positives = {p for p, j in truth.items() if j >= 0.5}
    rows = []
    for name, found in runs.items():
        hit = len(found & positives)
        rows.append((name, hit / len(found) if found else 1.0, hit / len(positives), len(found)))
    print(f"corpus: {len(docs):,} documents, {len(positives):,} duplicate pairs (J >= 0.5)")
    return rows


def _best(work: Callable[[], object], repeat: int = 3) -> tuple[float, float]:
    """The least wall and CPU seconds of ``repeat`` runs."""
    wall = cpu = float("inf")
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        work()
        wall, cpu = min(wall, time.perf_counter() - w), min(cpu, time.process_time() - c)
    return wall, cpu


def throughput(count: int) -> list[tuple[str, float, float]]:
    """(stage, wall, cpu) for ours, by stage and in all, and for datasketch."""
    rng = random.Random(3)
    words = " ".join(python_docs()).split()
    docs = [" ".join(rng.choice(_chunks(words))) for _ in range(count)]
    normal = normal_forms(docs)
    shingles = shingle_hashes(normal, N)
    rows = [
        ("normalise", *_best(lambda: normal_forms(docs))),
        ("shingle", *_best(lambda: shingle_hashes(normal, N))),
        ("minhash", *_best(lambda: MinHasher(128).signatures(shingles))),
        (
            "opsloop",
            *_best(lambda: MinHasher(128).signatures(shingle_hashes(normal_forms(docs), N))),
        ),
    ]
    from datasketch import MinHash

    sample = docs[:1000]

    def theirs() -> None:
        for d in sample:
            m = MinHash(num_perm=128)
            tokens = d.split()
            m.update_batch(
                [" ".join(tokens[i : i + N]).encode() for i in range(len(tokens) - N + 1)]
            )

    wall, cpu = _best(theirs, 1)
    return [*rows, ("datasketch", wall * count / len(sample), cpu * count / len(sample))]


def _sentences(count: int, rng: random.Random) -> list[str]:
    """Short documents: sentences of the Python docs, then Faker's; a fifth of them copies
    of earlier ones with a light edit."""
    from faker import Faker

    pool = [s.strip() for s in " ".join(python_docs()).split(". ") if 8 <= len(s.split()) <= 40]
    rng.shuffle(pool)
    originals = count - count // 5
    if len(pool) < originals:
        Faker.seed(rng.randrange(1 << 30))
        fake = Faker("en_US")
        pool += [fake.sentence(nb_words=18) for _ in range(originals - len(pool))]
    docs = pool[:originals]
    for _ in range(count - originals):
        words = rng.choice(docs[:originals]).split()
        i = rng.randrange(len(words))
        edit = rng.choice(["drop", "repeat", "case", "filler"])
        if edit == "drop":
            del words[i]
        elif edit == "repeat":
            words.insert(i, words[i])
        elif edit == "case":
            words = [w.upper() if rng.random() < 0.3 else w for w in words]
        else:
            words.insert(i, rng.choice(["really", "also", "just", "indeed"]))
        docs.append(" ".join(words) + rng.choice([".", "!", ""]))
    return docs


def _pairs_above(vectors: np.ndarray, threshold: float, block: int = 2048) -> np.ndarray:
    """Every pair (i < j) with cosine above ``threshold``, by blocked matrix products."""
    found = []
    for lo in range(0, vectors.shape[0], block):
        sims = vectors[lo : lo + block] @ vectors.T
        i, j = np.nonzero(sims > threshold)
        i += lo
        found.append(np.stack([i[i < j], j[i < j]]))
    return np.concatenate(found, axis=1)


def _greedy(pairs: np.ndarray, rows: int) -> set[int]:
    """SemDeDup over all pairs at once: in row order, drop a row close to a kept row."""
    dropped = np.zeros(rows, dtype=bool)
    for i, j in sorted(zip(pairs[0].tolist(), pairs[1].tolist(), strict=True), key=lambda p: p[1]):
        if not dropped[i]:
            dropped[j] = True
    return set(np.flatnonzero(dropped).tolist())


def semantic(count: int, eps: float) -> list[tuple[str, str]]:
    from opsloop.llm.evals.metrics import embed

    docs = _sentences(count, random.Random(7))
    start = time.perf_counter()
    vectors = embed_rows(embed, docs)
    embed_time = time.perf_counter() - start
    params = SemanticParams(eps=eps)
    start = time.perf_counter()
    _, dropped, _ = semantic_duplicates(vectors, np.zeros(count), params)
    ours = time.perf_counter() - start
    start = time.perf_counter()
    pairs = _pairs_above(vectors, 1 - eps)
    truth = _greedy(pairs, count)
    brute = time.perf_counter() - start
    labels = cluster_labels(vectors, params.cluster_count(count), params.seed)
    together = float(np.mean(labels[pairs[0]] == labels[pairs[1]])) if pairs.size else 1.0
    found = set(dropped.tolist())
    both = len(found & truth)
    precision = both / len(found) if found else 1.0
    recall = both / len(truth) if truth else 1.0
    return [
        ("documents", f"{count:,} ({params.cluster_count(count)} k-means clusters, eps {eps})"),
        ("embedding (MiniLM, CPU)", f"{embed_time:.1f} s"),
        ("SemDeDup (k-means + clusters)", f"{ours:.2f} s, {len(found):,} rows dropped"),
        ("brute force (all pairs)", f"{brute:.2f} s, {len(truth):,} rows dropped"),
        ("brute-force pairs in one cluster", f"{together:.3f} of {pairs.shape[1]:,}"),
        ("dropped rows vs brute force", f"precision {precision:.3f}, recall {recall:.3f}"),
    ]


def index_bytes(count: int) -> tuple[float, float]:
    from datasketch import MinHash
    from datasketch import MinHashLSH

    rng = random.Random(4)
    words = " ".join(python_docs()).split()
    docs = [rng.sample(words, 200) for _ in range(count)]
    sig = MinHasher(128).signatures(shingle_hashes([normal_form(" ".join(d)) for d in docs], N))
    ours_bytes = BandIndex.build(sig, *NearParams(0.5).bands()).bytes_per_row
    sketches = []
    for d in docs:
        m = MinHash(num_perm=128)
        m.update_batch([" ".join(d[i : i + N]).encode() for i in range(len(d) - N + 1)])
        sketches.append(m)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    lsh = MinHashLSH(threshold=0.5, num_perm=128)
    for i, m in enumerate(sketches):
        lsh.insert(i, m)
    theirs = (tracemalloc.get_traced_memory()[0] - before) / count
    tracemalloc.stop()
    return ours_bytes, theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--unrelated", type=int, default=1000)
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=26)
    parser.add_argument("--semantic-docs", type=int, default=20_000)
    parser.add_argument("--eps", type=float, default=0.05)
    parser.add_argument("--scale", type=int, default=0, help="end to end on this many docs")
    parser.add_argument("--skip", nargs="*", default=[], help="quality throughput semantic")
    parser.add_argument("--end-to-end-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--ray", type=int, default=0, metavar="DOCS",
        help="local vs a local Ray instance on DOCS docs (then nothing else)",
    )  # fmt: skip
    parser.add_argument("--partitions", type=int, nargs="+", default=[2, 8])
    parser.add_argument(
        "--memory", type=int, nargs="+", default=[], metavar="DOCS",
        help="opsloop data dedup through the CLI on DOCS short docs: peak RSS (then nothing else)",
    )  # fmt: skip
    parser.add_argument(
        "--substring", type=int, default=0, metavar="DOCS",
        help="exact-substring dedup of DOCS 500-word docs (then nothing else)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.substring:
        return print_substring(args.substring)
    import dedup_scale  # the runs at scale (their own module; it takes this one's corpus)

    if args.end_to_end_child:
        return dedup_scale.end_to_end_child(args.end_to_end_child)
    if args.ray:
        return dedup_scale.print_on_ray(args.ray, args.partitions)
    if args.memory:
        return dedup_scale.print_memory(args.memory)
    if args.scale:
        f = dedup_scale.end_to_end(args.scale)
        print(f"end to end, {f['docs']:,} 200-word docs, threshold 0.5, one process: "
              f"{f['wall']:.1f} s wall, {f['cpu']:.1f} s cpu; peak RSS "
              f"{f['peak_rss'] / 2**30:.2f} GiB (corpus alone {f['corpus_rss'] / 2**30:.2f}); "
              f"{f['removed']:,} removed {f['by_method']} of {f['planted']:,} planted; "
              f"{f['checked']:,} candidates checked; spilled {f['spilled']}\n")  # fmt: skip
    if "quality" not in args.skip:
        print(f"{'method':34} {'precision':>9} {'recall':>7} {'pairs':>7}")
        for name, precision, recall, pairs in quality(args):
            print(f"{name:34} {precision:9.3f} {recall:7.3f} {pairs:7,}")
    if "throughput" not in args.skip:
        _throughput(args.docs)
    if "semantic" not in args.skip:
        print()
        for label, value in semantic(args.semantic_docs, args.eps):
            print(f"{label:34} {value}")


def print_substring(count: int, min_length: int = 100) -> None:
    """Section 8 of the module: one run (a suffix array is deterministic work)."""
    import pyarrow as pa

    rng = random.Random(8)
    words = [w for w in " ".join(python_docs()).split() if len(w) <= 20]  # no rule lines
    paragraphs = [" ".join(chunk) for chunk in _chunks(words, 80)[:50]]
    docs, planted = [], 0
    for i in range(count):
        doc = [rng.choice(words) for _ in range(500)]
        if i % 3 == 0:
            doc.insert(rng.randrange(500), paragraphs[i % 50])
            planted += i >= 150  # each paragraph's first copy (rows 0 to 147) stays
        docs.append(" ".join(doc))
    column = pa.array(docs, pa.string())
    size = column.nbytes - 4 * (count + 1)  # the text, without Arrow's offsets
    tracemalloc.start()
    wall, cpu = time.perf_counter(), time.process_time()
    cut = cut_repeats([column], np.ones(count, bool), SubstringParams(min_length))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    texts = dict(zip(cut.rows.tolist(), cut.texts.to_pylist(), strict=True))
    gone = sum(
        paragraphs[i % 50] not in texts.get(i, docs[i]) for i in range(150, count, 3)
    )  # a row cut empty would be in cut.dropped: none is, at 500 words
    print(f"substring dedup, {count:,} 500-word docs ({size / 1e6:.1f} MB), min length "
          f"{min_length} bytes: {wall:.2f} s wall, {cpu:.2f} s cpu ({size / 1e6 / cpu:.1f} MB "
          f"a CPU second); peak traced {peak / size:.1f} bytes a byte of text; "
          f"{cut.report['spans_removed']:,} spans cut; planted copies gone {gone:,} "
          f"of {planted:,}")  # fmt: skip


def _throughput(docs: int) -> None:
    stages = throughput(docs)
    print(f"\nsignatures of {docs:,} 200-word docs, 128 permutations (best of 3; "
          "datasketch scaled from 1,000)")  # fmt: skip
    print(f"{'stage':12} {'wall s':>7} {'cpu s':>7}")
    for stage, wall, cpu in stages:
        print(f"{stage:12} {wall:7.3f} {cpu:7.3f}")
    (_, wall, cpu), (_, their_wall, their_cpu) = stages[-2], stages[-1]
    print(f"opsloop vs datasketch: {their_wall / wall:.1f}x wall, {their_cpu / cpu:.1f}x cpu")
    ours_index, their_index = index_bytes(5000)
    print(f"index at threshold 0.5, 128 permutations: opsloop {ours_index} B/doc, "
          f"datasketch {their_index:,.0f} B/doc")  # fmt: skip


if __name__ == "__main__":
    main()
