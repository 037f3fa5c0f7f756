"""``opsloop data scan NAME@N --pii`` and the ``no_pii`` expectation, on real dataset versions
(CSV, JSON lines, Parquet), as a user runs them, with the network blocked throughout."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from faker import Faker

from tests.finetune.support import cli
from tests.no_network import network_attempts
from tests.no_network import no_network  # noqa: F401
from tests.no_network import no_network_env  # noqa: F401

OPSLOOP = [str(Path(sys.executable).with_name("opsloop"))]
Run = Callable[..., subprocess.CompletedProcess[str]]


def run(env: dict[str, str], *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    """The installed command, where its exit code and one-line error are the point."""
    done = subprocess.run([*OPSLOOP, *args], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == code, done.stderr + done.stdout
    return done


@pytest.fixture
def here(capsys: pytest.CaptureFixture[str]) -> Run:
    """``opsloop ARGS`` in this process (no interpreter start and imports per command), shaped
    like ``run``'s answer; tests that use it block the network here with ``no_network``."""

    def run_here(*args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        capsys.readouterr()
        exit_code, out = cli(*args)
        done = subprocess.CompletedProcess(args, exit_code, out, capsys.readouterr().err)
        assert done.returncode == code, done.stderr + done.stdout
        return done

    return run_here


@pytest.fixture
def people(tmp_path: Path) -> tuple[pd.DataFrame, Path]:
    """200 customers with names, e-mails, phones and cards, and a free-text column where
    every tenth row holds an IBAN."""
    Faker.seed(7)
    fake = Faker("en_US")
    rows = []
    for i in range(200):
        note = f"refund to {fake['en_US'].iban()} please" if i % 10 == 3 else fake.sentence()
        rows.append(
            {
                "id": i,
                "customer_name": fake.name(),
                "email": fake.email(),
                "phone": fake.phone_number(),
                "card": int(fake.credit_card_number("visa16")),
                "note": note,
                "score": fake.pyfloat(min_value=0, max_value=1),
            }
        )
    frame = pd.DataFrame(rows)
    path = tmp_path / "people.csv"
    frame.to_csv(path, index=False)
    return frame, path


def _entities(report: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {
        c["column"]: {e: hit["rows"] for e, hit in c["entities"].items()}
        for c in report["columns"]
        if c["entities"]
    }


def test_scan_reports_entities_per_column_with_masked_samples(
    tmp_path: Path,
    people: tuple[pd.DataFrame, Path],
    here: Run,
    no_network: list[str],  # noqa: F811
) -> None:
    frame, csv = people
    jsonl, parquet = tmp_path / "people.jsonl", tmp_path / "people.parquet"
    frame.to_json(jsonl, orient="records", lines=True)
    frame.to_parquet(parquet)
    for path, name in ((csv, "csv"), (jsonl, "jsonl"), (parquet, "pq")):
        here("data", "add", str(path), "-n", name)
        report = json.loads(here("data", "scan", f"{name}@1", "--pii", "--json").stdout)
        assert report["version"] == f"{name}@1" and report["rows"] == 200
        assert _entities(report) == {
            "customer_name": {"PERSON": 200},
            "email": {"EMAIL_ADDRESS": 200},
            "phone": {"PHONE_NUMBER": 200},
            "card": {"CREDIT_CARD": 200},  # a number column is scanned too
            "note": {"IBAN_CODE": 20},
        }, name
        assert report["skipped"] == ["score"] and report["rows_with_pii"] == 200
        note = next(c for c in report["columns"] if c["column"] == "note")
        assert [s["row"] for s in note["entities"]["IBAN_CODE"]["samples"]] == [3, 13, 23]

    shown = here("data", "scan", "csv@1", "--pii", "--samples", "5").stdout
    assert "customer_name" in shown and "EMAIL_ADDRESS" in shown and "note: PERSON" in shown
    first = frame.iloc[0]
    local, _, domain = first["email"].partition("@")
    assert f"0: {local[0]}***@{domain[0]}***." in shown  # masked, never the value itself
    for column in ("customer_name", "email", "phone", "card"):
        for value in frame[column].head(5).astype(str):
            assert value not in shown, value
    only = json.loads(
        here("data", "scan", "csv", "--pii", "-e", "email", "-e", "IBAN", "--json").stdout
    )
    assert only["entities"] == ["EMAIL_ADDRESS", "IBAN_CODE"]
    assert _entities(only) == {"email": {"EMAIL_ADDRESS": 200}, "note": {"IBAN_CODE": 20}}
    assert no_network == []


@pytest.mark.slow
def test_scan_with_presidio_engine(
    people: tuple[pd.DataFrame, Path],
    here: Run,
    no_network: list[str],  # noqa: F811
) -> None:
    frame, csv = people
    small = csv.with_name("small.csv")
    frame.head(20).to_csv(small, index=False)
    here("data", "add", str(small), "-n", "small")
    report = json.loads(
        here("data", "scan", "small", "--pii", "--engine", "presidio",
             "-e", "EMAIL_ADDRESS", "-e", "IBAN_CODE", "--json").stdout
    )  # fmt: skip
    assert report["engine"] == "presidio"
    assert _entities(report) == {"email": {"EMAIL_ADDRESS": 20}, "note": {"IBAN_CODE": 2}}
    assert no_network == []


def test_scan_bad_input_is_one_line(
    folder: Path,
    people: tuple[pd.DataFrame, Path],
    here: Run,
    no_network: list[str],  # noqa: F811
    no_network_env: dict[str, str],  # noqa: F811
) -> None:
    env = no_network_env
    here("data", "add", str(people[1]), "-n", "people")
    here("data", "add", str(folder), "-n", "pets")
    done = run(env, "data", "scan", "nope@1", "--pii", code=3)  # the installed command
    assert "dataset 'nope' does not exist" in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert network_attempts(env) == []
    cases = [
        (("people@9", "--pii"), 3, "people@9"),
        (("people@1",), 2, "--pii"),
        (("people@1", "--pii", "-e", "PASSPORT"), 2, "known: IBAN_CODE, CREDIT_CARD, US_SSN"),
        (("people@1", "--pii", "--engine", "spacy"), 2, "choose opsloop or presidio"),
        (("pets@1", "--pii"), 2, "is not a table"),
    ]
    for args, code, message in cases:
        done = here("data", "scan", *args, code=code)
        assert message in done.stderr, (args, done.stderr)
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert no_network == []


def test_no_pii_expectation_fails_an_add_and_lets_a_clean_one_through(
    tmp_path: Path,
    people: tuple[pd.DataFrame, Path],
    here: Run,
    no_network: list[str],  # noqa: F811
) -> None:
    frame, csv = people
    expect = tmp_path / "expect.yaml"
    expect.write_text("no_pii: [EMAIL_ADDRESS, CREDIT_CARD, IBAN]\n")
    failed = here("data", "add", str(csv), "-n", "people", "--expect", str(expect), code=1)
    assert "validation FAILED" in failed.stdout and "no_pii: 200 rows with PII" in failed.stdout
    assert "200 EMAIL_ADDRESS in email" in failed.stdout and "20 IBAN_CODE in note" in failed.stdout
    shown = json.loads(here("data", "show", "people@1", "--json").stdout)
    assert shown["version"]["validation_status"] == "failed"

    clean = tmp_path / "clean.csv"
    frame[["id", "note", "score"]].assign(note="no personal data here").to_csv(clean, index=False)
    passed = here("data", "add", str(clean), "-n", "clean", "--expect", str(expect))
    assert "validation passed" in passed.stdout

    expect.write_text("no_pii: [EMAIL_ADDRESS, PASSPORT]\n")
    bad = here("data", "add", str(clean), "-n", "other", "--expect", str(expect), code=2)
    assert "no_pii: unknown PII entity 'PASSPORT'; known: IBAN_CODE, CREDIT_CARD" in bad.stderr
    assert bad.stderr.count("\n") == 1
    assert "other" not in here("data", "list").stdout  # refused before anything was added
    assert no_network == []


def test_no_pii_report_stores_only_masked_values(
    client: Any,
    people: tuple[pd.DataFrame, Path],
    no_network: list[str],  # noqa: F811
) -> None:
    """Through the SDK, locally and over HTTP (a loopback server): the stored validation
    report names rows, columns and entities, and holds no found value in full."""
    frame, csv = people
    result = client.data.add(csv, "people", expectations={"no_pii": ["phone", "PERSON"]})
    assert result.version.validation_status == "failed"
    check = next(c for c in result.validation["checks"] if c["check"] == "no_pii")
    assert check["failing_rows"] == 200
    assert check["sample"][0]["row"] == 0
    assert {s["entity"] for s in check["sample"]} == {"PHONE_NUMBER", "PERSON"}
    stored = json.dumps(client.data.validation("people@1"))
    for value in frame["phone"].head(20).tolist() + frame["customer_name"].head(20).tolist():
        assert value not in stored, value
    assert no_network == []


def test_presidio_and_spacy_load_only_when_asked_for() -> None:
    """The CLI and ``import opsloop`` stay fast: the scan command, the detector and the
    expectations module import Presidio and spaCy inside the functions that need them."""
    code = (
        "import sys, opsloop, opsloop.app.cli, opsloop.data.cli, opsloop.data.pii_scan, "
        "opsloop.data.expectations, opsloop.governance.pii\n"
        "from opsloop.governance.pii import PiiDetector\n"
        "PiiDetector().find('mail a@b.io')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'presidio_analyzer', 'spacy'}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
