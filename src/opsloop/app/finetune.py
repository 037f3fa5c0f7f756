"""Fine-tuning wired to the model registry: the registry's side of
:mod:`opsloop.llm.finetune.ports`.

It lives here because the registry is a floor above ``llm``. A base version is loaded with
its tokenizer (the ``pytorch`` flavor keeps it); a trained model is registered with its
tokenizer and chat template, produced by its run, tagged with its base, and, on the embedded
store, linked in the lineage graph as ``base version --input--> run --output--> version``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from opsloop.app.causal_lm import load_causal_lm
from opsloop.errors import InvalidInput
from opsloop.llm.finetune import BaseModel
from opsloop.llm.finetune import FinetuneResult
from opsloop.llm.finetune import finetune
from opsloop.llm.finetune import load_config
from opsloop.llm.finetune.models import check_base_ref
from opsloop.llm.finetune.ports import TrainedModel

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
    return finetune(
        checked,
        tracking=client,
        data=client.data,
        base_models=RegistryBaseModels(client.models),
        registrar=RegistryModelRegistrar(client),
        resume=resume,
        merge=merge,
        callbacks=callbacks or (),
    )
