"""The fine-tuning config: one YAML file, named like axolotl's where the concept is the same.

A minimal file::

    base_model: support-bot@champion      # a registered version, or a local transformers folder
    datasets: support-chats@3             # a data version of chat JSONL ({"messages": [...]})
    adapter: lora
    lora_r: 8
    lora_target_modules: [c_attn]
    max_steps: 50
    output: support-bot-lora              # the registered model's name

Preference tuning is ``rl: dpo`` (axolotl's key) over a data version of preference pairs
(``{"prompt": [...], "chosen": [...], "rejected": [...]}`` as ``opsloop feedback export
--format preference`` writes them), with ``dpo_beta`` (TRL's ``beta``, default 0.1).

``devices: 2`` trains data parallel in two processes (:mod:`.parallel`); each step's global
batch is then ``micro_batch_size * gradient_accumulation_steps * devices``. ``executor: ray``
trains them as Ray Train workers instead (:mod:`.on_ray`).

``gate:`` runs an eval suite on the new version beside the current champion and moves an alias
only when its rules hold (:mod:`.gate`).

``tune:`` searches learning_rate, lora_r and max_steps with Optuna for the configs that trade
quality (eval loss) against cost (tokens, or device-seconds) best: ``opsloop finetune CONFIG
--tune`` (:mod:`opsloop.app.finetune_tune`).

Unknown keys are refused with the closest known one suggested (``lora_rank`` -> ``lora_r``),
so a typo never silently falls back to a default.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from pathlib import Path
from typing import Any
from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import ValidationError
from pydantic import model_validator

from opsloop.console.files import read_yaml_mapping
from opsloop.errors import InvalidInput
from opsloop.evaluation.gates import GateRule
from opsloop.llm.finetune.gate import EvalGate

__all__ = ["FinetuneConfig", "TuneSection", "TuneSpace", "load_config"]

_PREFERENCE_KEYS = ("rl", "dpo_beta")


class TuneSpace(BaseModel):
    """The fine-tuning keys a tuning searches, each a range as ``opsloop tune``'s spaces
    write them (``{type: float, low: 1e-4, high: 1e-2, log: true}``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    learning_rate: dict[str, Any] | None = None
    lora_r: dict[str, Any] | None = None
    max_steps: dict[str, Any] | None = None

    def ranges(self) -> dict[str, dict[str, Any]]:
        """The keys given, with their ranges."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class TuneSection(BaseModel):
    """``tune:``: a multi-objective study over fine-tuning configs (quality and cost)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    space: TuneSpace
    n_trials: int = Field(10, ge=1)
    cost: Literal["tokens", "device_seconds"] = Field(
        "device_seconds", description="tokens trained on, or train_runtime x devices"
    )
    study: str | None = None
    seed: int | None = 0

    @model_validator(mode="after")
    def _searches(self) -> TuneSection:
        if not self.space.ranges():
            raise ValueError("the space is empty: give learning_rate, lora_r or max_steps a range")
        return self


class FinetuneConfig(BaseModel):
    """What to train, on what, and how; ``hash`` identifies it on the run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_model: str = Field(min_length=1)
    datasets: str = Field(
        min_length=1, description="data version ref: chat JSONL, or preference pairs for rl: dpo"
    )
    eval_dataset: str | None = Field(None, description="data version ref for the eval loss")
    output: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    experiment: str | None = None
    adapter: Literal["lora", "full", "qlora"] = "lora"
    lora_r: int = Field(8, ge=1)
    lora_alpha: int = Field(16, ge=1)
    lora_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    lora_target_modules: list[str] | None = None
    learning_rate: float = Field(2e-4, gt=0)
    optimizer: str = "adamw_torch"
    lr_scheduler: str = "linear"
    warmup_steps: int = Field(0, ge=0)
    weight_decay: float = Field(0.0, ge=0)
    num_epochs: float = Field(1.0, gt=0)
    max_steps: int = Field(-1, ge=-1)
    micro_batch_size: int = Field(1, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    sequence_len: int = Field(512, ge=8)
    sample_packing: bool = False
    save_steps: int | None = Field(None, ge=1)
    eval_steps: int | None = Field(None, ge=1)
    gradient_checkpointing: bool = False
    bf16: bool = False
    seed: int = 42
    devices: int = Field(
        1, ge=1, description="data parallel processes (torchrun's nproc-per-node); 1: this one"
    )
    executor: Literal["local", "ray"] | None = Field(
        None,
        description="ray: Ray Train's workers on RAY_ADDRESS's cluster, else a local Ray; "
        "local: this machine; unset: ray inside a pipeline step on the ray executor, else local",
    )
    rl: Literal["dpo"] | None = Field(None, description="dpo: preference tuning; none: SFT")
    dpo_beta: float = Field(0.1, gt=0, description="TRL's beta: higher stays closer to the base")
    gate: EvalGate | None = Field(None, description="an eval suite the new version must pass")
    tune: TuneSection | None = Field(None, description="--tune: the search and its objectives")

    @model_validator(mode="after")
    def _supported(self) -> FinetuneConfig:
        if self.rl is None and "dpo_beta" in self.model_fields_set:
            raise ValueError("dpo_beta applies only to preference tuning: add rl: dpo, or drop it")
        if self.sample_packing:
            raise ValueError(
                "sample_packing is not supported yet: set sample_packing: false (each chat is "
                "one padded sequence)"
            )
        if self.adapter == "lora" and self.lora_target_modules == []:
            raise ValueError("lora_target_modules is empty: name modules, or leave it out")
        return self

    def fields(self) -> dict[str, Any]:
        """The fields that mean something for this method's training: an SFT config leaves
        out the preference keys, so its params and its hash are what they were before DPO
        existed, and the gate and the tuning (what is done around the training) are never
        part of them, nor is where it runs (``executor``: the same training on Ray Train or
        here)."""
        values = self.model_dump(mode="json", exclude={"gate", "tune", "executor"})
        if self.rl is None:
            for key in _PREFERENCE_KEYS:
                del values[key]
        if self.devices == 1:  # one process: the hash a config had before devices existed
            del values["devices"]
        return values

    @property
    def hash(self) -> str:
        """The config's identity: a short hash of its fields in canonical JSON."""
        text = json.dumps(self.fields(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def method(self) -> str:
        """``sft`` or the preference method (``dpo``)."""
        return self.rl or "sft"

    @property
    def experiment_name(self) -> str:
        return self.experiment or f"finetune-{self.output}"


def load_config(source: str | Path | dict[str, Any], **overrides: Any) -> FinetuneConfig:
    """The config in a YAML file (or a mapping), with ``overrides`` applied on top.

    Raises:
        InvalidInput: One line naming the bad key and what to write instead.
    """
    if isinstance(source, dict):
        raw: Any = dict(source)
        where = "config"
    else:
        path = Path(source)
        raw = read_yaml_mapping(path, "config", "be a mapping of fine-tuning keys to values")
        where = str(path)
    raw.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return FinetuneConfig.model_validate(raw)
    except ValidationError as exc:
        raise InvalidInput(f"{where}: {_problem(exc.errors()[0])}") from None


def _problem(error: Any) -> str:
    field = ".".join(str(p) for p in error.get("loc", ())) or "config"
    message = str(error.get("msg", "")).removeprefix("Value error, ")
    if error.get("type") == "extra_forbidden":
        *parents, key = [str(p) for p in error.get("loc", ())] or ["config"]
        known = list(_section(parents).model_fields)
        near = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
        hint = f"; did you mean {'.'.join([*parents, near[0]])!r}?" if near else ""
        return f"unknown key {field!r}{hint}"
    if error.get("type") == "missing":
        return f"{field} is required"
    return f"{field}: {message}"


def _section(parents: list[str]) -> type[BaseModel]:
    """The model a nested key sits in (``gate`` -> EvalGate, ``gate.rules.0`` -> GateRule,
    ``tune.space`` -> TuneSpace)."""
    if parents[:1] == ["gate"]:
        return GateRule if len(parents) > 1 else EvalGate
    if parents[:1] == ["tune"]:
        return TuneSpace if parents[1:2] == ["space"] else TuneSection
    return FinetuneConfig
