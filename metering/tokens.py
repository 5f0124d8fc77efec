"""Token counts computed with tiktoken, for events sent as text (pure: no Django).

Provider-reported counts are the source of truth for billing; these counts are estimates
for callers that send text instead (streaming without usage, previews, verification).
Models that tiktoken does not know (claude-*, gemini-*, llama…) are counted with a
configured default encoding, so their counts are approximations.

Encodings load through tiktoken's own cache, the folder named by ``TIKTOKEN_CACHE_DIR``;
without it tiktoken downloads them once. Text is encoded with ``disallowed_special=()``,
so a user's "<|endoftext|>" is counted as the plain text it is rather than refused.
"""

from dataclasses import dataclass
from functools import cache

import tiktoken

MAX_TEXT_CHARS = 1_000_000
MAX_MESSAGES = 10_000

# OpenAI's cookbook rule (num_tokens_from_messages) for the chat format of current models.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
TOKENS_REPLY_PRIMING = 3


@dataclass(frozen=True)
class TokenCount:
    tokens: int
    encoding: str  # e.g. "o200k_base"


class TokenizeError(ValueError):
    """Input that cannot be counted; ``path`` locates it, e.g. ``"messages[2].content"``."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


def encoding_name_for_model(model: str, *, default: str) -> str:
    """The encoding tiktoken maps ``model`` to (prefixes included), else ``default``."""
    try:
        return tiktoken.encoding_name_for_model(model)
    except KeyError:
        return default


def count_text(*, model: str, text: str, default_encoding: str) -> TokenCount:
    """Tokens in one text, with no chat formatting."""
    if not isinstance(text, str):
        raise TokenizeError("text", "must be a string")
    name = encoding_name_for_model(model, default=default_encoding)
    encoding = _encoding(name)
    return TokenCount(tokens=_tokens(encoding, text, "text"), encoding=name)


def count_messages(*, model: str, messages, default_encoding: str) -> TokenCount:
    """Prompt tokens of a chat conversation, formatting overhead included.

    Follows OpenAI's cookbook rule: 3 tokens per message plus its role and content, 1 more
    per ``name`` (plus the name itself), and 3 for priming the assistant's reply. Content is
    a string or a list of parts, of which only ``{"type": "text", "text": ...}`` parts can
    be counted. Other message keys (``tool_calls``, ``tool_call_id``…) are not counted.
    """
    if not isinstance(messages, list) or not messages:
        raise TokenizeError("messages", "must be a non-empty list of messages")
    if len(messages) > MAX_MESSAGES:
        raise TokenizeError("messages", f"must have at most {MAX_MESSAGES:,} messages")
    name = encoding_name_for_model(model, default=default_encoding)
    encoding = _encoding(name)
    total = TOKENS_REPLY_PRIMING
    for index, message in enumerate(messages):
        total += _message_tokens(encoding, message, f"messages[{index}]")
    return TokenCount(tokens=total, encoding=name)


def _message_tokens(encoding: tiktoken.Encoding, message, path: str) -> int:
    if not isinstance(message, dict):
        raise TokenizeError(path, "must be an object with role and content")
    if "role" not in message:
        raise TokenizeError(f"{path}.role", "is required")
    if not isinstance(message["role"], str):
        raise TokenizeError(f"{path}.role", "must be a string")
    if "content" not in message:
        raise TokenizeError(f"{path}.content", "is required")
    tokens = TOKENS_PER_MESSAGE + _tokens(encoding, message["role"], f"{path}.role")
    tokens += _content_tokens(encoding, message["content"], f"{path}.content")
    if "name" in message:
        if not isinstance(message["name"], str):
            raise TokenizeError(f"{path}.name", "must be a string")
        tokens += TOKENS_PER_NAME + _tokens(encoding, message["name"], f"{path}.name")
    return tokens


def _content_tokens(encoding: tiktoken.Encoding, content, path: str) -> int:
    if isinstance(content, str):
        return _tokens(encoding, content, path)
    if not isinstance(content, list):
        raise TokenizeError(path, "must be a string or a list of text parts")
    tokens = 0
    for index, part in enumerate(content):
        part_path = f"{path}[{index}]"
        if not isinstance(part, dict):
            raise TokenizeError(part_path, 'must be an object such as {"type": "text", ...}')
        if part.get("type") != "text":
            raise TokenizeError(
                part_path,
                f"only text parts can be counted, not type {str(part.get('type'))[:40]!r}",
            )
        tokens += _tokens(encoding, part.get("text"), f"{part_path}.text")
    return tokens


def _tokens(encoding: tiktoken.Encoding, text, path: str) -> int:
    if not isinstance(text, str):
        raise TokenizeError(path, "must be a string")
    if len(text) > MAX_TEXT_CHARS:
        raise TokenizeError(
            path, f"is {len(text):,} characters; at most {MAX_TEXT_CHARS:,} can be counted"
        )
    return len(encoding.encode(text, disallowed_special=()))


@cache
def _loaded(name: str) -> tiktoken.Encoding:
    return tiktoken.get_encoding(name)


def _encoding(name: str) -> tiktoken.Encoding:
    """The encoding called ``name``, loaded once per process (failures are not cached)."""
    try:
        return _loaded(name)
    except (ValueError, OSError) as error:
        # ValueError: a name tiktoken does not know; OSError: the file is neither in
        # TIKTOKEN_CACHE_DIR nor downloadable (requests' errors are OSErrors).
        raise TokenizeError(
            "model", f"the {name} encoding is not available on this server"
        ) from error
