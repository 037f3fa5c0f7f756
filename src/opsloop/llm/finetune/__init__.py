"""Fine-tuning: a causal LM trained on a chat data version (SFT) or on preference pairs
(``rl: dpo``), LoRA or full, TRL underneath, tracked as a run and registered as a model
version.

The registry is a floor above; it is reached through the ports in :mod:`.ports`, which
``opsloop.app.finetune`` implements. ``opsloop finetune config.yaml`` is the command.
"""

from opsloop.llm.finetune.config import FinetuneConfig
from opsloop.llm.finetune.config import load_config
from opsloop.llm.finetune.ports import BaseModel
from opsloop.llm.finetune.ports import BaseModels
from opsloop.llm.finetune.ports import ModelRegistrar
from opsloop.llm.finetune.training import FinetuneResult
from opsloop.llm.finetune.training import finetune

__all__ = [
    "BaseModel",
    "BaseModels",
    "FinetuneConfig",
    "FinetuneResult",
    "ModelRegistrar",
    "finetune",
    "load_config",
]
