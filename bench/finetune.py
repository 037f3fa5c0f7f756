"""Fine-tuning: ``opsloop finetune`` vs the same config as a plain TRL script (issue 25; target:
steps/s within 5%, the same final loss with the same seed), for SFT and for DPO (``rl: dpo``).

    .venv/bin/python bench/finetune.py [--method sft|dpo|both] [--steps 60] [--layers 4]
        [--width 256] [--repeats 3]

The base is the tiny chat GPT-2 of ``tests/gateway/chat_lm.py`` (a BPE tokenizer with a chat
template, built here; nothing downloaded), untrained, widened by ``--layers/--width``. SFT's data
are its chats repeated to 40 rows; DPO's are preference pairs in the shape ``opsloop feedback
export --format preference`` writes (each question's answer chosen, the next question's
rejected), repeated to 40 rows. Both sides train LoRA (r=8 on c_attn and c_fc) with the same
arguments and seed, on one thread each:

1. plain TRL: ``SFTTrainer`` / ``DPOTrainer(model, DPOConfig(beta=0.1, ...))`` with
   ``peft_config=LoraConfig(...)``, ``.train()`` (DPO's reference: the adapter disabled).
2. opsloop: ``run_finetune`` on a fresh embedded store: the data version is read and checked,
   the base loaded from the registry, every step logged to the run, the last checkpoint stored
   in the blob store and the adapter registered.

steps/s is the trainer's own ``train_steps_per_second`` on both sides (training only); the
opsloop line also shows its whole wall time (store, registry and checkpoint included).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.gateway import chat_lm

LORA = {"r": 8, "lora_alpha": 16, "target_modules": ["c_attn", "c_fc"]}


def base(layers: int, width: int) -> tuple[Any, Any]:
    from transformers import GPT2Config
    from transformers import GPT2LMHeadModel

    tokenizer = chat_lm.build_tokenizer()
    torch.manual_seed(0)
    eos = tokenizer.eos_token_id
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=96, n_embd=width, n_layer=layers, n_head=2,
        bos_token_id=eos, eos_token_id=eos, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    return tokenizer, GPT2LMHeadModel(config)


def rows(method: str) -> list[dict[str, Any]]:
    """40 training rows: chats for SFT, preference pairs (with the export's scores) for DPO."""
    answers = list(chat_lm.ANSWERS.items())
    if method == "sft":
        chats = [
            {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
            for q, a in answers
        ]
        return chats * 8
    pairs = [
        {
            "prompt": [{"role": "user", "content": q}],
            "chosen": [{"role": "assistant", "content": a}],
            "rejected": [{"role": "assistant", "content": answers[(i + 1) % len(answers)][1]}],
            "score_chosen": 1.0,
            "score_rejected": 0.0,
        }
        for i, (q, a) in enumerate(answers)
    ]
    return pairs * 8


def plain_trl(args: argparse.Namespace, out: Path, method: str) -> tuple[float, float]:
    from datasets import Dataset
    from peft import LoraConfig
    from trl import DPOConfig
    from trl import DPOTrainer
    from trl import SFTConfig
    from trl import SFTTrainer

    tokenizer, model = base(args.layers, args.width)
    shared = dict(
        output_dir=str(out), learning_rate=args.lr, lr_scheduler_type="linear",
        optim="adamw_torch",  # opsloop's default optimizer (TRL's is the fused one)
        max_steps=args.steps, per_device_train_batch_size=args.batch, max_length=64, seed=7,
        data_seed=7,
        logging_steps=1, save_strategy="no", report_to="none", bf16=False,
        gradient_checkpointing=False, dataloader_pin_memory=False, disable_tqdm=True,
    )  # fmt: skip
    if method == "sft":
        trainer_class, config = SFTTrainer, SFTConfig(**shared)
        data = rows(method)
    else:
        trainer_class, config = DPOTrainer, DPOConfig(**shared, beta=args.beta)
        keep = ("prompt", "chosen", "rejected")  # what opsloop passes on of an exported row
        data = [{k: row[k] for k in keep} for row in rows(method)]
    trainer = trainer_class(
        model=model, args=config, train_dataset=Dataset.from_list(data),
        processing_class=tokenizer, peft_config=LoraConfig(task_type="CAUSAL_LM", **LORA),
    )  # fmt: skip
    from transformers.trainer_callback import PrinterCallback

    trainer.pop_callback(PrinterCallback)  # as opsloop does: logs go to the run, not stdout
    result = trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return float(result.metrics["train_steps_per_second"]), float(losses[-1])


def opsloop_run(args: argparse.Namespace, root: Path, method: str) -> tuple[float, float, float]:
    from opsloop import Client
    from opsloop.app.finetune import run_finetune

    client = Client(database_url=f"sqlite:///{root / 'opsloop.db'}", blob_url=str(root / "blobs"))
    tokenizer, model = base(args.layers, args.width)
    client.models.register(
        "base", model, input_example=np.array([[1, 2, 3]]), flavor_options={"tokenizer": tokenizer}
    )
    (root / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows(method)) + "\n")
    client.data.add(str(root / "train.jsonl"), name="train")
    config = {
        "base_model": "base@1", "datasets": "train@1", "output": "bot", "adapter": "lora",
        "lora_r": LORA["r"], "lora_alpha": LORA["lora_alpha"],
        "lora_target_modules": LORA["target_modules"], "learning_rate": args.lr,
        "lr_scheduler": "linear", "max_steps": args.steps, "micro_batch_size": args.batch,
        "sequence_len": 64, "seed": 7,
    }  # fmt: skip
    if method == "dpo":
        config.update(rl="dpo", dpo_beta=args.beta)
    started = time.perf_counter()
    result = run_finetune(client, config)
    wall = time.perf_counter() - started
    steps_per_s = client.get_run(result.run_id).data.metrics["train_steps_per_second"]
    client.close()
    return float(steps_per_s), float(result.final_loss or 0.0), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=["sft", "dpo", "both"], default="both")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--beta", type=float, default=0.1, help="DPO's beta (dpo_beta)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    import os

    os.environ["OPSLOOP_CAPTURE_ENV"] = "0"
    os.environ["HF_HUB_OFFLINE"] = os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    for method in ("sft", "dpo") if args.method == "both" else (args.method,):
        compare(args, method)


def compare(args: argparse.Namespace, method: str) -> None:
    """Print plain TRL and opsloop side by side for ``method``: best steps/s of interleaved
    repeats (the machine is shared) and the final loss, which must not differ."""
    plain, ours = [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            plain.append(plain_trl(args, Path(tmp) / "plain", method))
            ours.append(opsloop_run(args, Path(tmp), method))
    plain_rate, plain_loss = max(plain)
    ours_rate, ours_loss, wall = max(ours)
    extra = f", beta {args.beta}" if method == "dpo" else ""
    print(
        f"LoRA {method.upper()}: {args.steps} steps, batch {args.batch}{extra}, seed 7, "
        f"1 thread, best of {args.repeats}"
    )
    print(f"{'':10} {'steps/s':>9} {'final loss':>11}")
    print(f"{'plain TRL':10} {plain_rate:9.2f} {plain_loss:11.6f}")
    print(f"{'opsloop':10} {ours_rate:9.2f} {ours_loss:11.6f}   (whole command {wall:.1f} s)")
    same = (
        "identical" if ours_loss == plain_loss else f"differs by {abs(ours_loss - plain_loss):.2e}"
    )
    print(f"steps/s ratio {ours_rate / plain_rate:.3f} (target within 5%); final loss {same}")


if __name__ == "__main__":
    main()
