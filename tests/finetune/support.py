"""What the fine-tuning tests share: the CLI run in-process, and the tiny chat base."""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np
import pytest

from tests.gateway import chat_lm

__all__ = ["cli", "register_base"]


def cli(*args: str) -> tuple[int, str]:
    """``opsloop ARGS`` in this process; its exit code and what it printed."""
    from opsloop.app.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exited:
        main(list(args))
    return int(exited.value.code or 0), out.getvalue()


def register_base(client: Any, name: str = "base") -> Any:
    """The tiny chat GPT-2, untrained (the loss has room to fall), registered as ``name@1``
    with its tokenizer and chat template; returns the tokenizer."""
    tokenizer = chat_lm.build_tokenizer()
    base = chat_lm.build_model(tokenizer, steps=0)
    client.models.register(
        name, base, input_example=np.array([[1, 2, 3]]), flavor_options={"tokenizer": tokenizer}
    )
    return tokenizer
