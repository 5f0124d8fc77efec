"""Which rule counts a model, and what an uploaded tokenizer.json must be: metering.tokenizers
(no database)."""

import json

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers

from metering.tokenizers import (
    MAX_UPLOAD_BYTES,
    PACKAGED,
    Rule,
    TokenizerError,
    load,
    packaged_file,
    pattern_check,
    rule_for_model,
    tokenizer_json_check,
    uploaded_load,
)


def tiny_tokenizer_json(pre_tokenizer=None) -> bytes:
    """A word-level tokenizer.json that knows three words; others are [UNK]. By default it
    splits on whitespace only, so "tokens: 12345." is two tokens."""
    vocab = {"[UNK]": 0, "hello": 1, "world": 2}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizer or pre_tokenizers.WhitespaceSplit()
    return tokenizer.to_str().encode()


def rule(pattern: str, id: int) -> Rule:
    return Rule(id, pattern, "tiktoken", f"rule {id}", False, "openai")


RULES = [
    rule("gpt-4*", 1),
    rule("gpt-4o*", 2),
    rule("gpt-4o-mini", 3),
    rule("*-mini", 4),
    rule("gpt-4?-turbo*", 5),
    rule("claude-*", 6),
    rule("*-sonnet-*", 7),
]


@pytest.mark.parametrize(
    ("model", "chosen"),
    [
        ("gpt-4o-mini", 3),  # an exact name beats every glob
        ("GPT-4o-Mini", 3),  # without regard to case
        ("gpt-4o-2024-08-06", 2),  # gpt-4o* (6 literal characters) beats gpt-4* (5)
        ("gpt-4", 1),
        ("o4-mini", 4),
        ("gpt-4.1-mini", 1),  # gpt-4* (5 literal characters) beats *-mini (5): the older rule
        ("gpt-4a-turbo-preview", 5),  # ? is one character: 11 literal characters
        ("claude-sonnet-4-5", 7),  # *-sonnet-* (8) beats claude-* (7)
        ("claude-haiku-4-5", 6),
        ("gemini-2.5-pro", None),
        ("", None),
    ],
)
def test_the_most_specific_pattern_wins(model, chosen):
    found = rule_for_model(RULES, model)

    assert (found.id if found else None) == chosen


def test_a_tie_goes_to_the_older_rule_whatever_the_order_given():
    newer, older = rule("*mini", 9), rule("gpt-*", 8)  # 4 literal characters each

    assert rule_for_model([newer, older], "gpt-mini").id == 8
    assert rule_for_model([older, newer], "gpt-mini").id == 8


@pytest.mark.parametrize(
    ("pattern", "refused"),
    [
        ("gpt-4o*", False),
        ("mistralai/Mistral-Small-*", False),
        ("ft:gpt-4o*", False),
        ("*", True),
        ("*?*", True),
        ("gpt 4", True),
        ("gpt-[45]*", True),
        ("", True),
        ("a" * 201, True),
    ],
)
def test_patterns_are_names_or_globs(pattern, refused):
    assert (pattern_check(pattern) is not None) == refused


def test_every_packaged_tokenizer_file_is_installed():
    for name in PACKAGED:
        assert packaged_file(name).is_file(), name


def test_an_uploaded_tokenizer_json_is_checked_by_loading_it():
    data = tiny_tokenizer_json()

    text = tokenizer_json_check(data)

    assert text == data.decode()
    assert uploaded_load(-1, "v1", lambda: text).count("hello world, hello") == 3


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the file is empty"),
        (b"\xff\xfe", "not a JSON file: 'utf-8' codec can't decode byte 0xff in position 0"),
        (b"{'model': 1}", "not a JSON file: Expecting property name enclosed in double quotes"),
        (b"[1, 2]", 'not a Hugging Face tokenizer.json: it has no "model"'),
        (b'{"version": "1.0"}', 'not a Hugging Face tokenizer.json: it has no "model"'),
        (
            json.dumps({"model": {"type": "NoSuchModel"}}).encode(),
            "the tokenizers library cannot load it: ",
        ),
    ],
)
def test_a_bad_upload_is_refused_with_what_is_wrong(data, message):
    with pytest.raises(TokenizerError) as caught:
        tokenizer_json_check(data)

    assert str(caught.value).startswith(message)


def test_an_upload_past_the_limit_is_refused_before_it_is_read():
    with pytest.raises(TokenizerError) as caught:
        tokenizer_json_check(b" " * (MAX_UPLOAD_BYTES + 1))

    assert str(caught.value) == "the file is 67,108,865 bytes; at most 67,108,864 are accepted"


def test_an_uploaded_tokenizer_is_read_again_only_when_its_file_changes():
    reads = []

    def read(data: bytes):
        def reader() -> str:
            reads.append(data)
            return data.decode()

        return reader

    whitespace = tiny_tokenizer_json()
    punctuation = tiny_tokenizer_json(pre_tokenizers.Whitespace())

    first = uploaded_load(-2, "a", read(whitespace)).count("hello, world.")
    again = uploaded_load(-2, "a", read(punctuation)).count("hello, world.")
    changed = uploaded_load(-2, "b", read(punctuation)).count("hello, world.")

    # "hello," and "world." by whitespace; "hello" "," "world" "." by punctuation too
    assert (first, again, changed) == (2, 2, 4)
    assert reads == [whitespace, punctuation]


def test_a_name_nothing_has_is_refused():
    with pytest.raises(TokenizerError, match="no packaged tokenizer is called 'llama-3'"):
        load("packaged", "llama-3")
    with pytest.raises(TokenizerError, match="the no_such_base tokenizer is not available"):
        load("tiktoken", "no_such_base")
