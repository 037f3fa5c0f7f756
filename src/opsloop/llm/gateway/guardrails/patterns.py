"""Prompt-injection tier 1: hand-written patterns, microseconds a message.

The text is normalised first (NFKC, so full-width and styled letters read as plain ones;
zero-width characters removed, so ``ig\\u200bnore`` reads ``ignore``; lower case; runs of
white space as one space). Each family of patterns carries a weight: a *strong* family (1.0) is
a phrase with almost no benign use ("ignore all previous instructions", a forged
``<|im_start|>system`` turn); a *weak* one (0.5) is suggestive on its own ("you are now",
"without any restrictions") and counts as an injection only beside another. The score is the
sum of the matched families' weights, capped at 1; 1 means injection.

The phrases cover what published attacks share (instruction override, system-prompt
extraction, persona switches, forged chat delimiters, safety switches, exfiltration through
links) in English, with the override phrase in German, French, Spanish, Italian and Portuguese.
Paraphrases the patterns miss are tier 2's job (:mod:`.classifier`).
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["FAMILIES", "normalise", "tier1"]

_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_SPACE = re.compile(r"\s+")

_PRIOR = (
    r"(?:previous|prior|above|earlier|preceding|initial|original|system|developer|safety|"
    r"existing|current|old|all|any|every|your)"
)
_ORDERS = (
    r"(?:instruction|rule|direction|guideline|prompt|constraint|polic(?:y|ie)|programming|"
    r"directive|guardrail|restriction|command|context|orders?|training|message)"
)

FAMILIES: dict[str, tuple[float, str]] = {
    "override": (
        1.0,
        rf"\b(?:ignore|disregard|forget|override|bypass|overrule|discard|abandon|set aside|"
        rf"stop following|do not follow|don't follow|no longer follow)\b(?: (?:about|all|of|"
        rf"the|everything|anything|what))* {_PRIOR}\b[^.\n]{{0,30}}?\b{_ORDERS}|"
        rf"\b(?:ignore|disregard|forget)\b (?:everything|all|anything)(?: (?:you were told|"
        rf"i (?:said|told you)))? (?:above|before|so far|prior|earlier|until now)\b|"
        rf"\b(?:regardless of|even if it contradicts|despite) (?:what )?{_PRIOR} {_ORDERS}|"
        rf"\b(?:treat this as|this is) the (?:very )?first message\b|\bpretend (?:the "
        rf"conversation|this chat|everything) (?:so far )?never happened\b",
    ),
    "override_translated": (
        1.0,
        r"\b(?:ignorier(?:e|en)|vergiss)\b.{0,30}\b(?:anweisungen|regeln|instruktionen)|"
        r"\b(?:ignore[zr]?|oublie[zr]?) (?:toutes )?(?:les|tes|vos) (?:\w+ )?(?:instructions|"
        r"consignes|r[eè]gles)\b|\b(?:ignora|olvida) (?:todas )?(?:las|tus) (?:\w+ )?"
        r"(?:instrucciones|reglas)\b|\bignora (?:tutte )?le (?:\w+ )?(?:istruzioni|regole)\b|"
        r"\b(?:ignore|esque[cç]a) (?:todas )?as (?:\w+ )?(?:instru[cç][oõ]es|regras)\b",
    ),
    "forged_turn": (
        1.0,
        r"<\|?(?:im_start|im_end|system|endoftext|eot_id|start_header_id)\|?>|\[/?inst\]|"
        r"</?(?:system|sys|instructions?|admin)>|<<sys>>|(?:^|\n|\s)#{2,} ?(?:system|new "
        r"instructions?)\b|\b(?:end of (?:the )?(?:system )?prompt|new instructions:|"
        r"system override|admin override)",
    ),
    "extraction": (
        1.0,
        r"\b(?:reveal|show|print|repeat|output|display|leak|dump|recite|spell out|copy|"
        r"write out|tell me|give me|share)\b[^.\n]{0,25}?\b(?:your|the) (?:full |entire |"
        r"exact |complete )?(?:system|hidden|initial|original|secret|developer|internal|"
        r"confidential) (?:prompt|instructions?|message|rules|directives|configuration)|"
        r"\b(?:repeat|print|output) (?:all |everything |the (?:text|words) )?(?:above|before "
        r"this)\b",
    ),
    "jailbreak": (
        1.0,
        r"\b(?:you are|you're|now) jailbroken\b|\bjailbreak (?:mode|prompt)\b|"
        r"\bdo anything now\b|\bdan mode\b|\b(?:developer|"
        r"god|sudo|unrestricted|debug) mode (?:enabled|on|activated)\b|\benable (?:developer|"
        r"god|sudo|unrestricted) mode\b|\b(?:disable|turn off|deactivate|remove|switch off) "
        r"(?:your |all |the )*(?:safety|content|ethical|moral) (?:filters?|guidelines?|"
        r"protocols?|settings?|restrictions?|rules?|checks|layers?)\b|\b(?:turn off|disable) "
        r"(?:the )?moderation\b|\b(?:break|bypass|circumvent|evade|overlook|escape) (?:your|all "
        r"(?:your|the)|the|its) (?:own )?(?:rules|filters?|safety|guidelines|restrictions|"
        r"moderation|sandbox|policies|safeguards|programming)\b|\bno longer (?:bound|"
        r"restricted) by\b|\bi have been pwned\b|\bpwned\b",
    ),
    "persona": (
        0.5,
        r"\byou are (?:now|no longer)\b|\bfrom now on,? (?:you|your|act|respond|answer)\b|"
        r"\bpretend (?:to be|you are|that you)\b|\b(?:act|behave|roleplay) as (?:if you were |"
        r"an? )?(?:unrestricted|unfiltered|uncensored|evil|rogue|different)\b|\byour new "
        r"(?:role|persona|instructions?|task|name|objective|goal) (?:is|are)\b|\b(?:you are|"
        r"you're) (?:an? )?(?:ai|model|assistant) (?:that|who|with|without)\b|\bsimulate an? "
        r"(?:ai|model|assistant)\b|\bforget (?:that )?you(?:'re| are)\b|\bswitch personality\b",
    ),
    "no_limits": (
        0.5,
        r"\bwithout (?:any )?(?:restrictions|filters?|limitations|censorship|rules|"
        r"guidelines|refusing)\b|\bno (?:ethical|moral|safety) (?:guidelines|constraints|"
        r"restrictions|limits)\b|\b(?:uncensored|unfiltered)\b|\bnever refuse\b",
    ),
    "secrecy": (
        0.5,
        r"\b(?:do not|don't|never) (?:tell|inform|mention|reveal to|alert) (?:the )?"
        r"(?:user|human|anyone)\b|\bthis is (?:an? )?(?:authorized|sanctioned) (?:test|"
        r"request|override)\b|\bi am (?:your|the) (?:developer|creator|administrator|admin)\b",
    ),
    "exfiltration": (
        0.5,
        r"!\[[^\]]*\]\(https?://[^)\s]*[?&][^)\s]*=|\b(?:send|post|forward|email|upload|"
        r"exfiltrate|transmit)\b[^.\n]{0,40}\b(?:to|at) https?://|\b(?:api keys?|passwords?|"
        r"credentials|secrets?|tokens?)\b[^.\n]{0,30}\b(?:to|into) (?:this|the following) "
        r"(?:url|link|endpoint|address)",
    ),
    "addressed": (
        0.5,
        r"\b(?:note|instructions?|message|attention|important) (?:to|for) (?:the |any )?(?:ai|"
        r"assistant|language model|llm|model|chatbot|bot|grader|ai agents?|ai system)s?\b|"
        r"\b(?:dear|hey|attention) (?:ai|assistant|model|chatbot)\b|\b(?:ai agents?|grader model"
        r"|language model)s?(?: reading this)?:",
    ),
    "new_orders": (
        0.5,
        r"\b(?:new|updated|real|true|actual|higher-priority) (?:rule|instructions?|objective|"
        r"task|goal|policy|system (?:prompt|message))s?(?: is| are|:| follows?| than)|\bbegin "
        r"(?:system message|admin session)\b|\bthis (?:message|instruction) (?:is from the "
        r"system|overrides?|takes priority)\b|\b(?:obey|comply with) (?:me|all requests|"
        r"everything)\b",
    ),
    "prompt_probe": (
        0.5,
        r"\b(?:hidden|secret|system|initial|original|first) (?:prompt|message|instructions?)\b|"
        r"\binstructions? you(?:'ve| have| were)? (?:been )?given\b|\bwhat were you told\b|"
        r"\byour context window\b|\bsystem_prompt\b",
    ),
    "instead": (
        0.5,
        r"\binstead,? (?:you (?:must|will|should) )?(?:say|respond|reply|output|write|print)"
        r"\b|\b(?:only|just) (?:say|respond with|reply with|output|print) [\"'“]",
    ),
}
_COMPILED = [(name, weight, re.compile(pattern)) for name, (weight, pattern) in FAMILIES.items()]


def normalise(text: str) -> str:
    """What the patterns read: NFKC, no zero-width characters, lower case, single spaces."""
    folded = unicodedata.normalize("NFKC", text).translate(_ZERO_WIDTH).lower()
    return _SPACE.sub(" ", folded)


def tier1(text: str) -> tuple[float, list[str]]:
    """The tier 1 score of ``text`` (0 to 1; 1 means injection) and the families matched."""
    plain = normalise(text)
    matched = [name for name, _, pattern in _COMPILED if pattern.search(plain)]
    score = min(1.0, sum(FAMILIES[name][0] for name in matched))
    return score, matched
