"""The model side of fine-tuning: where the base comes from (never the Hub), which method
applies, and LoRA targets checked against the model's own module names.

torch, transformers and peft are imported inside the functions: the config and the CLI's
``--help`` never pay for them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from opsloop.errors import InvalidInput
from opsloop.llm.finetune.ports import BaseModel
from opsloop.llm.finetune.ports import BaseModels

if TYPE_CHECKING:
    from opsloop.llm.finetune.config import FinetuneConfig

__all__ = ["check_base_ref", "check_method", "load_base", "lora_config", "module_names"]


def check_base_ref(ref: str) -> Path | None:
    """The local folder ``ref`` names, or ``None`` for a registered ``NAME@version``.

    Raises:
        InvalidInput: Anything else, such as a Hugging Face Hub id: opsloop never downloads.
    """
    folder = Path(os.path.expanduser(ref))
    if folder.is_dir():
        return folder
    if "@" in ref and "/" not in ref:
        return None
    raise InvalidInput(
        f"base_model {ref!r} is neither a local folder nor a registered NAME@version; "
        "opsloop never downloads from the Hugging Face Hub: download it yourself and "
        "register it (client.models.register(name, model, flavor_options={'tokenizer': "
        "tokenizer})) or point base_model at its folder"
    )


def load_base(ref: str, registry: BaseModels | None) -> BaseModel:
    """The base model ``ref`` names: a local transformers folder, or a registered version.

    Raises:
        InvalidInput: See :func:`check_base_ref`; a folder that is not a causal LM, a
            tokenizer without a chat template.
        NotFound: No such registered model or version.
    """
    folder = check_base_ref(ref)
    if folder is not None:
        base = _from_folder(folder)
    elif registry is not None:
        base = registry.load(ref)
    else:
        raise InvalidInput(f"no model registry here to find {ref!r}; give a local folder")
    if not getattr(base.tokenizer, "chat_template", None):
        raise InvalidInput(
            f"the tokenizer of {base.ref} has no chat template: set tokenizer.chat_template "
            "(a Jinja template over messages) and register the model again"
        )
    return base


def _from_folder(folder: Path) -> BaseModel:
    from transformers import AutoModelForCausalLM
    from transformers import AutoTokenizer

    if not (folder / "config.json").is_file():
        raise InvalidInput(f"{folder} is not a transformers model folder (no config.json)")
    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(folder), local_files_only=True, trust_remote_code=False
        )
        tokenizer_folder = folder / "tokenizer" if (folder / "tokenizer").is_dir() else folder
        tokenizer = AutoTokenizer.from_pretrained(
            str(tokenizer_folder), local_files_only=True, trust_remote_code=False
        )
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot load {folder} as a causal LM: {exc}") from None
    return BaseModel(model=model, tokenizer=tokenizer, ref=str(folder))


def check_method(config: FinetuneConfig) -> None:
    """Refuse QLoRA where it cannot run: it needs a CUDA GPU and bitsandbytes."""
    if config.adapter != "qlora":
        return
    import importlib.util

    import torch

    if not torch.cuda.is_available() or importlib.util.find_spec("bitsandbytes") is None:
        raise InvalidInput(
            "adapter: qlora needs a CUDA GPU and the bitsandbytes package; neither is usable "
            "here: use adapter: lora"
        )
    raise InvalidInput("adapter: qlora is not supported yet; use adapter: lora")


def module_names(model: Any) -> list[str]:
    """The distinct last parts of the names of the model's layers with weights (what LoRA's
    ``target_modules`` match), in model order."""
    names: dict[str, None] = {}
    for name, module in model.named_modules():
        if name and getattr(module, "weight", None) is not None and not list(module.children()):
            names[name.rsplit(".", 1)[-1]] = None
    return list(names)


def lora_config(config: FinetuneConfig, model: Any) -> Any:
    """peft's ``LoraConfig`` for ``config``; every target must match a layer of ``model``.

    Raises:
        InvalidInput: A target that matches no layer, listing the layers there are.
    """
    from peft import LoraConfig

    targets = config.lora_target_modules
    if targets is not None:
        known = module_names(model)
        full = {name for name, _ in model.named_modules()}
        missing = [t for t in targets if t not in known and t not in full]
        if missing:
            raise InvalidInput(
                f"lora_target_modules {missing} match no module of the base model; its "
                f"modules: {', '.join(known)}"
            )
    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(targets) if targets is not None else None,
        task_type="CAUSAL_LM",
    )
