"""The models a suite asks: any OpenAI-compatible chat endpoint, a registered causal LM, or a
Python function.

``openai:MODEL`` goes through the official ``openai`` client to ``base_url`` (default the
``OPENAI_BASE_URL`` environment variable, else OpenAI itself), with the key read from the
environment variable ``api_key_env``. ``model:NAME@REF`` asks a version from the model
registry in this process (loaded once, batched like the gateway's local targets), so a
fine-tuned version is evaluated before anything serves it. ``python:package.module:function``
calls ``function(prompt, vars)``, which returns the output text (or ``{"output", "usage"}``), so
a chain or an agent in the user's code can be evaluated as it is.
"""

from __future__ import annotations

import importlib
import os
import time
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic import Field

from opsloop.errors import InvalidInput
from opsloop.llm.evals.ports import ChatModels
from opsloop.llm.tracing.pricing import PriceTable

__all__ = ["Completion", "Provider", "ProviderConfig"]


class ProviderConfig(BaseModel):
    id: str = Field(description="openai:MODEL, model:NAME@REF or python:module:function")
    label: str | None = None
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = Field(60.0, gt=0)
    config: dict[str, Any] = Field(default_factory=dict, description="temperature, max_tokens...")

    @property
    def name(self) -> str:
        return self.label or self.id


@dataclass
class Completion:
    output: str | None
    latency_ms: float
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: float | None = None
    error: str | None = None
    model: str | None = None


class Provider:
    """A callable model built from a :class:`ProviderConfig`; thread-safe.

    ``models`` answers ``model:`` providers (the ``Client`` hands in the registry's); without
    it such a provider is refused when the suite is read, before any model is called.
    """

    def __init__(self, config: ProviderConfig, models: ChatModels | None = None) -> None:
        self.config = config
        scheme, _, rest = config.id.partition(":")
        if scheme == "model" and rest:
            if models is None:
                raise InvalidInput(
                    f"provider {config.id!r}: registered models are asked through a Client "
                    "(client.evals.run or opsloop eval run)"
                )
            self._model = models.load(rest)  # the version, fixed: an alias moving mid-suite
            self._models = models  # does not change what is asked
            self._call = self._registered
        elif scheme == "openai" and rest:
            self._model = rest
            self._call = self._openai
            from openai import OpenAI

            base_url = config.base_url or os.environ.get("OPENAI_BASE_URL")
            self._client = OpenAI(
                base_url=base_url,
                api_key=os.environ.get(config.api_key_env) or "not-needed",
                timeout=config.timeout_s,
                max_retries=2,
            )
        elif scheme == "python" and ":" in rest:
            module, _, function = rest.rpartition(":")
            try:
                self._function = getattr(importlib.import_module(module), function)
            except (ImportError, AttributeError) as exc:
                raise InvalidInput(f"provider {config.id!r}: cannot import it: {exc}") from None
            self._model = config.id
            self._call = self._python
        else:
            raise InvalidInput(
                f"provider {config.id!r} is none of openai:MODEL, model:NAME@REF and "
                "python:module:function"
            )

    def complete(self, prompt: str | list[dict[str, str]], variables: dict[str, Any]) -> Completion:
        start = time.perf_counter()
        try:
            completion = self._call(prompt, variables)
        except Exception as exc:  # a failing model is a failed case, not a crash
            return Completion(
                None, (time.perf_counter() - start) * 1000, error=f"{type(exc).__name__}: {exc}"
            )
        completion.latency_ms = (time.perf_counter() - start) * 1000
        return completion

    def _openai(self, prompt: Any, _variables: dict[str, Any]) -> Completion:
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        response = self._client.chat.completions.create(
            model=self._model, messages=messages, **self.config.config
        )
        usage = response.usage
        return Completion(
            output=response.choices[0].message.content or "",
            latency_ms=0.0,
            input_tokens=usage.prompt_tokens if usage else None,
            output_tokens=usage.completion_tokens if usage else None,
            model=response.model or self._model,
        )

    def _registered(self, prompt: Any, _variables: dict[str, Any]) -> Completion:
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        response = self._models.chat(self._model, messages, self.config.config)
        usage = response.get("usage") or {}
        return Completion(
            output=response["choices"][0]["message"]["content"] or "",
            latency_ms=0.0,
            input_tokens=usage.get("prompt_tokens"),
            output_tokens=usage.get("completion_tokens"),
            model=response.get("model") or self._model,
        )

    def _python(self, prompt: Any, variables: dict[str, Any]) -> Completion:
        result = self._function(prompt, variables)
        if isinstance(result, dict):
            usage = result.get("usage") or {}
            return Completion(
                output=str(result.get("output", "")),
                latency_ms=0.0,
                input_tokens=usage.get("input_tokens"),
                output_tokens=usage.get("output_tokens"),
                cost=result.get("cost"),
                model=self._model,
            )
        return Completion(output=str(result), latency_ms=0.0, model=self._model)

    def price(self, completion: Completion, prices: PriceTable) -> None:
        """Fill the completion's cost from the price table when the provider gave none."""
        if completion.cost is not None or completion.model is None:
            return
        price = prices.find(completion.model)
        if price is not None and (completion.input_tokens or completion.output_tokens):
            completion.cost = (
                (completion.input_tokens or 0) * price.input_per_mtok / 1e6
                + (completion.output_tokens or 0) * price.output_per_mtok / 1e6
                + price.per_request
            )
