"""LLM evals: metrics against their reference libraries, the judge's reply parsing, and suites
run end to end against a tiny transformer trained in the test and served behind an
OpenAI-compatible endpoint, on local and HTTP backends over SQLite and PostgreSQL."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from opsloop.errors import Conflict
from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.llm.evals import metrics
from opsloop.llm.evals.judge import parse_verdict
from opsloop.llm.evals.suite import load_suite
from tests.cli.support import in_process as opsloop_in_process
from tests.llm.tiny_llm import GOOD_PROMPT
from tests.llm.tiny_llm import QA
from tests.llm.tiny_llm import RUDE_PROMPT
from tests.llm.tiny_llm import TinyLM
from tests.llm.tiny_llm import TinyLMServer


@pytest.fixture(scope="module")
def tiny_llm() -> Iterator[str]:
    with TinyLMServer(TinyLM()) as server:
        yield server.base_url


def test_bleu_and_rouge_match_the_reference_libraries() -> None:
    import sacrebleu
    from rouge_score import rouge_scorer

    predictions = ["the cat sat on the mat", "a quick brown fox", "hello there world"]
    references = ["the cat is on the mat", "the quick brown fox jumps", "goodbye"]
    expected_bleu = [
        sacrebleu.sentence_bleu(p, [r]).score / 100
        for p, r in zip(predictions, references, strict=True)
    ]
    assert metrics.bleu(predictions, references) == pytest.approx(expected_bleu)
    rng = random.Random(5)
    words = [
        "the",
        "cats",
        "running",
        "runs",
        "ran",
        "hat",
        "mat",
        "sat",
        "on",
        "a",
        "quick",
        "brown",
        "fox",
        "jumps",
    ]
    predictions += [" ".join(rng.choices(words, k=rng.randint(0, 25))) for _ in range(300)]
    references += [" ".join(rng.choices(words, k=rng.randint(1, 25))) for _ in range(300)]
    for kind in ("rouge1", "rouge2", "rougeL"):  # rougeL is our bit-parallel LCS
        scorer = rouge_scorer.RougeScorer([kind], use_stemmer=True)
        pairs = zip(predictions, references, strict=True)
        expected = [scorer.score(r, p)[kind].fmeasure for p, r in pairs]
        assert metrics.rouge(predictions, references, kind) == expected
    with pytest.raises(InvalidInput, match="2 predictions but 1 references"):
        metrics.bleu(["a", "b"], ["a"])
    with pytest.raises(InvalidInput, match="unknown ROUGE variant"):
        metrics.rouge(["a"], ["a"], "rougeX")


def test_semantic_similarity_and_groundedness() -> None:
    close, far = metrics.semantic_similarity(
        ["A cat was sitting on a mat.", "Stock prices fell sharply."],
        ["The cat sat on the mat.", "The cat sat on the mat."],
    )
    assert close > 0.8 > 0.3 > far
    context = (
        "Our store opens at 9 am and closes at 6 pm. Returns are accepted within 30 days "
        "with a receipt."
    )
    answer = (
        "Returns are accepted within 30 days if you have a receipt. The store opens at 9 am. "
        "Every customer gets a free laptop on their birthday."
    )
    (result,) = metrics.groundedness([answer], [context])
    assert result.score == pytest.approx(2 / 3)
    assert result.unsupported == ["Every customer gets a free laptop on their birthday."]


def test_judge_replies_are_read_leniently() -> None:
    assert parse_verdict('{"score": 5, "reason": "right"}').score == 1.0
    assert parse_verdict('Sure! ```json\n{"score": 3, "reason": "meh"}\n```').score == 0.5
    assert parse_verdict("Score: 2 - mostly wrong").score == 0.25
    assert parse_verdict("4").score == 0.75
    empty = parse_verdict("I cannot grade this.")
    assert empty.score is None and "held no 1-5 score" in empty.reason


def _suite(base_url: str, name: str = "qa-suite", **extra: Any) -> dict[str, Any]:
    provider = {"id": "openai:tiny", "base_url": base_url, "config": {"max_tokens": 24}}
    return {
        "name": name,
        "threshold": 0.5,
        "concurrency": 3,
        "prompts": ["qa@1", "qa@2"],
        "providers": [provider],
        "judge": provider,
        "defaults": {"assert": [{"type": "latency", "threshold": 30_000}]},
        "tests": [
            {
                "description": "capital of France",
                "vars": {
                    "question": "What is the capital of France?",
                    "expected": QA["What is the capital of France?"],
                },
                "assert": [
                    {"type": "icontains", "value": "paris"},
                    {"type": "similar", "value": "{{ expected }}", "threshold": 0.8},
                    {"type": "rouge", "value": "{{ expected }}", "threshold": 0.9},
                    {"type": "llm-rubric", "value": "The answer is correct."},
                ],
            },
            {
                "data": "qa-cases@1",
                "assert": [{"type": "bleu", "value": "{{ expected }}", "threshold": 0.9}],
            },
        ],
        **extra,
    }


def _seed(client: Any, tmp_path: Path) -> None:
    client.prompts.create("qa", text=GOOD_PROMPT)
    client.prompts.create("qa", text=RUDE_PROMPT)
    rows = [{"question": q, "expected": a} for q, a in list(QA.items())[1:]]
    cases = tmp_path / "cases.jsonl"
    cases.write_text("".join(json.dumps(r) + "\n" for r in rows))
    client.data.add(cases, "qa-cases")


def test_suite_runs_stores_compares_and_gates_labels(
    client: Any, tiny_llm: str, tmp_path: Path
) -> None:
    _seed(client, tmp_path)
    run = client.evals.run(_suite(tiny_llm))
    assert run.total == 8 and run.passed_count == 4 and run.passed  # 0.5 >= threshold 0.5
    assert run.by_prompt == {"qa@1 | openai:tiny": 1.0, "qa@2 | openai:tiny": 0.0}
    assert run.comparison is None
    good = next(r for r in run.results if r.prompt == "qa@1" and r.case == "1")
    assert good.output == QA["What is the capital of France?"] and good.score == pytest.approx(1.0)
    assert {a["type"] for a in good.assertions} == {
        "latency",
        "icontains",
        "similar",
        "rouge",
        "llm-rubric",
    }
    rude = next(r for r in run.results if r.prompt == "qa@2" and r.case == "1")
    assert rude.output == "No." and not rude.passed
    judged = next(a for a in rude.assertions if a["type"] == "llm-rubric")
    assert judged["score"] == 0.0 and "judge" in judged["reason"]
    data_cases = [r for r in run.results if r.case.startswith("2.")]
    assert len(data_cases) == 6 and all(r.passed == (r.prompt == "qa@1") for r in data_cases)

    spans = client.traces.list(tags=["eval"], prompt="qa@1").items
    assert len(spans) == 4 and all(t.name == "eval qa-suite" for t in spans)
    assert good.trace_id in {t.trace_id for t in spans}

    again = client.evals.run(_suite(tiny_llm), threshold=0.9)
    assert not again.passed and again.comparison is not None
    assert again.comparison.previous_run_id == run.run_id and again.comparison.regressions == []
    assert [r.run_id for r in client.evals.runs("qa-suite")] == [again.run_id, run.run_id]
    assert client.evals.get(run.run_id).results[0].prompt == "qa@1"
    assert client.evals.get(run.run_id[:8]).run_id == run.run_id  # as the tool prints it

    client.evals.require("qa", "production", suite="qa-suite", min_pass_rate=1.0)
    assert client.evals.rules("qa") == {"production": {"suite": "qa-suite", "min_pass_rate": 1.0}}
    assert client.prompts.set_label("qa", 1, "production").labels == ["production"]
    with pytest.raises(Conflict, match=r"requires qa@2 to pass eval suite 'qa-suite' at 100%"):
        client.prompts.set_label("qa", 2, "production")
    third = client.prompts.create("qa", text="Q: {{ question }} please")
    with pytest.raises(Conflict, match="none has tried qa@3"):
        client.prompts.set_label("qa", third.version, "production")
    with pytest.raises(Conflict):
        client.prompts.create("qa", text="Q: {{ question }}!", labels=["production"])
    assert client.prompts.get("qa", cache_ttl=0).version == 1  # production never moved
    client.prompts.set_label("qa", 2, "staging")  # labels without a rule move freely
    client.evals.unrequire("qa", "production")
    client.prompts.set_label("qa", 2, "production")


def test_bad_suites_are_refused_before_any_call(
    sqlite_url: str, tiny_llm: str, tmp_path: Path
) -> None:
    import opsloop

    client = opsloop.Client(database_url=sqlite_url, blob_url=str(tmp_path / "blobs"))
    _seed(client, tmp_path)
    typo = _suite(tiny_llm)
    typo["tests"][0]["assert"][0]["type"] = "contians"
    with pytest.raises(
        InvalidInput, match=r"unknown assertion type 'contians'; did you mean 'contains'"
    ):
        load_suite(typo)
    with pytest.raises(InvalidInput, match="give exactly one of text or messages"):
        load_suite(_suite(tiny_llm) | {"prompts": [{"id": "x"}]})
    missing_var = _suite(tiny_llm) | {
        "prompts": [{"id": "inline", "text": "{{ question }} {{ tone }}"}]
    }
    with pytest.raises(InvalidInput, match=r"needs variable.s. tone"):
        client.evals.run(missing_var)
    with pytest.raises(NotFound):
        client.evals.run(_suite(tiny_llm) | {"prompts": ["ghost@1"]})
    with pytest.raises(InvalidInput, match="none of openai:MODEL, model:NAME@REF and python"):
        client.evals.run(_suite(tiny_llm) | {"providers": [{"id": "tiny"}]})
    with pytest.raises(InvalidInput, match="needs a judge"):
        client.evals.run(_suite(tiny_llm) | {"judge": None})
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("prompts: [unclosed")
    with pytest.raises(InvalidInput, match="not valid YAML"):
        load_suite(bad_yaml)
    assert client.evals.runs() == []  # nothing refused above left a run behind
    dead = _suite(tiny_llm, prompts=["qa@1"]) | {
        "providers": [{"id": "openai:tiny", "base_url": "http://127.0.0.1:9/v1", "timeout_s": 2}],
        "judge": None,
        "tests": [{"vars": {"question": "hi"}, "assert": [{"type": "contains", "value": "x"}]}],
    }
    failed = client.evals.run(dead)
    assert failed.passed_count == 0 and "Connection" in (failed.results[0].error or "")
    client.close()


def test_cli_exit_codes(tiny_llm: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import opsloop

    client = opsloop.Client()
    _seed(client, tmp_path)
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump(_suite(tiny_llm)))
    in_process = opsloop_in_process(capsys)

    def run(*args: str, code: int = 0) -> str:
        return in_process(*args, code=code).output

    out = run("eval", "run", str(suite))
    assert "PASSED suite qa-suite: 4/8 cases passed" in out and "failing cases" in out
    assert "FAILED" in run("eval", "run", str(suite), "--threshold", "0.9", code=1)
    runs = json.loads(run("eval", "list", "--json"))
    assert len(runs) == 2 and runs[0]["comparison"]["regressions"] == []
    assert "qa@2 | openai:tiny" in run("eval", "show", runs[0]["run_id"])
    run("eval", "require", "qa", "production", "--suite", "qa-suite")
    assert "requires qa@2 to pass" in run("prompts", "label", "qa", "2", "production", code=4)
    suite.write_text(suite.read_text().replace("icontains", "icontain"))
    # The installed command, once: a bad suite is exit code 2 and one line, no traceback.
    cli = str(Path(sys.executable).with_name("opsloop"))
    done = subprocess.run(
        [cli, "eval", "run", str(suite)], capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "did you mean 'icontains'" in done.stderr and "Traceback" not in done.stderr
    client.close()
