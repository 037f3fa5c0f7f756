"""PII detection: opsloop's recognizers vs Presidio's default ``AnalyzerEngine`` (issue 23).

    .venv/bin/python bench/pii.py [--mb 10] [--presidio-mb 0.5] [--docs 1000] [--seed 23]

Presidio runs as shipped (every predefined recognizer) on a blank English spaCy pipeline
(``opsloop.governance.pii_presidio``: the pipeline named by a path, so nothing is downloaded,
and tldextract reading its bundled suffix list instead of fetching one); nothing else is
changed. Both tools see the same text.

1. Throughput of ``opsloop data scan --pii`` itself (``scan_table``: DuckDB streams the JSONL
   version, every text column goes through the detector) on a Faker-generated JSONL corpus of
   ``--mb`` MB: prose with names, e-mails, phones, cards, IBANs, SSNs, IPs and look-alike
   numbers (order ids, dates, times, ISBNs, amounts). Presidio runs the same scan on the
   corpus's first ``--presidio-mb`` MB (at ~10-15 ms a document on 2 cores, the whole corpus
   would take many minutes; its cost per document does not depend on the corpus size), once
   with every recognizer (its default) and once asked for our seven entities only.
2. Precision and recall on ``--docs`` labelled documents (a different seed): every inserted
   value's span is known from generation. A prediction is correct when it overlaps a labelled
   span of the same entity; a label is found when a prediction of its entity overlaps it.
   Presidio is asked for the same seven entities. Names are inserted half after a cue ("Dear
   X", "Signed by X", "Contact: X"), half bare ("X called about..."): with no NER model (a
   blank pipeline for Presidio, none at all for us) a bare name in prose is missed by both.

Target (issue 23): ``data scan --pii`` >= 10x faster than Presidio, with the same or better
recall; report precision and recall for both.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ENTITIES = [
    "PERSON",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "IBAN_CODE",
    "US_SSN",
    "IP_ADDRESS",
]
_NAME_CUED = ["Dear {v},", "Signed by {v}.", "Contact: {v}.", "Hi {v}, thanks for writing."]
_NAME_BARE = [
    "{v} called about the invoice.",
    "Please ask {v} to confirm.",
    "The account belongs to {v}.",
    "Yesterday {v} wrote back.",
]
_TEMPLATES = {
    "EMAIL_ADDRESS": ["Write to {v} for details.", "Reply-to: {v}", "cc {v} on this."],
    "PHONE_NUMBER": ["Call me at {v} after five.", "Phone: {v}", "mobile {v}"],
    "CREDIT_CARD": ["Card {v} was charged twice.", "pay with {v} please", "CC: {v}"],
    "IBAN_CODE": ["Refund to {v} by Friday.", "IBAN {v}", "transfer to account {v}"],
    "US_SSN": ["SSN on file: {v}.", "social security number {v}"],
    "IP_ADDRESS": ["Login from {v} failed.", "client ip {v}"],
}
_IBAN_LOCALES = ["de_DE", "fr_FR", "en_GB", "nl_NL", "es_ES", "it_IT"]


class Generator:
    """Documents of Faker prose with PII inserted; labels are (start, end, entity)."""

    def __init__(self, seed: int) -> None:
        from faker import Faker

        Faker.seed(seed)
        self.rng = random.Random(seed)
        self.fake = Faker(["en_US", "en_GB", *[x for x in _IBAN_LOCALES if x != "en_GB"]])
        self.us = self.fake["en_US"]

    def value(self, entity: str) -> str:
        us, rng = self.us, self.rng
        if entity == "PERSON":
            return us.name()
        if entity == "EMAIL_ADDRESS":
            return us.email()
        if entity == "PHONE_NUMBER":
            return (us if rng.random() < 0.7 else self.fake["en_GB"]).phone_number()
        if entity == "CREDIT_CARD":
            card = us.credit_card_number()
            if len(card) == 16 and rng.random() < 0.3:
                card = " ".join(card[i : i + 4] for i in range(0, 16, 4))
            return card
        if entity == "IBAN_CODE":
            iban = self.fake[rng.choice(_IBAN_LOCALES)].iban()
            if rng.random() < 0.3:
                iban = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
            return iban
        if entity == "US_SSN":
            return us.ssn()
        return us.ipv4_public() if rng.random() < 0.8 else us.ipv6()

    def distractor(self) -> str:
        us, rng = self.us, self.rng
        return rng.choice(
            [
                lambda: f"Order {us.random_number(digits=10, fix_len=True)} shipped {us.date()}.",
                lambda: f"Meeting at {us.time()} in room {rng.randint(1, 999)}.",
                lambda: (
                    f"ISBN {us.isbn13()} costs ${rng.randint(1, 9999)}.{rng.randint(0, 99):02d}."
                ),
                lambda: f"Tracking {us.ean13()} from zip {us.zipcode()}.",
                lambda: (
                    f"Version {rng.randint(0, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 99)} is out."
                ),
            ]
        )()

    def document(self) -> tuple[str, list[tuple[int, int, str]]]:
        parts: list[str] = []
        labels: list[tuple[int, int, str]] = []
        pos = 0
        pieces: list[tuple[str, str | None, str | None]] = []
        for _ in range(self.rng.randint(1, 3)):
            entity = self.rng.choice(ENTITIES)
            if entity == "PERSON":
                template = self.rng.choice(_NAME_CUED if self.rng.random() < 0.5 else _NAME_BARE)
            else:
                template = self.rng.choice(_TEMPLATES[entity])
            pieces.append((template, entity, self.value(entity)))
        pieces += [(self.fake.sentence(), None, None) for _ in range(self.rng.randint(1, 3))]
        pieces.append((self.distractor(), None, None))
        self.rng.shuffle(pieces)
        for template, entity, value in pieces:
            if entity is None:
                text = template
            else:
                before, _, after = template.partition("{v}")
                text = before + value + after
                labels.append((pos + len(before), pos + len(before) + len(value), entity))
            parts.append(text)
            pos += len(text) + 1
        return " ".join(parts), labels


def write_corpus(path: Path, megabytes: float, seed: int) -> int:
    gen = Generator(seed)
    limit = int(megabytes * 1e6)
    size = docs = 0
    with path.open("w") as fh:
        while size < limit:
            text, _ = gen.document()
            line = json.dumps({"id": docs, "text": text}) + "\n"
            fh.write(line)
            size += len(line.encode())
            docs += 1
    return docs


def prefix(src: Path, dst: Path, megabytes: float) -> None:
    limit = int(megabytes * 1e6)
    size = 0
    with src.open() as fh, dst.open("w") as out:
        for line in fh:
            if size >= limit:
                break
            out.write(line)
            size += len(line.encode())


def time_scan(path: Path, engine: str, entities: list[str] | None) -> tuple[float, dict[str, Any]]:
    from opsloop.data.pii_scan import detector_for
    from opsloop.data.pii_scan import scan_table

    detector_for(entities, engine)  # building Presidio's engine (~1 s) is not the scan
    start = time.perf_counter()
    report = scan_table([str(path)], "jsonl", entities, engine=engine)
    return time.perf_counter() - start, report


def score(
    find: Callable[[str], list[Any]], docs: list[tuple[str, list[tuple[int, int, str]]]]
) -> dict[str, dict[str, float]]:
    counts = {e: {"pred": 0, "correct": 0, "gold": 0, "found": 0} for e in ENTITIES}
    for text, labels in docs:
        preds = [f for f in find(text) if f.entity in counts]
        for f in preds:
            c = counts[f.entity]
            c["pred"] += 1
            c["correct"] += any(e == f.entity and f.start < b and a < f.end for a, b, e in labels)
        for a, b, e in labels:
            c = counts[e]
            c["gold"] += 1
            c["found"] += any(f.entity == e and f.start < b and a < f.end for f in preds)
    total = {k: sum(c[k] for c in counts.values()) for k in ("pred", "correct", "gold", "found")}
    out = {}
    for name, c in [*counts.items(), ("all (micro)", total)]:
        out[name] = {
            "precision": c["correct"] / c["pred"] if c["pred"] else float("nan"),
            "recall": c["found"] / c["gold"] if c["gold"] else float("nan"),
            "gold": c["gold"],
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mb", type=float, default=10.0, help="Corpus size for our scan (MB).")
    parser.add_argument(
        "--presidio-mb", type=float, default=0.5, help="Prefix Presidio scans (MB)."
    )
    parser.add_argument("--docs", type=int, default=1000, help="Labelled documents.")
    parser.add_argument("--seed", type=int, default=23)
    args = parser.parse_args()

    from opsloop.governance.pii import PiiDetector
    from opsloop.governance.pii_presidio import PresidioDetector

    with tempfile.TemporaryDirectory(prefix="opsloop-bench-pii-") as tmp:
        corpus, head = Path(tmp) / "corpus.jsonl", Path(tmp) / "head.jsonl"
        start = time.perf_counter()
        docs = write_corpus(corpus, args.mb, args.seed)
        prefix(corpus, head, args.presidio_mb)
        print(f"corpus: {corpus.stat().st_size / 1e6:.1f} MB, {docs:,} documents "
              f"(generated in {time.perf_counter() - start:.1f} s); Presidio's prefix "
              f"{head.stat().st_size / 1e6:.2f} MB")  # fmt: skip

        print("\n1. throughput of `data scan --pii` (DuckDB read + detection), MB/s")
        runs = [
            ("opsloop, 7 entities", corpus, "opsloop", None),
            ("opsloop, 7 entities, on Presidio's prefix", head, "opsloop", None),
            ("Presidio default (every recognizer)", head, "presidio", None),
            ("Presidio, the same 7 entities", head, "presidio", ENTITIES),
        ]
        rates = {}
        for name, path, engine, entities in runs:
            seconds, report = time_scan(path, engine, entities)
            mb = path.stat().st_size / 1e6
            rates[name] = mb / seconds
            found = sum(report["found"].values())
            print(f"  {name:<45} {mb:7.2f} MB {seconds:8.2f} s {mb / seconds:9.3f} MB/s  "
                  f"{report['rows_with_pii']:,} rows with PII, {found:,} findings")  # fmt: skip
        ours = rates["opsloop, 7 entities"]
        for peer in ("Presidio default (every recognizer)", "Presidio, the same 7 entities"):
            print(f"  ratio vs {peer}: {ours / rates[peer]:.0f}x (target >= 10x)")

    gen = Generator(args.seed + 1)
    labelled = [gen.document() for _ in range(args.docs)]
    print(f"\n2. precision / recall on {args.docs:,} labelled documents "
          f"({sum(len(x[1]) for x in labelled):,} labelled values)")  # fmt: skip
    ours_d, presidio_d = PiiDetector(ENTITIES), PresidioDetector(ENTITIES)
    results = {
        "opsloop": score(ours_d.find, labelled),
        "Presidio": score(presidio_d.find, labelled),
    }
    print(f"  {'entity':<14} {'n':>5} | {'opsloop P':>9} {'R':>6} | {'Presidio P':>10} {'R':>6}")
    for entity in [*ENTITIES, "all (micro)"]:
        a, b = results["opsloop"][entity], results["Presidio"][entity]
        print(f"  {entity:<14} {a['gold']:>5} | {a['precision']:>9.3f} {a['recall']:>6.3f} | "
              f"{b['precision']:>10.3f} {b['recall']:>6.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
