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

steps/s is the trainer's own ``train_steps_per_second`` on both sides (its training loop, every
step's logging to the run included); the opsloop line also shows its whole wall time (store,
registry, and the last checkpoint, written and stored once ``train()`` has returned).
On a shared machine wall time swings with the neighbours' load, so each side also reports the
CPU milliseconds its process spent per step over the same window (:class:`Clock`, one more
callback on both sides; the flusher thread that sends opsloop's metrics counts in it): the
steadier of the two ratios when the box is busy.

``--compress`` measures ``opsloop models compress`` instead (issue 25's target: at least 3x
smaller at most 1% worse, on one of them), on a fresh embedded store, one thread:

1. a scikit-learn MLP (StandardScaler + 256-128 hidden units) trained on the breast-cancer
   table, through ``onnx-int8`` (skl2onnx, then ONNX Runtime's dynamic quantization); quality is
   accuracy on a held-out data version;
2. the tiny GPT-2 above (``--layers/--width``), trained for ``--steps`` on the chats, through
   ``dynamic-int8`` (torch's dynamic quantization of its Linear layers); quality is the mean
   next-token loss on the chats' text.

Each line prints the package size ratio (original / compressed bytes), the one-row and batch
speedups (original / compressed median latency of ``predict``, timed in turns) and the quality
before and after, with the gate's verdict.
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


def clock() -> Any:
    """A callback that measures the process's CPU seconds over the trainer's own timed window:
    from the start of training to its closing speed log, so both sides are timed alike."""
    from transformers import TrainerCallback

    class Clock(TrainerCallback):  # type: ignore[misc]
        cpu_ms_per_step = 0.0

        def on_train_begin(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            self._start = time.process_time()

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **_: Any) -> None:
            if logs and "train_runtime" in logs:
                spent = time.process_time() - self._start
                self.cpu_ms_per_step = 1000 * spent / max(state.global_step, 1)

    return Clock()


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


def plain_trl(args: argparse.Namespace, out: Path, method: str) -> tuple[float, float, float]:
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
    timer = clock()
    trainer = trainer_class(
        model=model, args=config, train_dataset=Dataset.from_list(data),
        processing_class=tokenizer, peft_config=LoraConfig(task_type="CAUSAL_LM", **LORA),
        callbacks=[timer],
    )  # fmt: skip
    from transformers.trainer_callback import PrinterCallback

    trainer.pop_callback(PrinterCallback)  # as opsloop does: logs go to the run, not stdout
    result = trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    steps_per_s = float(result.metrics["train_steps_per_second"])
    return steps_per_s, float(losses[-1]), timer.cpu_ms_per_step


def opsloop_run(
    args: argparse.Namespace, root: Path, method: str
) -> tuple[float, float, float, float]:
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
    timer = clock()
    result = run_finetune(client, config, callbacks=[timer])
    wall = time.perf_counter() - started
    steps_per_s = client.get_run(result.run_id).data.metrics["train_steps_per_second"]
    client.close()
    return float(steps_per_s), float(result.final_loss or 0.0), timer.cpu_ms_per_step, wall


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
    parser.add_argument("--compress", action="store_true", help="measure models compress")
    args = parser.parse_args()
    torch.set_num_threads(1)
    import os

    os.environ["OPSLOOP_CAPTURE_ENV"] = "0"
    os.environ["HF_HUB_OFFLINE"] = os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    if args.compress:
        with tempfile.TemporaryDirectory() as tmp:
            compression(args, Path(tmp))
        return
    for method in ("sft", "dpo") if args.method == "both" else (args.method,):
        compare(args, method)


def compare(args: argparse.Namespace, method: str) -> None:
    """Print plain TRL and opsloop side by side for ``method``: best steps/s and least CPU per
    step of interleaved repeats (the machine is shared) and the final loss, which must not
    differ."""
    plain, ours = [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            plain.append(plain_trl(args, Path(tmp) / "plain", method))
            ours.append(opsloop_run(args, Path(tmp), method))
    plain_rate, plain_loss = max(p[0] for p in plain), plain[-1][1]
    plain_cpu = min(p[2] for p in plain)
    ours_rate, ours_loss = max(o[0] for o in ours), ours[-1][1]
    ours_cpu, wall = min(o[2] for o in ours), min(o[3] for o in ours)
    extra = f", beta {args.beta}" if method == "dpo" else ""
    print(
        f"LoRA {method.upper()}: {args.steps} steps, batch {args.batch}{extra}, seed 7, "
        f"1 thread, best of {args.repeats}"
    )
    print(f"{'':10} {'steps/s':>9} {'CPU ms/step':>12} {'final loss':>11}")
    print(f"{'plain TRL':10} {plain_rate:9.2f} {plain_cpu:12.1f} {plain_loss:11.6f}")
    print(
        f"{'opsloop':10} {ours_rate:9.2f} {ours_cpu:12.1f} {ours_loss:11.6f}"
        f"   (whole command {wall:.1f} s)"
    )
    same = (
        "identical" if ours_loss == plain_loss else f"differs by {abs(ours_loss - plain_loss):.2e}"
    )
    print(
        f"steps/s ratio {ours_rate / plain_rate:.3f}, CPU per step ratio "
        f"{plain_cpu / ours_cpu:.3f} (target within 5%); final loss {same}"
    )


def compression(args: argparse.Namespace, root: Path) -> None:
    """Print size ratio, speedups and quality delta of onnx-int8 on a scikit-learn MLP and of
    dynamic-int8 on the tiny GPT-2 (see the module docstring)."""
    import pandas as pd
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from opsloop import Client

    client = Client(database_url=f"sqlite:///{root / 'opsloop.db'}", blob_url=str(root / "blobs"))
    frame = load_breast_cancer(as_frame=True).frame
    train, held_out = train_test_split(frame, test_size=0.3, random_state=0)
    held_out.to_csv(root / "held-out.csv", index=False)
    client.data.add(root / "held-out.csv", name="cancer-held-out")
    mlp = MLPClassifier((256, 128), max_iter=300, random_state=0)
    features = train.drop(columns=["target"])
    mlp = make_pipeline(StandardScaler(), mlp).fit(features, train["target"])
    client.models.register("mlp", mlp, input_example=features.head())
    tokenizer, lm = base(args.layers, args.width)
    texts = [f"{q}\n{a}" for q, a in chat_lm.ANSWERS.items()]
    trained = _pretrain(lm, tokenizer, texts, args.steps)
    pd.DataFrame({"text": texts}).to_csv(root / "texts.csv", index=False)
    client.data.add(root / "texts.csv", name="texts")
    ids = np.array([tokenizer(texts[0])["input_ids"][:16]])
    client.models.register(
        "lm", trained, input_example=ids, flavor_options={"tokenizer": tokenizer}
    )
    print("compression, 1 thread; gate: >= 3x smaller, <= 1% worse (relative)")
    print(f"{'':34} {'size':>8} {'1 row':>7} {'batch':>7}  quality before → after (drop)")
    for label, ref, method, data, target in [
        ("sklearn MLP 256-128, onnx-int8", "mlp@1", "onnx-int8", "cancer-held-out@1", "target"),
        (f"GPT-2 {args.layers}x{args.width}, dynamic-int8", "lm@1", "dynamic-int8", "texts@1",
         "text"),
    ]:  # fmt: skip
        result = client.models.compress(ref, method, data=data, target=target)
        quality = result.quality
        assert quality is not None
        one, batch = result.latency_ms["one_row"], result.latency_ms["batch"]
        print(
            f"{label:34} {result.size_ratio:7.2f}x {one['speedup']:6.2f}x {batch['speedup']:6.2f}x"
            f"  {quality.metric} {quality.before:.4f} → {quality.after:.4f} ({quality.drop:+.2%})"
            f"  {'PASS' if result.passed else 'FAIL'}"
        )
        print(
            f"{'':34} {result.original_bytes:,} → {result.compressed_bytes:,} bytes; "
            f"ms one row {one['original']:.3f} → {one['compressed']:.3f}, batch of "
            f"{result.batch_rows} {batch['original']:.3f} → {batch['compressed']:.3f}"
        )
    client.close()


def _pretrain(model: Any, tokenizer: Any, texts: list[str], steps: int) -> Any:
    """The GPT-2 trained for ``steps`` on ``texts`` (its loss then says something)."""
    torch.manual_seed(0)
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        loss = model(**batch, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


if __name__ == "__main__":
    main()
