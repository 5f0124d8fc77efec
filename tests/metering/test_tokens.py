"""Token counts with tiktoken encodings and OpenAI's chat format: metering.tokens (no
database). Which tokenizer counts which model is tests/metering/test_tokenizer_rules.py.

Needs the o200k_base and cl100k_base encodings: from TIKTOKEN_CACHE_DIR (for example
../shared/tiktoken) or from the internet. Without either, the module is skipped.
"""

import pytest
import tiktoken

from metering.tokenizers import TIKTOKEN, load
from metering.tokens import (
    MAX_MESSAGES,
    MAX_TEXT_CHARS,
    OPENAI,
    Counter,
    TokenCount,
    TokenizeError,
    count_messages,
    count_text,
)

try:
    O200K = tiktoken.get_encoding("o200k_base")
    CL100K = tiktoken.get_encoding("cl100k_base")
except Exception as error:  # no cache folder and no internet: tiktoken raises many kinds
    pytest.skip(
        f"tiktoken encodings cannot be loaded ({type(error).__name__}); "
        "set TIKTOKEN_CACHE_DIR to a folder holding o200k_base and cl100k_base",
        allow_module_level=True,
    )

ENCODINGS = {"o200k_base": O200K, "cl100k_base": CL100K}

TEXTS = [
    pytest.param("Hello, world! How many tokens is this sentence?", id="ascii"),
    pytest.param("Größenordnung, naïve café, Ελληνικά, 日本語のテキスト", id="unicode"),
    pytest.param("Ship it 🚀🚀 — family: 👨‍👩‍👧‍👦, flags: 🇫🇷🇯🇵", id="emoji"),
    pytest.param("", id="empty"),
    pytest.param("before <|endoftext|> after <|fim_prefix|>", id="special-token-text"),
    pytest.param("def f(x):\n    return x * 2\n\n\n\t# tabs and  spaces", id="code"),
]
NAMES = ["o200k_base", "cl100k_base"]


def openai(name: str) -> Counter:
    """What the tokenizer table gives an OpenAI model counted with encoding ``name``."""
    return Counter(name, False, OPENAI, load(TIKTOKEN, name))


O200K_COUNTER = openai("o200k_base")


def plain(encoding, text: str) -> int:
    """tiktoken's own count, special-token text taken as plain text."""
    return len(encoding.encode(text, disallowed_special=()))


def cookbook(encoding, messages: list[dict]) -> int:
    """OpenAI's cookbook num_tokens_from_messages, written out independently."""
    total = 3  # every reply is primed with <|start|>assistant<|message|>
    for message in messages:
        total += 3
        total += plain(encoding, message["role"])
        content = message["content"]
        if isinstance(content, str):
            total += plain(encoding, content)
        else:
            total += sum(plain(encoding, part["text"]) for part in content)
        if "name" in message:
            total += plain(encoding, message["name"]) + 1
    return total


@pytest.mark.parametrize("encoding_name", NAMES)
@pytest.mark.parametrize("text", TEXTS)
def test_count_text_equals_tiktoken(encoding_name, text):
    # given a text and an OpenAI model's encoding
    # when it is counted
    result = count_text(counter=openai(encoding_name), text=text)

    # then the count is tiktoken's own, exact
    assert result == TokenCount(
        tokens=plain(ENCODINGS[encoding_name], text), tokenizer=encoding_name, estimated=False
    )


def test_special_token_text_counts_as_plain_text():
    # given user text that spells a special token
    text = "<|endoftext|>"

    # when it is counted
    result = count_text(counter=O200K_COUNTER, text=text)

    # then it is several ordinary tokens, not the single special token
    assert result.tokens == len(O200K.encode(text, disallowed_special=()))
    assert result.tokens > 1


CONVERSATIONS = [
    pytest.param(
        [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Knock knock."},
            {"role": "assistant", "content": "Who's there?"},
            {"role": "user", "content": "Orange."},
        ],
        id="plain",
    ),
    pytest.param(
        [
            {"role": "system", "content": "Translate corporate jargon into plain English."},
            {
                "role": "system",
                "name": "example_user",
                "content": "New synergies will help drive top-line growth.",
            },
            {
                "role": "system",
                "name": "example_assistant",
                "content": "Things working well together will increase revenue.",
            },
            {"role": "user", "content": "Let's circle back when we have more bandwidth."},
        ],
        id="with-names",
    ),
    pytest.param(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Summarise these two notes:"},
                    {"type": "text", "text": "1. Ship 🚀 on Friday.\n2. Café at 10."},
                ],
            },
            {"role": "assistant", "content": "Ship Friday; coffee at ten."},
            {"role": "user", "content": []},
        ],
        id="text-parts",
    ),
    pytest.param([{"role": "user", "content": ""}], id="one-empty-message"),
]


@pytest.mark.parametrize("encoding_name", NAMES)
@pytest.mark.parametrize("messages", CONVERSATIONS)
def test_count_messages_follows_the_cookbook(encoding_name, messages):
    # given a conversation
    # when its prompt is counted
    result = count_messages(counter=openai(encoding_name), messages=messages)

    # then it is the cookbook's formula with the model's encoding
    assert result == TokenCount(
        tokens=cookbook(ENCODINGS[encoding_name], messages),
        tokenizer=encoding_name,
        estimated=False,
    )


def test_one_message_overhead_is_exact():
    # given one user message with one-token content ("hi" and "user" are one token each)
    messages = [{"role": "user", "content": "hi"}]
    assert plain(O200K, "hi") == plain(O200K, "user") == 1

    # when counted, then it is 3 (message) + 1 (role) + 1 (content) + 3 (reply priming)
    assert count_messages(counter=O200K_COUNTER, messages=messages).tokens == 8


def test_count_messages_leaves_the_messages_unchanged():
    messages = [{"role": "user", "name": "ann", "content": [{"type": "text", "text": "hi"}]}]
    before = repr(messages)

    count_messages(counter=O200K_COUNTER, messages=messages)

    assert repr(messages) == before


TOO_LONG = "a" * (MAX_TEXT_CHARS + 1)


@pytest.mark.parametrize(
    ("messages", "path", "message"),
    [
        pytest.param([], "messages", "must be a non-empty list of messages", id="empty"),
        pytest.param(None, "messages", "must be a non-empty list of messages", id="null"),
        pytest.param(
            {"role": "user", "content": "hi"},
            "messages",
            "must be a non-empty list of messages",
            id="object",
        ),
        pytest.param(
            [{"role": "user", "content": "hi"}] * (MAX_MESSAGES + 1),
            "messages",
            "must have at most 10,000 messages",
            id="too-many",
        ),
        pytest.param(
            [{"role": "user", "content": "hi"}, "hello"],
            "messages[1]",
            "must be an object with role and content",
            id="message-not-object",
        ),
        pytest.param([{"content": "hi"}], "messages[0].role", "is required", id="missing-role"),
        pytest.param(
            [{"role": 1, "content": "hi"}], "messages[0].role", "must be a string", id="role-int"
        ),
        pytest.param(
            [{"role": "user", "content": "a"}, {"role": "user"}],
            "messages[1].content",
            "is required",
            id="missing-content",
        ),
        pytest.param(
            [{"role": "user", "content": None}],
            "messages[0].content",
            "must be a string or a list of text parts",
            id="content-null",
        ),
        pytest.param(
            [{"role": "user", "content": {"type": "text", "text": "hi"}}],
            "messages[0].content",
            "must be a string or a list of text parts",
            id="content-object",
        ),
        pytest.param(
            [{"role": "user", "content": ["hi"]}],
            "messages[0].content[0]",
            'must be an object such as {"type": "text", ...}',
            id="part-not-object",
        ),
        pytest.param(
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is in this image?"},
                        {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
                    ],
                }
            ],
            "messages[0].content[1]",
            "only text parts can be counted, not type 'image_url'",
            id="image-part",
        ),
        pytest.param(
            [{"role": "user", "content": [{"text": "hi"}]}],
            "messages[0].content[0]",
            "only text parts can be counted, not type 'None'",
            id="part-without-type",
        ),
        pytest.param(
            [{"role": "user", "content": [{"type": "text", "text": 5}]}],
            "messages[0].content[0].text",
            "must be a string",
            id="part-text-int",
        ),
        pytest.param(
            [{"role": "user", "content": "hi", "name": 7}],
            "messages[0].name",
            "must be a string",
            id="name-int",
        ),
        pytest.param(
            [{"role": "user", "content": "ok"}, {"role": "user", "content": TOO_LONG}],
            "messages[1].content",
            "is 1,000,001 characters; at most 1,000,000 can be counted",
            id="content-too-long",
        ),
        pytest.param(
            [{"role": "user", "content": [{"type": "text", "text": TOO_LONG}]}],
            "messages[0].content[0].text",
            "is 1,000,001 characters; at most 1,000,000 can be counted",
            id="part-too-long",
        ),
    ],
)
def test_count_messages_refusals_name_the_path(messages, path, message):
    with pytest.raises(TokenizeError) as caught:
        count_messages(counter=O200K_COUNTER, messages=messages)

    assert (caught.value.path, caught.value.message) == (path, message)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(None, "must be a string", id="null"),
        pytest.param(12, "must be a string", id="int"),
        pytest.param(["a"], "must be a string", id="list"),
        pytest.param(
            TOO_LONG, "is 1,000,001 characters; at most 1,000,000 can be counted", id="too-long"
        ),
    ],
)
def test_count_text_refusals(text, message):
    with pytest.raises(TokenizeError) as caught:
        count_text(counter=O200K_COUNTER, text=text)

    assert (caught.value.path, caught.value.message) == ("text", message)


def test_longest_allowed_text_is_counted():
    text = "a" * MAX_TEXT_CHARS

    result = count_text(counter=O200K_COUNTER, text=text)

    assert result.tokens == plain(O200K, text)


def test_tokenize_error_is_a_value_error_with_a_readable_text():
    error = TokenizeError("messages[2].content", "is required")

    assert isinstance(error, ValueError)
    assert str(error) == "messages[2].content: is required"
