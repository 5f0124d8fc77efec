"""The tokenizer table: its rules changed (validated in full, audited) and read for counting.

A rule is checked by loading what it names: a tiktoken encoding or packaged tokenizer must
load on this server, and an uploaded tokenizer.json must load in Hugging Face's
``tokenizers`` and count a probe; anything refused stores nothing. Counting reads the
table once per request or batch (`counter_resolver`); each process keeps what it loaded
(`metering.tokenizers`), an uploaded file by its SHA-256, so a changed row is loaded
afresh and an unchanged one never read again.
"""

import copy
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from common.audit import audit_record, snapshot

from .models import TokenizerRule
from .tokenizers import (
    MISTRAL_LOADER,
    PACKAGED,
    PACKAGED_KIND,
    TIKTOKEN,
    UPLOADED,
    Rule,
    TokenizerError,
    load,
    pattern_check,
    rule_for_model,
    text_sha256,
    tokenizer_json_check,
    uploaded_load,
)
from .tokens import MISTRAL, OPENAI, Counter, TokenizeError

RULE_FIELDS = ("pattern", "kind", "name", "estimated", "chat_format", "note")
_AUDITED = (*RULE_FIELDS, "sha256")


# --- Reads ----------------------------------------------------------------------------------


def tokenizer_rules_list() -> list[TokenizerRule]:
    """Every rule, by pattern, without the uploaded files' text."""
    return list(TokenizerRule.objects.defer("tokenizer_json").order_by("pattern"))


def tokenizer_rule_get(*, rule_id: int) -> TokenizerRule | None:
    return TokenizerRule.objects.defer("tokenizer_json").filter(pk=rule_id).first()


def counter_resolver() -> Callable[[str], Counter]:
    """A function from a model to the `Counter` that counts its text, over the table as it
    is at its first call (read once, then, so a batch with no text reads nothing); a model
    no rule matches gets the fallback, estimated. Raises TokenizeError (at ``model``) when
    the chosen tokenizer cannot be loaded."""
    rules: list[Rule] | None = None
    chosen: dict[str, Counter] = {}

    def counter_for(model: str) -> Counter:
        nonlocal rules
        if rules is None:
            rules = [
                Rule(r.pk, r.pattern, r.kind, r.name, r.estimated, r.chat_format, r.sha256)
                for r in TokenizerRule.objects.defer("tokenizer_json")
            ]
        if model not in chosen:
            chosen[model] = _counter(rule_for_model(rules, model))
        return chosen[model]

    return counter_for


def _counter(rule: Rule | None) -> Counter:
    try:
        if rule is None:
            # Messages framed as OpenAI's: an estimate of any family's framing, as before.
            name = settings.TOKENTILL_DEFAULT_ENCODING
            return Counter(name, True, OPENAI, load(TIKTOKEN, name))
        if rule.kind == UPLOADED:
            loaded = uploaded_load(rule.id, rule.sha256, lambda: _uploaded_text(rule.id))
        else:
            loaded = load(rule.kind, rule.name)
    except TokenizerError as error:
        raise TokenizeError("model", str(error)) from error
    return Counter(rule.name, rule.estimated, rule.chat_format, loaded)


def _uploaded_text(rule_id: int) -> str:
    text: str = TokenizerRule.objects.values_list("tokenizer_json", flat=True).get(pk=rule_id)
    return text


# --- Writes ---------------------------------------------------------------------------------


def tokenizer_rule_create(*, file: bytes | None = None, **fields: Any) -> TokenizerRule:
    """Add a rule; `file` is the tokenizer.json of an uploaded kind. Nothing is stored
    unless all of it is valid."""
    return _save(TokenizerRule(), fields, file, "tokenizer_rule.create")


def tokenizer_rule_update(
    *, rule: TokenizerRule, file: bytes | None = None, **fields: Any
) -> TokenizerRule:
    """Change the fields given (and the file, when one is given) of a rule."""
    return _save(rule, fields, file, "tokenizer_rule.change")


def tokenizer_rule_delete(*, rule: TokenizerRule) -> None:
    with transaction.atomic():
        before = snapshot(rule, _AUDITED)
        pk = rule.pk
        rule.delete()
        rule.pk = pk
        audit_record("tokenizer_rule.delete", rule, before=before, deleted=True)


def tokenizer_rule_check(*, rule: TokenizerRule, file: bytes | None = None) -> None:
    """Refuse, as `tokenizer_rule_update` would, a rule (unsaved, left unchanged) and file:
    for a form to show the refusal on its fields before anything is saved."""
    _check(copy.copy(rule), file)


def _save(
    rule: TokenizerRule, fields: dict[str, Any], file: bytes | None, action: str
) -> TokenizerRule:
    unknown = set(fields) - set(RULE_FIELDS)
    if unknown:
        raise ValueError(f"{', '.join(sorted(unknown))} cannot be set")
    with transaction.atomic():
        before = None
        if rule.pk is not None:
            rule = TokenizerRule.objects.select_for_update().get(pk=rule.pk)
            before = snapshot(rule, _AUDITED)
        for name, value in fields.items():
            setattr(rule, name, value)
        _check(rule, file)
        rule.full_clean()
        rule.save()
        audit_record(action, rule, before=before, after=snapshot(rule, _AUDITED))
    return rule


def _check(rule: TokenizerRule, file: bytes | None) -> None:
    """Refuse what cannot count: a bad pattern, a tokenizer that does not load, a file
    that is not a tokenizer.json, a chat format the tokenizer cannot give."""
    why = pattern_check(rule.pattern or "")
    if why:
        raise ValidationError({"pattern": [why]})
    if file is not None and rule.kind != UPLOADED:
        raise ValidationError({"file": ["only an uploaded tokenizer has a file"]})
    if rule.kind == UPLOADED:
        if file is not None:
            try:
                rule.tokenizer_json = tokenizer_json_check(file)
            except TokenizerError as error:
                raise ValidationError({"file": [str(error)]}) from error
            rule.sha256 = text_sha256(rule.tokenizer_json)
        elif not rule.sha256:
            raise ValidationError({"file": ["an uploaded tokenizer needs its tokenizer.json"]})
    else:
        rule.tokenizer_json, rule.sha256 = "", ""
        if rule.kind == PACKAGED_KIND and rule.name not in PACKAGED:
            known = ", ".join(PACKAGED)
            raise ValidationError({"name": [f"no packaged tokenizer is called that; {known}"]})
        if rule.kind in (TIKTOKEN, PACKAGED_KIND):
            try:
                load(rule.kind, rule.name)
            except TokenizerError as error:
                raise ValidationError({"name": [str(error)]}) from error
    mistral = rule.kind == PACKAGED_KIND and PACKAGED[rule.name].loader == MISTRAL_LOADER
    if rule.chat_format == MISTRAL and not mistral:
        raise ValidationError({"chat_format": ["the mistral format needs a Mistral tokenizer"]})
