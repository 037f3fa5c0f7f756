"""The end of the quickstart's LLM half: the loop from users' thumbs to a model in production.

The thumbs-up chats (a data version, ``feedback export``) fine-tune a tiny support LM with LoRA
(``run_finetune``, the same as ``opsloop finetune config.yaml``); the eval suite that gates the
prompt gates the new version against the ``champion`` and moves ``candidate``; a gateway route
serves the champion as its stable target and the candidate as a canary, and the rollout
controller judges the canary on its own traffic, step by step, then promotes it (``champion``
moves to it) or rolls it back. The answers of both versions to the suite's questions are printed
side by side. Each step is the product's own path; only the traffic is simulated.

The LM is built here the first time (``quickstart_lm``: seconds of CPU, no download) and
registered as ``support-bot@1``. Without torch, transformers, peft and trl (the ``llm`` extra)
this part is skipped with one line saying how to enable it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
from pathlib import Path
from typing import Any

__all__ = ["MODEL", "finetune_loop"]

MODEL = "support-bot"
_NEEDS = ("torch", "transformers", "peft", "trl")
_SAMPLING = {"temperature": 0, "max_tokens": 32}  # greedy: the printed answers are repeatable
_RULES = [{"metric": "pass_rate", "min": 0.75}, {"metric": "pass_rate", "max_regression": 0.0}]


def finetune_loop(
    client: Any, out: Any, data_ref: str, prompt: str, suite: dict[str, Any], seed: int
) -> list[tuple[str, str]]:
    """Fine-tune, gate, canary and promote (or roll back) the support LM on ``data_ref``;
    ``prompt`` is the prompt's text and ``suite`` the eval suite (a mapping). Returns the
    commands to look at what it made."""
    missing = [name for name in _NEEDS if importlib.util.find_spec(name) is None]
    if missing:
        out.print(
            f"fine-tuning: skipped ({', '.join(missing)} missing): pip install 'opsloop[llm]' "
            "to close the LLM loop (fine-tune, gate, canary)\n"
        )
        return []
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small: more threads only wait on each other
    try:
        return _close_loop(client, out, data_ref, prompt, suite, seed)
    finally:
        torch.set_num_threads(threads)


def _close_loop(
    client: Any, out: Any, data_ref: str, prompt: str, suite: dict[str, Any], seed: int
) -> list[tuple[str, str]]:
    from opsloop.app.finetune import run_finetune

    base = _base(client, prompt, seed)
    suite_file = client.settings.home / "quickstart" / f"{suite['name']}.yaml"
    suite_file.parent.mkdir(parents=True, exist_ok=True)
    suite_file.write_text(json.dumps(suite, indent=2))  # JSON is YAML
    config = {
        "base_model": base, "datasets": data_ref, "output": MODEL, "adapter": "lora",
        "lora_r": 16, "lora_alpha": 32, "lora_target_modules": ["c_attn", "c_proj", "c_fc"],
        "learning_rate": 5e-3, "max_steps": 40, "micro_batch_size": 16, "seed": seed,
        "gate": {"suite": str(suite_file), "against": "champion", "rules": _RULES},
    }  # fmt: skip
    with out.status(f"fine-tuning {base} with LoRA on {data_ref}, then the eval gate"):
        result = run_finetune(client, config)
    gate = result.gate
    assert gate is not None  # the config has a gate
    loss = f"{result.final_loss:.3f}" if result.final_loss is not None else "n/a"
    out.print(f"finetune: [cyan]{result.version}[/] ← {base} + LoRA on {data_ref} "
              f"({result.steps} steps, final loss {loss})")  # fmt: skip
    _print_answers(client, out, gate.eval_run_id)
    rate = gate.metrics.get("pass_rate") or 0.0
    against = gate.against_metrics.get("pass_rate") if gate.against_metrics else None
    was = f" vs {against:.0%} for {gate.against}" if against is not None else ""
    verdict = "[green]passed[/] → candidate" if gate.passed else "[red]failed[/]"
    out.print(f"gate: {result.version} {verdict} (pass rate {rate:.0%}{was})")
    commands = [
        (f"opsloop models show {MODEL}", "the base, the LoRA version, aliases and the gate"),
        (f"opsloop eval show {gate.eval_run_id}", "the gate: both versions' answers, case by case"),
    ]
    if gate.passed and gate.against is not None and client.settings.is_remote:
        out.print("gateway: a gateway runs on the store itself; canary it with `opsloop gateway`")
    elif gate.passed and gate.against is not None:
        route = _canary(client, out, gate.against, result.version, suite, prompt)
        commands.append(("opsloop gateway-routes history " + route, "the canary's steps"))
    out.print("")
    return commands


def _base(client: Any, prompt: str, seed: int) -> str:
    """``support-bot@1``, built and registered as the champion the first time."""
    import numpy as np

    from opsloop.app.quickstart_lm import build_support_lm
    from opsloop.errors import NotFound

    try:
        return str(client.models.version(f"{MODEL}@1").ref)
    except NotFound:
        pass
    tokenizer, model = build_support_lm(prompt, seed=seed)
    version = client.models.register(
        MODEL, model, input_example=np.array([[1, 2, 3]]), flavor_options={"tokenizer": tokenizer},
        description="the quickstart's tiny support LM: knows the help center, declines in chat",
    )  # fmt: skip
    client.models.set_alias(version.ref, "champion", reason="the quickstart's first support LM")
    return str(version.ref)


def _print_answers(client: Any, out: Any, eval_run_id: str) -> None:
    """The champion's and the candidate's answer to each question of the gate's suite."""
    from opsloop.console.output import print_table

    results = client.evals.get(eval_run_id).results or []
    by_case: dict[str, dict[str, Any]] = {}
    for r in results:
        by_case.setdefault(r.case, {"question": r.vars.get("question", r.case)})[r.provider] = r
    rows = []
    for case in by_case.values():
        before, after = case.get("champion"), case.get("candidate")
        rows.append((case["question"], _shown(before), _shown(after)))
    print_table(["question", "before (champion)", "after (fine-tuned)"], rows,
                title="answers before and after fine-tuning (greedy)")  # fmt: skip


def _shown(result: Any) -> str:
    if result is None:
        return ""
    mark = "[green]✓[/]" if result.passed else "[red]✗[/]"
    return f"{mark} {result.output if result.output is not None else result.error}"


def _canary(
    client: Any, out: Any, stable: str, candidate: str, suite: dict[str, Any], prompt: str
) -> str:
    """Serve ``candidate`` as a canary beside ``stable`` on a gateway route, send it the
    suite's questions until the rollout controller promotes or rolls it back; on a promotion
    ``champion`` moves to the candidate. Returns the route's name."""
    from opsloop.app.gateway import build_gateway
    from opsloop.app.gateway import standard_parts
    from opsloop.client import shared_stores
    from opsloop.llm.gateway.config import parse_config
    from opsloop.llm.gateway.ports import Caller
    from opsloop.llm.gateway.rollout import RolloutController
    from opsloop.llm.gateway.rollout_state import list_routes

    route = "support"
    names = {ref: "v" + ref.rpartition("@")[2] for ref in (stable, candidate)}
    judge = {"max_error_rate": 0.0, "max_p95_latency_ms": 5000, "min_calls": 3}
    config = parse_config({
        "routes": [{
            "name": route,
            "targets": [{"name": names[ref], "kind": "local", "model": ref}
                        for ref in (stable, candidate)],
            "cache": {"exact": False},  # every call answered: the judge counts the calls
            "rollout": {"baseline": names[stable], "candidate": names[candidate],
                        "steps": [25, 50, 100], "interval_s": 0.001, "judge": judge},
        }],
        "auth": "open",
    })  # fmt: skip
    store, _ = shared_stores(client.settings)
    folder = Path(client.settings.home) / "spool" / "quickstart-gateway"
    parts = standard_parts(config, store, client)
    gateway = build_gateway(config, store=store, spool_folder=folder, span_thread=True, **parts)
    controller = RolloutController(store, gateway.router.routes)
    controller.sync()
    questions = [t["vars"]["question"] for t in suite["tests"]]
    bodies = [
        json.dumps({"model": route, **_SAMPLING, "messages": [
            {"role": "user", "content": prompt.replace("{{ question }}", q)}]}).encode()
        for q in questions
    ]  # fmt: skip
    loop = asyncio.new_event_loop()
    try:
        for _ in range(8):  # each round: traffic, then one judgment
            for _ in range(3):
                for body in bodies:
                    loop.run_until_complete(gateway.chat(Caller(), body))
            assert gateway.sink is not None
            gateway.sink.close()  # the spans are stored before the judge reads them
            with store.read() as session:
                before = next(r for r in list_routes(session) if r.route == route)
            verdict = controller.tick().get(route)
            with store.read() as session:
                state = next(r for r in list_routes(session) if r.route == route)
            if verdict is not None:
                out.print(f"gateway: canary {candidate} at {before.share:g}% → {verdict}, "
                          f"now {state.share:g}% ({state.status})")  # fmt: skip
            if state.status != "running":
                break
    finally:
        loop.run_until_complete(gateway.aclose())
        loop.close()
    if state.status == "promoted":
        reason = f"promoted by the gateway canary on route {route!r}"
        client.models.set_alias(candidate, "champion", reason=reason)
        out.print(f"gateway: [green]promoted[/] → {MODEL}@champion is {candidate}")
    else:
        out.print(f"gateway: [red]{state.status}[/]: {MODEL}@champion stays {stable}")
    return route
