"""A provider's own usage object mapped onto tokentill's canonical metrics (pure: no Django).

Every result has the five canonical metrics, with one meaning whatever the provider:

- ``input_tokens``: uncached input tokens, billed at the input rate;
- ``cached_input_tokens``: input tokens read from a prompt cache;
- ``cache_creation_input_tokens``: input tokens written to a prompt cache;
- ``output_tokens``: all generated tokens, reasoning included;
- ``reasoning_tokens``: informational, already inside ``output_tokens``.

So ``input_tokens + cached_input_tokens + cache_creation_input_tokens`` is always the
provider's full input, and a formula that prices each of them once bills nothing twice.

Providers disagree about which of their totals include which parts, so each shape has its
own small function, and each docstring names the provider documentation it relies on.
Unknown keys are ignored: providers add fields over time. Counts that are read must be
JSON integers (not booleans, not floats, not strings) from 0 to ``MAX_COUNT``.
"""

from typing import Any, Literal, overload

PROVIDERS = ("openai", "anthropic", "google")
MAX_COUNT = 10**12


class UsageError(ValueError):
    """A usage object that cannot be mapped.

    ``path`` is the dotted path inside the usage object (``"prompt_tokens_details.
    cached_tokens"``), or ``""`` for the object itself; ``message`` says what is wrong.
    """

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


def usage_to_metrics(provider: str, usage) -> dict[str, int]:
    """Canonical metrics for one call, from the usage object ``provider`` returned."""
    if provider not in PROVIDERS:
        raise UsageError("", f"unknown provider {provider!r}; known: {', '.join(PROVIDERS)}")
    if not isinstance(usage, dict):
        raise UsageError("", "must be an object")
    if provider == "anthropic":
        return _anthropic_messages(usage)
    if provider == "google":
        return _google_usage_metadata(usage)
    chat, responses = "prompt_tokens" in usage, "input_tokens" in usage
    if chat and responses:
        raise UsageError(
            "",
            "has both prompt_tokens (Chat Completions) and input_tokens (Responses API); "
            "send the usage object of one call",
        )
    if chat:
        return _openai_chat_completions(usage)
    if responses:
        return _openai_responses(usage)
    raise UsageError("", "needs prompt_tokens (Chat Completions) or input_tokens (Responses API)")


def _openai_chat_completions(usage: dict) -> dict[str, int]:
    """OpenAI Chat Completions ``usage`` (the ``CompletionUsage`` schema).

    Relies on: ``prompt_tokens`` counts the whole prompt, including the
    ``prompt_tokens_details.cached_tokens`` ("cached tokens present in the prompt") and
    ``audio_tokens``; ``completion_tokens`` counts the whole completion, including
    ``completion_tokens_details.reasoning_tokens`` and rejected prediction tokens ("still
    counted in the total completion tokens for purposes of billing"). OpenAI has no cache
    write charge. Either details object may be absent or null (streaming, older models).

    Audio tokens are billed at their own rates, so they are kept as informational extras
    ``audio_input_tokens`` and ``audio_output_tokens`` when reported (already inside the
    full prompt and inside ``output_tokens``, like ``reasoning_tokens``).
    """
    prompt = _count(usage, "prompt_tokens", required=True)
    completion = _count(usage, "completion_tokens", required=True)
    cached = _count(usage, "prompt_tokens_details.cached_tokens") or 0
    reasoning = _count(usage, "completion_tokens_details.reasoning_tokens") or 0
    _within(cached, "prompt_tokens_details.cached_tokens", prompt, "prompt_tokens")
    _within(
        reasoning, "completion_tokens_details.reasoning_tokens", completion, "completion_tokens"
    )
    metrics = _canonical(
        input_tokens=prompt - cached,
        cached_input_tokens=cached,
        output_tokens=completion,
        reasoning_tokens=reasoning,
    )
    audio_in = _count(usage, "prompt_tokens_details.audio_tokens")
    if audio_in is not None:
        _within(audio_in, "prompt_tokens_details.audio_tokens", prompt, "prompt_tokens")
        metrics["audio_input_tokens"] = audio_in
    audio_out = _count(usage, "completion_tokens_details.audio_tokens")
    if audio_out is not None:
        _within(
            audio_out, "completion_tokens_details.audio_tokens", completion, "completion_tokens"
        )
        metrics["audio_output_tokens"] = audio_out
    return metrics


def _openai_responses(usage: dict) -> dict[str, int]:
    """OpenAI Responses API ``usage`` (the ``ResponseUsage`` schema).

    Relies on: ``input_tokens`` includes ``input_tokens_details.cached_tokens`` (the same
    rule as Chat Completions' ``prompt_tokens``); ``output_tokens`` includes
    ``output_tokens_details.reasoning_tokens``.
    """
    given = _count(usage, "input_tokens", required=True)
    output = _count(usage, "output_tokens", required=True)
    cached = _count(usage, "input_tokens_details.cached_tokens") or 0
    reasoning = _count(usage, "output_tokens_details.reasoning_tokens") or 0
    _within(cached, "input_tokens_details.cached_tokens", given, "input_tokens")
    _within(reasoning, "output_tokens_details.reasoning_tokens", output, "output_tokens")
    return _canonical(
        input_tokens=given - cached,
        cached_input_tokens=cached,
        output_tokens=output,
        reasoning_tokens=reasoning,
    )


def _anthropic_messages(usage: dict) -> dict[str, int]:
    """Anthropic Messages ``usage``.

    Relies on: ``input_tokens`` counts only the input after the last cache breakpoint, so
    it excludes ``cache_read_input_tokens`` and ``cache_creation_input_tokens`` (the full
    input is the sum of the three); both cache counts may be absent or null.
    ``cache_creation`` splits the cache writes by lifetime; the one-hour writes are priced
    higher, so they are kept as the informational extra ``cache_creation_1h_input_tokens``
    (already inside ``cache_creation_input_tokens``). ``output_tokens`` is the billed total;
    ``output_tokens_details.thinking_tokens``, when sent, is a part of it and becomes
    ``reasoning_tokens``. ``server_tool_use.web_search_requests`` is billed per search and
    becomes the extra ``web_search_requests`` whenever it is sent.
    """
    given = _count(usage, "input_tokens", required=True)
    output = _count(usage, "output_tokens", required=True)
    cache_read = _count(usage, "cache_read_input_tokens") or 0
    cache_write = _count(usage, "cache_creation_input_tokens") or 0
    thinking = _count(usage, "output_tokens_details.thinking_tokens") or 0
    _within(thinking, "output_tokens_details.thinking_tokens", output, "output_tokens")
    metrics = _canonical(
        input_tokens=given,
        cached_input_tokens=cache_read,
        cache_creation_input_tokens=cache_write,
        output_tokens=output,
        reasoning_tokens=thinking,
    )
    one_hour = _count(usage, "cache_creation.ephemeral_1h_input_tokens")
    if one_hour is not None:
        _within(
            one_hour,
            "cache_creation.ephemeral_1h_input_tokens",
            cache_write,
            "cache_creation_input_tokens",
        )
        metrics["cache_creation_1h_input_tokens"] = one_hour
    searches = _count(usage, "server_tool_use.web_search_requests")
    if searches is not None:
        metrics["web_search_requests"] = searches
    return metrics


def _google_usage_metadata(usage: dict) -> dict[str, int]:
    """Gemini ``usageMetadata`` (REST camelCase, or the Python SDK's snake_case).

    Relies on: ``totalTokenCount`` is the sum of ``promptTokenCount``,
    ``candidatesTokenCount``, ``toolUsePromptTokenCount`` and ``thoughtsTokenCount``, so
    those four are disjoint. ``promptTokenCount`` includes ``cachedContentTokenCount``;
    ``toolUsePromptTokenCount`` (tool results given back to the model) is input that is not
    inside it. ``candidatesTokenCount`` excludes thoughts, which are billed at the output
    rate, so ``output_tokens`` is candidates plus thoughts. ``candidatesTokenCount`` is
    left out when nothing was generated; the Live API calls it ``responseTokenCount``.
    """
    prompt, prompt_key = _google_count(
        usage, "promptTokenCount", "prompt_token_count", required=True
    )
    cached, cached_key = _google_count(
        usage, "cachedContentTokenCount", "cached_content_token_count"
    )
    tool_prompt, _ = _google_count(usage, "toolUsePromptTokenCount", "tool_use_prompt_token_count")
    candidates, _ = _google_count(
        usage,
        "candidatesTokenCount",
        "candidates_token_count",
        "responseTokenCount",
        "response_token_count",
    )
    thoughts, _ = _google_count(usage, "thoughtsTokenCount", "thoughts_token_count")
    _within(cached, cached_key, prompt, prompt_key)
    return _canonical(
        input_tokens=prompt - cached + tool_prompt,
        cached_input_tokens=cached,
        output_tokens=candidates + thoughts,
        reasoning_tokens=thoughts,
    )


def _canonical(
    *,
    input_tokens: int,
    output_tokens: int,
    cached_input_tokens: int = 0,
    cache_creation_input_tokens: int = 0,
    reasoning_tokens: int = 0,
) -> dict[str, int]:
    return {
        "input_tokens": input_tokens,
        "cached_input_tokens": cached_input_tokens,
        "cache_creation_input_tokens": cache_creation_input_tokens,
        "output_tokens": output_tokens,
        "reasoning_tokens": reasoning_tokens,
    }


@overload
def _count(usage: dict, path: str, *, required: Literal[True]) -> int: ...
@overload
def _count(usage: dict, path: str, *, required: bool = False) -> int | None: ...
def _count(usage: dict, path: str, *, required: bool = False) -> int | None:
    """The count at a dotted path; None when it (or an object above it) is absent or null."""
    node: Any = usage  # JSON: an object at each step, or None once a key is absent
    *parents, name = path.split(".")
    for depth, key in enumerate(parents, start=1):
        node = node.get(key)
        if node is None:
            break
        if not isinstance(node, dict):
            raise UsageError(".".join(parents[:depth]), "must be an object")
    value = None if node is None else node.get(name)
    if value is None:
        if required:
            raise UsageError(path, "is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(path, f"must be a non-negative integer, not {json_kind(value)}")
    if value < 0:
        raise UsageError(path, f"must be a non-negative integer, not {value}")
    if value > MAX_COUNT:
        raise UsageError(path, f"must be at most {MAX_COUNT:,}, not {value:,}")
    return value


def _google_count(usage: dict, *spellings: str, required: bool = False) -> tuple[int, str]:
    """A Gemini count under whichever of its spellings was sent (0 when none was)."""
    sent = [key for key in spellings if usage.get(key) is not None]
    if len(sent) > 1:
        raise UsageError(sent[1], f"is another spelling of {sent[0]}; send only one")
    key = sent[0] if sent else spellings[0]
    if required and not sent:
        raise UsageError(key, f"is required (or {', '.join(spellings[1:])})")
    return _count(usage, key) or 0, key


def _within(part: int, part_path: str, whole: int, whole_path: str) -> None:
    """Refuse a part larger than the provider total that is said to include it."""
    if part > whole:
        part_name, whole_name = part_path.rsplit(".", 1)[-1], whole_path.rsplit(".", 1)[-1]
        raise UsageError(part_path, f"{part_name} ({part}) exceeds {whole_name} ({whole})")


def json_kind(value) -> str:
    """What a JSON value is, for a message that refuses it ("a string", "an array")."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
