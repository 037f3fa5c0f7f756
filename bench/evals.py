"""BLEU and ROUGE over many pairs: opsloop's metrics vs calling sacrebleu / rouge-score directly.

    .venv/bin/python bench/evals.py [--pairs 10000]

The same 10,000 (prediction, reference) pairs of 12-30 words go through:

- ``opsloop.llm.evals.metrics.bleu`` vs ``sacrebleu.sentence_bleu(p, [r])`` per pair (what
  sacrebleu's README shows for sentence scores), and vs one reused ``BLEU`` object;
- ``opsloop.llm.evals.metrics.rouge`` vs ``RougeScorer.score`` per pair (one scorer).

Scores must agree to 1e-9; each line prints both times and the ratio (peer time / ours).
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

_TEXT = (
    "the a model answer question user order refund password reset link page account email "
    "shipping delivery tomorrow today store opens closes receipt days return policy price "
    "customer support team please thank you help can will should is are was not"
)
WORDS = _TEXT.split()


def pairs(n: int) -> tuple[list[str], list[str]]:
    rng = random.Random(3)
    predictions, references = [], []
    for _ in range(n):
        reference = [rng.choice(WORDS) for _ in range(rng.randint(12, 30))]
        prediction = [w if rng.random() < 0.7 else rng.choice(WORDS) for w in reference]
        predictions.append(" ".join(prediction))
        references.append(" ".join(reference))
    return predictions, references


def report(metric: str, ours: float, peer_name: str, peer: float) -> None:
    print(
        f"{metric:<8} opsloop {ours:7.3f}s  {peer_name:<24} {peer:7.3f}s  ratio {peer / ours:5.2f}x"
    )


def timed(fn: Callable[[], list[float]]) -> tuple[float, list[float]]:
    start = time.perf_counter()
    scores = fn()
    return time.perf_counter() - start, scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10_000)
    args = parser.parse_args()
    import sacrebleu
    from rouge_score import rouge_scorer
    from sacrebleu.metrics import BLEU

    from opsloop.llm.evals import metrics

    predictions, references = pairs(args.pairs)
    both = list(zip(predictions, references, strict=True))
    metrics.bleu(predictions[:10], references[:10])  # warm imports for both sides
    metrics.rouge(predictions[:10], references[:10])

    ours, ours_scores = timed(lambda: metrics.bleu(predictions, references))
    naive, naive_scores = timed(
        lambda: [sacrebleu.sentence_bleu(p, [r]).score / 100 for p, r in both]
    )
    scorer = BLEU(effective_order=True)
    reused, _ = timed(lambda: [scorer.sentence_score(p, [r]).score / 100 for p, r in both])
    assert all(abs(a - b) < 1e-9 for a, b in zip(ours_scores, naive_scores, strict=True))
    print(f"{args.pairs:,} pairs")
    report("BLEU", ours, "sacrebleu.sentence_bleu", naive)
    report("BLEU", ours, "sacrebleu BLEU reused", reused)

    rouge = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    ours, ours_scores = timed(lambda: metrics.rouge(predictions, references, "rougeL"))
    peer, peer_scores = timed(lambda: [rouge.score(r, p)["rougeL"].fmeasure for p, r in both])
    assert all(abs(a - b) < 1e-9 for a, b in zip(ours_scores, peer_scores, strict=True))
    report("ROUGE-L", ours, "rouge-score RougeScorer", peer)


if __name__ == "__main__":
    main()
