"""Fine-tuning wired to the model registry and the eval suites: the registry's side of
:mod:`opsloop.llm.finetune.ports`, and the eval gate of a config's ``gate:`` after training.

It lives here because the registry is a floor above ``llm``. A base version is loaded with
its tokenizer (the ``pytorch`` flavor keeps it); a trained model is registered with its
tokenizer and chat template, produced by its run, tagged with its base, and, on the embedded
store, linked in the lineage graph as ``base version --input--> run --output--> version``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from opsloop.errors import InvalidInput
from opsloop.llm.finetune import BaseModel
from opsloop.llm.finetune import FinetuneResult
from opsloop.llm.finetune import finetune
from opsloop.llm.finetune import load_config
from opsloop.llm.finetune.gate import GATE_RUN_TAG
from opsloop.llm.finetune.gate import GATE_TAG
from opsloop.llm.finetune.gate import GateOutcome
from opsloop.llm.finetune.gate import gate_version
from opsloop.llm.finetune.models import check_base_ref
from opsloop.llm.finetune.ports import TrainedModel
from opsloop.registry.causal_lm import load_causal_lm

if TYPE_CHECKING:
    from opsloop.client import Client
    from opsloop.registry.sdk import ModelsClient

__all__ = ["RegistryBaseModels", "RegistryModelRegistrar", "run_finetune"]


class RegistryBaseModels:
    """Registered causal LMs to fine-tune, loaded with their tokenizer."""

    def __init__(self, models: ModelsClient) -> None:
        self._models = models

    def load(self, ref: str) -> BaseModel:
        version = self._models.version(ref)  # NotFound for an unknown name, version or alias
        if version.flavor != "pytorch":
            raise InvalidInput(f"{version.ref} is a {version.flavor} model, not a causal LM")
        model, tokenizer = load_causal_lm(self._models, version.ref)
        del model.tokenizer  # the trainer gets it apart; the model object stays plain
        model.train()
        return BaseModel(
            model=model, tokenizer=tokenizer, ref=version.ref, version_id=version.version_id
        )


class RegistryModelRegistrar:
    """Registers trained models as versions, linked to their run and their base."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def register(self, trained: TrainedModel) -> str:
        import numpy as np

        base, run_id = trained.base, trained.run_id
        trained.model.eval()
        version = self._client.models.register(
            trained.name,
            trained.model,
            run_id=run_id,
            input_example=np.array([[0, 1, 2]]),
            flavor_options={"tokenizer": trained.tokenizer, "base": base.ref},
            tags=trained.tags,
            description=f"fine-tuned from {base.ref} by run {run_id}",
        )
        if base.version_id is not None:
            self._link(base.version_id, run_id)
        return version.ref

    def _link(self, base_version_id: str, run_id: str) -> None:
        """The base version as an input of the run (embedded store only: a server records
        edges itself, and the tag names the base either way)."""
        from opsloop.lineage import graph
        from opsloop.registry.models import MODEL_VERSION
        from opsloop.tracking.local import LocalTrackingBackend

        backend = self._client.tracking_backend
        if isinstance(backend, LocalTrackingBackend):
            with backend.store.write() as session:
                graph.add_edge(
                    session, (MODEL_VERSION, base_version_id), (graph.RUN, run_id), "input"
                )


def run_finetune(
    client: Client,
    config: str | Path | dict[str, Any],
    *,
    resume: bool = False,
    merge: bool = False,
    callbacks: list[Any] | None = None,
    **overrides: Any,
) -> FinetuneResult:
    """Fine-tune the YAML ``config`` (or mapping) with ``client``'s store and registry.

    Example:
        >>> result = run_finetune(Client(), "finetune.yaml", merge=True)
        >>> result.version
        'support-bot-ft@1'
    """
    checked = load_config(config, **overrides)
    if checked.adapter == "lora" and not merge and check_base_ref(checked.base_model) is not None:
        raise InvalidInput(
            f"base_model {checked.base_model!r} is a folder: a LoRA adapter is registered with "
            "the registered version of its base, so register the base first "
            "(client.models.register(name, model, flavor_options={'tokenizer': tokenizer})) "
            "or pass --merge to register the merged weights"
        )
    suite = checked.gate.load() if checked.gate is not None else None  # refused before training
    result = finetune(
        checked,
        tracking=client,
        data=client.data,
        base_models=RegistryBaseModels(client.models),
        registrar=RegistryModelRegistrar(client),
        resume=resume,
        merge=merge,
        callbacks=callbacks or (),
    )
    if checked.gate is None or suite is None:
        return result
    outcome = gate_version(
        result.version, checked.gate, suite, evals=client.evals, models=client.models
    )
    _record_gate(client, result.run_id, outcome)
    return dataclasses.replace(result, gate=outcome)


def _record_gate(client: Client, run_id: str, outcome: GateOutcome) -> None:
    """The verdict on the fine-tuning run and on the version, each naming the eval run that
    holds the numbers, so both pages say what was decided and where to read why. (The run
    has ended by now: it takes tags, not metrics.)"""
    verdict = _verdict(outcome)
    client.set_tags(run_id, {GATE_TAG: verdict, GATE_RUN_TAG: outcome.eval_run_id})
    client.models.set_version_tag(outcome.version, GATE_TAG, verdict)


def _verdict(outcome: GateOutcome) -> str:
    against = f" vs {outcome.against}" if outcome.against else ""
    return f"{'passed' if outcome.passed else 'failed'}{against} (eval run {outcome.eval_run_id})"
