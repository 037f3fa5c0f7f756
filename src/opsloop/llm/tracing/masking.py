"""Masking spans before they are written anywhere (the database or the ingest spool).

What carries text in a span is masked: its input and output (the prompt and completion,
``input.value`` / ``output.value``, ``gen_ai.*`` messages: :mod:`.semconv` has already read them
into these two fields), its status message, the string values of its attributes and of its
events' attributes (an older ``gen_ai`` instrumentation puts the prompt there; the attribute's
key tells a phone column from prose). Ids, names, the model, token counts and times are not
text a person wrote and are left alone: ``user_id`` in particular stays, since erasure finds
an end user's traces by it.
"""

from __future__ import annotations

from collections.abc import Iterable

from opsloop.governance.masker import Masker
from opsloop.llm.tracing.records import SpanRecord

__all__ = ["mask_spans"]


def mask_spans(masker: Masker | None, records: Iterable[SpanRecord]) -> None:
    """Mask ``records`` in place (nothing when ``masker`` is None: masking is off)."""
    if masker is None:
        return
    text, value = masker.text, masker.value
    for record in records:
        if record.input:
            record.input = text(record.input)
        if record.output:
            record.output = text(record.output)
        if record.status_message:
            record.status_message = text(record.status_message)
        if record.attributes:
            record.attributes = value(record.attributes)
        for event in record.events:
            attributes = event.get("attributes")
            if attributes:
                event["attributes"] = value(attributes)
