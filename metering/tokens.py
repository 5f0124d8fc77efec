"""Token counts of text and chat messages, for events sent as text (pure: no Django).

Provider-reported counts are the source of truth for billing; these counts serve callers
that send text instead (streaming without usage, previews, an authorization's worst case).
A `Counter` is the tokenizer the tokenizer table chose for a model (`metering.tokenizers`)
with what it promises: ``estimated`` is true when the tokenizer is not the model's own
(the fallback for Claude, Gemini and models no rule matches), and for chat messages of a
family whose chat format tokentill does not know (format ``none``).

Chat formats, each family's documented one:

- ``openai``: OpenAI's cookbook rule (num_tokens_from_messages): 3 tokens per message plus
  its role and content, 1 more per ``name`` (plus the name itself), 3 priming the reply;
- ``chatml`` (Qwen): ``<|im_start|>{role}\\n{content}<|im_end|>\\n`` per message, then
  ``<|im_start|>assistant\\n``; a ``name``, which ChatML has no place for, counts as text;
- ``mistral``: mistral-common's own chat encoder (``encode_chat_completion``), which also
  refuses the conversations Mistral's models refuse (e.g. one that starts with the
  assistant);
- ``none``: the messages' texts alone, and the count says it is estimated.

Content is a string or a list of parts, of which only ``{"type": "text", "text": ...}``
parts can be counted; other message keys (``tool_calls``…) are not counted.
"""

from dataclasses import dataclass
from typing import NamedTuple

from .tokenizers import Loaded

MAX_TEXT_CHARS = 1_000_000
MAX_MESSAGES = 10_000
OPENAI, CHATML, MISTRAL, NO_FORMAT = "openai", "chatml", "mistral", "none"
CHAT_FORMATS = (OPENAI, CHATML, MISTRAL, NO_FORMAT)

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
TOKENS_REPLY_PRIMING = 3


@dataclass(frozen=True)
class Counter:
    """What counts one model's text: the tokenizer's name as answers report it."""

    tokenizer: str
    estimated: bool
    chat_format: str
    loaded: Loaded


class TokenCount(NamedTuple):  # a tuple: made on every count, at a tenth of a dataclass's cost
    tokens: int
    tokenizer: str  # e.g. "o200k_base", "mistral-tekken-240911"
    estimated: bool


class TokenizeError(ValueError):
    """Input that cannot be counted; ``path`` locates it, e.g. ``"messages[2].content"``."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


@dataclass(frozen=True)
class _Message:
    role: str
    texts: list[str]
    name: str | None
    raw: dict


def count_text(*, counter: Counter, text: str) -> TokenCount:
    """Tokens in one text, with no chat formatting."""
    tokens = counter.loaded.count(_text(text, "text"))
    return TokenCount(tokens, counter.tokenizer, counter.estimated)


def count_messages(*, counter: Counter, messages) -> TokenCount:
    """Prompt tokens of a chat conversation, its format's overhead included."""
    parsed = _messages(messages)
    fmt, tok = counter.chat_format, counter.loaded.count
    if fmt == MISTRAL:
        tokens = _mistral_chat(counter, parsed)
    elif fmt == CHATML:
        tokens = 1 + tok("assistant\n")
        for m in parsed:
            tokens += 2 + tok(f"{m.role}\n{''.join(m.texts)}") + tok("\n")
            tokens += tok(m.name) if m.name is not None else 0
    elif fmt == OPENAI:
        tokens = TOKENS_REPLY_PRIMING
        for m in parsed:
            tokens += TOKENS_PER_MESSAGE + tok(m.role) + sum(tok(t) for t in m.texts)
            tokens += TOKENS_PER_NAME + tok(m.name) if m.name is not None else 0
    else:
        tokens = sum(sum(tok(t) for t in m.texts) + tok(m.name or "") for m in parsed)
    estimated = counter.estimated or fmt == NO_FORMAT
    return TokenCount(tokens, counter.tokenizer, estimated)


def _mistral_chat(counter: Counter, messages: list[_Message]) -> int:
    from mistral_common.exceptions import MistralCommonException
    from mistral_common.protocol.instruct.request import ChatCompletionRequest

    native = counter.loaded.native
    if native is None or not hasattr(native, "encode_chat_completion"):
        raise TokenizeError("model", f"{counter.tokenizer} has no Mistral chat format")
    try:
        request = ChatCompletionRequest.from_openai(messages=[m.raw for m in messages])
        return len(native.encode_chat_completion(request).tokens)
    except (ValueError, MistralCommonException) as error:
        raise TokenizeError("messages", str(error)[:300]) from error


def _messages(messages) -> list[_Message]:
    if not isinstance(messages, list) or not messages:
        raise TokenizeError("messages", "must be a non-empty list of messages")
    if len(messages) > MAX_MESSAGES:
        raise TokenizeError("messages", f"must have at most {MAX_MESSAGES:,} messages")
    return [_message(message, f"messages[{i}]") for i, message in enumerate(messages)]


def _message(message, path: str) -> _Message:
    if not isinstance(message, dict):
        raise TokenizeError(path, "must be an object with role and content")
    if "role" not in message:
        raise TokenizeError(f"{path}.role", "is required")
    role = _text(message["role"], f"{path}.role")
    if "content" not in message:
        raise TokenizeError(f"{path}.content", "is required")
    name = _text(message["name"], f"{path}.name") if "name" in message else None
    return _Message(role, _content(message["content"], f"{path}.content"), name, message)


def _content(content, path: str) -> list[str]:
    if isinstance(content, str):
        return [_text(content, path)]
    if not isinstance(content, list):
        raise TokenizeError(path, "must be a string or a list of text parts")
    texts = []
    for index, part in enumerate(content):
        part_path = f"{path}[{index}]"
        if not isinstance(part, dict):
            raise TokenizeError(part_path, 'must be an object such as {"type": "text", ...}')
        if part.get("type") != "text":
            raise TokenizeError(
                part_path,
                f"only text parts can be counted, not type {str(part.get('type'))[:40]!r}",
            )
        texts.append(_text(part.get("text"), f"{part_path}.text"))
    return texts


def _text(text, path: str) -> str:
    if not isinstance(text, str):
        raise TokenizeError(path, "must be a string")
    if len(text) > MAX_TEXT_CHARS:
        raise TokenizeError(
            path, f"is {len(text):,} characters; at most {MAX_TEXT_CHARS:,} can be counted"
        )
    return text
