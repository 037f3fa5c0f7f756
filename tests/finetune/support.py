"""What the fine-tuning tests share: the CLI run in-process, and the tiny chat base."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.gateway import chat_lm
from tests.no_network import block_sockets

__all__ = ["LORA", "chats", "cli", "offline_client", "register_base"]


# The tiny LoRA fine-tune the tests run (each adds its steps, batch and the like).
LORA = {
    "base_model": "base@1",
    "datasets": "chats@1",
    "output": "bot",
    "adapter": "lora",
    "lora_r": 4,
    "lora_alpha": 8,
    "lora_target_modules": ["c_attn", "c_fc"],
    "learning_rate": 0.05,
    "lr_scheduler": "constant",
    "sequence_len": 64,
    "seed": 7,
}


@contextlib.contextmanager
def offline_client(root: Path) -> Iterator[Any]:
    """A ``Client`` on an embedded store of its own under ``root`` (a module's fine-tuning
    world), with every socket beyond loopback blocked for the block and none tried by its end."""
    from opsloop import Client

    attempts, unblock = block_sockets()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("OPSLOOP_HOME", str(root / "home"))
        env.setenv("OPSLOOP_CAPTURE_ENV", "0")
        for name in ("OPSLOOP_SERVER_URL", "OPSLOOP_DATABASE_URL", "OPSLOOP_BLOB_URL"):
            env.delenv(name, raising=False)
        client = Client()
        try:
            yield client
        finally:
            client.close()
    unblock()
    assert attempts == []


def chats() -> list[dict[str, Any]]:
    """The tiny chat model's dialogues as chat JSONL rows (SFT data)."""
    return [
        {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
        for q, a in chat_lm.ANSWERS.items()
    ]


def cli(*args: str) -> tuple[int, str]:
    """``opsloop ARGS`` in this process; its exit code and what it printed."""
    from opsloop.app.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exited:
        main(list(args))
    return int(exited.value.code or 0), out.getvalue()


def cli_checked(capsys: pytest.CaptureFixture[str], *args: str, code: int = 0) -> str:
    """``opsloop ARGS`` in this process, its exit code checked against ``code``; what it
    printed on stdout and stderr."""
    capsys.readouterr()
    exit_code, out = cli(*args)
    text = out + capsys.readouterr().err
    assert exit_code == code, text
    return text


def register_base(client: Any, name: str = "base") -> Any:
    """The tiny chat GPT-2, untrained (the loss has room to fall), registered as ``name@1``
    with its tokenizer and chat template; returns the tokenizer."""
    tokenizer = chat_lm.build_tokenizer()
    base = chat_lm.build_model(tokenizer, steps=0)
    client.models.register(
        name, base, input_example=np.array([[1, 2, 3]]), flavor_options={"tokenizer": tokenizer}
    )
    return tokenizer
