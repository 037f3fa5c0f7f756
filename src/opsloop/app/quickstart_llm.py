"""The quickstart's LLM half: a prompt, traced calls with cost, user feedback turned into
fine-tuning data, and an eval suite that gates the prompt's ``production`` label.

The "model" is a stand-in, a keyword lookup over a tiny FAQ, so that the quickstart needs no
API key and no download; every step is the real one. Pointing the suite's provider at any
OpenAI-compatible endpoint (``openai:gpt-4o-mini``) evaluates a real model instead.
"""

from __future__ import annotations

import re
from typing import Any

PROMPT = "support-answer"
SUITE = "support-answers"
FAQ = {
    "password": "Use the 'Forgot password' link on the sign-in page.",
    "refund": "Refunds reach your card within 5 business days.",
    "order": "Track your order from the Orders page.",
}
QUESTIONS = [
    ("How do I reset my password?", "u-1"),
    ("When will I get my refund?", "u-2"),
    ("Where is my order?", "u-1"),
    ("Can I pay with crypto?", "u-3"),
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


def llm_loop(client: Any, out: Any) -> list[tuple[str, str]]:
    """Run the LLM steps; returns the commands to look at what they made, each with what it
    shows."""
    from opsloop.llm.tracing.context import current_span
    from opsloop.llm.tracing.sdk import observe

    prompts, traces = client.prompts, client.traces
    prompt = prompts.create(
        PROMPT, text="Answer the customer briefly: {{ question }}", config={"model": "faq-bot"}
    )
    traces.set_price("faq-bot", input_per_mtok=0.5, output_per_mtok=1.5)

    @observe(kind="chain", name="support", tracer=traces.tracer)
    def support(question: str, user: str) -> str:
        current_span().update(user_id=user, tags=["support", "quickstart"])
        with traces.tracer.span("answer", kind="llm", model="faq-bot") as span:
            text = prompts.get(PROMPT, version=prompt.version).compile(question=question)
            reply = faq_answer(text)
            span.update(input=text, output=reply["output"], usage=reply["usage"])
        return str(reply["output"])

    for question, user in QUESTIONS:
        support(question, user)
    traces.flush()
    listed = traces.list(tags=["quickstart"], max_results=len(QUESTIONS)).items
    for trace in listed:  # the users' thumbs: up when the bot answered
        traces.score(trace.trace_id, "thumbs", "Sorry" not in (trace.output or ""), source="human")
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
        out.print(f"prompts: {prompt.ref} is now {PROMPT}@production (the suite gates the label)\n")
    return [
        ("opsloop traces list --tag quickstart", "conversations with tokens, cost, scores"),
        (f"opsloop traces show {listed[0].trace_id}", "one conversation, span by span"),
        (f"opsloop eval show {run.run_id}", "the eval run: each case, its output and checks"),
        (f"opsloop data show {export.ref}", "the fine-tuning chats, linked to traces"),
    ]


def _suite(prompt_ref: str) -> dict[str, Any]:
    return {
        "name": SUITE,
        "threshold": 0.75,
        "prompts": [prompt_ref],
        "providers": [{"id": "python:opsloop.app.quickstart_llm:faq_answer", "label": "faq-bot"}],
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
