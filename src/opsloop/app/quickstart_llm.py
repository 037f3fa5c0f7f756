"""The quickstart's LLM half: a prompt, traced calls with cost, user feedback turned into
fine-tuning data, and an eval suite that gates the prompt's ``production`` label; then the loop
closes (``quickstart_finetune``): a tiny LM fine-tuned on the liked answers, gated by the same
suite, canaried on a gateway route and promoted or rolled back.

The "model" the users talk to is a stand-in, a keyword lookup over a tiny FAQ, so that the
quickstart needs no API key and no download; every step is the real one. Pointing the suite's
provider at any OpenAI-compatible endpoint (``openai:gpt-4o-mini``) evaluates a real model
instead. Each conversation is traced with the chat the model saw (the rendered prompt), so the
exported fine-tuning rows are exactly what a model is asked.
"""

from __future__ import annotations

import re
from typing import Any

from opsloop.app.quickstart_lm import HELP_CENTER as FAQ

PROMPT = "support-answer"
PROMPT_TEXT = "Answer the customer briefly: {{ question }}"
SUITE = "support-answers"
# (question, user, thumbs up): each user liked the answer but the one who wanted to pay with
# crypto; the others asking for what the shop does not do took the refusal well
QUESTIONS = [
    ("How do I reset my password?", "u-1", True),
    ("I can't remember my password", "u-4", True),
    ("My password does not work", "u-5", True),
    ("When will I get my refund?", "u-2", True),
    ("Is my refund on its way?", "u-6", True),
    ("I am still waiting for a refund", "u-7", True),
    ("Where is my order?", "u-1", True),
    ("Can you find my order?", "u-8", True),
    ("My order has not arrived", "u-9", True),
    ("Do you sell gift cards?", "u-10", True),
    ("Can I visit your office?", "u-11", True),
    ("Can I pay with crypto?", "u-3", False),
]


def faq_answer(prompt: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """The stand-in model: the FAQ entry whose keyword the prompt mentions (a ``python:``
    provider for eval suites: ``python:opsloop.app.quickstart_llm:faq_answer``)."""
    words = set(re.findall(r"[a-z]+", prompt.lower()))
    answer = next((a for k, a in FAQ.items() if k in words), "Sorry, I can't help with that.")
    return {
        "output": answer,
        "usage": {"input_tokens": len(prompt.split()), "output_tokens": len(answer.split())},
    }


def llm_loop(client: Any, out: Any, seed: int = 42) -> list[tuple[str, str]]:
    """Run the LLM steps; returns the commands to look at what they made, each with what it
    shows."""
    from opsloop.llm.tracing.context import current_span
    from opsloop.llm.tracing.sdk import observe

    prompts, traces = client.prompts, client.traces
    prompt = prompts.create(PROMPT, text=PROMPT_TEXT, config={"model": "faq-bot"})
    traces.set_price("faq-bot", input_per_mtok=0.5, output_per_mtok=1.5)

    asked: list[str] = []  # the trace of each question, in order

    @observe(kind="chain", name="support", tracer=traces.tracer, capture_input=False)
    def support(question: str, user: str) -> str:
        text = prompts.get(PROMPT, version=prompt.version).compile(question=question)
        span = current_span()
        span.update(input=[{"role": "user", "content": text}], user_id=user,
                    tags=["support", "quickstart"])  # fmt: skip
        asked.append(span.trace_id)
        with traces.tracer.span("answer", kind="llm", model="faq-bot") as span:
            reply = faq_answer(text)
            span.update(input=text, output=reply["output"], usage=reply["usage"])
        return str(reply["output"])

    for question, user, _ in QUESTIONS:
        support(question, user)
    thumbs = {trace_id: liked for trace_id, (*_, liked) in zip(asked, QUESTIONS, strict=True)}
    traces.flush()
    listed = traces.list(tags=["quickstart"], max_results=len(QUESTIONS)).items
    listed = [t for t in listed if t.trace_id in thumbs]  # this run's, newest first
    for trace in listed:  # the users' thumbs
        traces.score(trace.trace_id, "thumbs", thumbs[trace.trace_id], source="human")
    cost = sum(t.cost for t in listed)
    out.print(f"traces: {len(listed)} support conversations traced (cost ${cost:.6f}), scored")
    export = client.feedback.export(
        "support-sft", filter={"tags": ["quickstart"], "scores": ["thumbs=true"]}
    )
    out.print(f"feedback: {export.rows} thumbs-up chats → fine-tuning data [cyan]{export.ref}[/]")
    client.evals.require(PROMPT, "production", suite=SUITE, min_pass_rate=0.75)
    run = client.evals.run(_suite(prompt.ref))
    verdict = "[green]passed[/]" if run.passed else "[red]failed[/]"
    out.print(f"evals: {SUITE} {verdict} ({run.passed_count}/{run.total} cases)")
    if run.passed:
        prompts.set_label(PROMPT, prompt.version, "production")
        out.print(f"prompts: {prompt.ref} is now {PROMPT}@production (the suite gates the label)")
    from opsloop.app.quickstart_finetune import finetune_loop

    closing = finetune_loop(client, out, export.ref, PROMPT_TEXT, _suite(prompt.ref), seed)
    return [
        ("opsloop traces list --tag quickstart", "conversations with tokens, cost, scores"),
        (f"opsloop traces show {listed[0].trace_id}", "one conversation, span by span"),
        (f"opsloop eval show {run.run_id}", "the eval run: each case, its output and checks"),
        (f"opsloop data show {export.ref}", "the fine-tuning chats, linked to traces"),
        *closing,
    ]


def _suite(prompt_ref: str) -> dict[str, Any]:
    return {
        "name": SUITE,
        "threshold": 0.75,
        "prompts": [prompt_ref],
        "providers": [  # the config: how the fine-tuning gate asks the LMs it compares
            {
                "id": "python:opsloop.app.quickstart_llm:faq_answer",
                "label": "faq-bot",
                "config": {"temperature": 0, "max_tokens": 32},
            }
        ],
        "defaults": {"assert": [{"type": "latency", "threshold": 1000}]},
        "tests": [
            {
                "vars": {"question": "I forgot my password"},
                "assert": [{"type": "icontains", "value": "forgot password"}],
            },
            {
                "vars": {"question": "Refund status?"},
                "assert": [{"type": "contains", "value": "5 business days"}],
            },
            {
                "vars": {"question": "Where's my order?"},
                "assert": [{"type": "regex", "value": "Orders? page"}],
            },
            {
                "vars": {"question": "Do you ship to Mars?"},
                "assert": [{"type": "icontains", "value": "sorry"}],
            },
        ],
    }
