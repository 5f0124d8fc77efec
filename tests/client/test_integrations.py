"""The LangChain handler (through LangChain's own callbacks, on chat models that answer
with the shapes LangChain's OpenAI, Anthropic and Gemini integrations give) and the
LiteLLM logger (on the shapes LiteLLM hands its loggers; LiteLLM itself is not
installed), against a live tokentill."""

import json
from datetime import UTC, datetime

import pytest

from metering.models import UsageEvent
from tokentill_client.integrations import LangChainRecorder, LiteLLMRecorder

from . import shapes
from .conftest import stored

#: What LangChain's integrations report, besides the provider's own usage where they
#: keep it: ChatOpenAI and ChatAnthropic (llm_output), ChatGoogleGenerativeAI (only
#: LangChain's usage_metadata, whose input_tokens include cache reads and writes).
LANGCHAIN_ANSWERS = {
    "openai": {
        "llm_output": {"token_usage": shapes.OPENAI_CHAT["usage"], "model_name": "o3-mini"},
        "response_metadata": {"model_name": "o3-mini"},
        "usage_metadata": {"input_tokens": 1117, "output_tokens": 846, "total_tokens": 1963},
    },
    "anthropic": {
        "llm_output": {
            "id": shapes.ANTHROPIC_MESSAGE["id"],
            "model": "claude-sonnet-4-5",
            "usage": shapes.ANTHROPIC_MESSAGE["usage"],
        },
        "response_metadata": {"model": "claude-sonnet-4-5"},
        "usage_metadata": {"input_tokens": 189907, "output_tokens": 393, "total_tokens": 190300},
    },
    "google": {
        "llm_output": None,
        "response_metadata": {"model_name": "gemini-2.5-flash", "finish_reason": "STOP"},
        "usage_metadata": {
            "input_tokens": 4123,
            "output_tokens": 1162,
            "total_tokens": 5285,
            "input_token_details": {"cache_read": 4000},
            "output_token_details": {"reasoning": 850},
        },
    },
}


def recorded_chat_model(answer: dict):
    """A LangChain chat model that answers with `answer`'s shapes."""
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, ChatResult

    class Recorded(BaseChatModel):
        @property
        def _llm_type(self) -> str:
            return "recorded"

        def _generate(self, messages, stop=None, run_manager=None, **kwargs):
            message = AIMessage(
                content="ok",
                usage_metadata=answer["usage_metadata"],
                response_metadata=answer["response_metadata"],
            )
            return ChatResult(
                generations=[ChatGeneration(message=message)], llm_output=answer["llm_output"]
            )

    return Recorded()


@pytest.mark.django_db(transaction=True)
def test_langchain_calls_are_recorded_with_their_provider_usage_counted_once(make_client, acme):
    pytest.importorskip("langchain_core")
    from tokentill_client.langchain import TokentillCallbackHandler

    client = make_client()
    handler = TokentillCallbackHandler(client, feature="support-bot")
    config = {"callbacks": [handler], "metadata": {"tokentill_customer_id": "acme"}}

    for provider in ("openai", "anthropic", "google"):
        recorded_chat_model(LANGCHAIN_ANSWERS[provider]).invoke("Hello", config=config)
    recorded_chat_model(LANGCHAIN_ANSWERS["google"]).invoke(
        "Hello", config={"callbacks": [handler]}
    )
    assert client.flush(timeout=10)

    by_model = {
        model: (metrics, feature)
        for model, metrics, feature in UsageEvent.objects.values_list("model", "metrics", "feature")
    }
    assert by_model == {
        "o3-mini": (shapes.OPENAI_CHAT_METRICS, "support-bot"),
        "claude-sonnet-4-5": (shapes.ANTHROPIC_METRICS, "support-bot"),
        "gemini-2.5-flash": (shapes.GEMINI_METRICS, "support-bot"),
    }  # the call without a customer was not recorded
    assert UsageEvent.objects.count() == 3


def test_langchain_usage_metadata_is_split_into_uncached_cache_reads_and_cache_writes():
    events = []
    recorder = LangChainRecorder(lambda **event: events.append(event) or "id", customer_id="acme")
    message = type("Message", (), {})()
    message.response_metadata = {"model": "claude-haiku-4-5"}
    message.usage_metadata = {
        "input_tokens": 1500,
        "output_tokens": 300,
        "total_tokens": 1800,
        "input_token_details": {"cache_read": 1000, "cache_creation": 200},
    }
    result = type("LLMResult", (), {"llm_output": None, "generations": [[message]]})()
    result.generations[0][0] = type("Generation", (), {"message": message})()

    recorder.on_llm_end(result, run_id="run-1")

    assert events == [
        {
            "customer_id": "acme",
            "feature": None,
            "properties": None,
            "event_id": "run-1",
            "timestamp": None,
            "model": "claude-haiku-4-5",
            "metrics": {
                "input_tokens": 300,  # 1,500 - 1,000 read - 200 written
                "cached_input_tokens": 1000,
                "cache_creation_input_tokens": 200,
                "output_tokens": 300,
                "reasoning_tokens": 0,
            },
        }
    ]


# What LiteLLM hands a logger: its kwargs (the provider's raw answer as
# original_response when it has one) and its own response, OpenAI-shaped whatever the
# provider. Its Anthropic usage folds cache reads and writes into prompt_tokens.
LITELLM_ANTHROPIC_RESPONSE = {
    "id": "chatcmpl-litellm-1",
    "object": "chat.completion",
    "model": "claude-sonnet-4-5-20250929",
    "usage": {
        "prompt_tokens": 189907,
        "completion_tokens": 393,
        "total_tokens": 190300,
        "prompt_tokens_details": {"cached_tokens": 1800},
        "cache_creation_input_tokens": 188086,
        "cache_read_input_tokens": 1800,
    },
}


def litellm_kwargs(call_id: str, original: object, customer: str | None = "acme") -> dict:
    metadata = {"tokentill_customer_id": customer} if customer else {}
    return {
        "model": "some-model",
        "litellm_call_id": call_id,
        "litellm_params": {"metadata": metadata},
        "original_response": original,
    }


@pytest.mark.django_db(transaction=True)
def test_litellm_calls_are_recorded_from_the_providers_raw_answer_when_there_is_one(
    make_client, acme
):
    client = make_client()
    logger = LiteLLMRecorder(client.record, customer_id=None, feature="chat", properties=None)
    end = datetime.now()  # LiteLLM's times are naive, local

    logger.log_success_event(
        litellm_kwargs("call-anthropic", json.dumps(shapes.ANTHROPIC_MESSAGE)),
        shapes.SdkObject(LITELLM_ANTHROPIC_RESPONSE),
        end,
        end,
    )
    logger.log_success_event(
        litellm_kwargs("call-openai", json.dumps(shapes.OPENAI_CHAT)),
        shapes.SdkObject({**shapes.OPENAI_CHAT, "object": "chat.completion"}),
        end,
        end,
    )
    # Streamed: the raw answer is not a whole response; LiteLLM's usage is sent.
    logger.log_success_event(
        litellm_kwargs("call-stream", "data: {...}"),
        {"model": "gpt-4o-mini", "usage": {"prompt_tokens": 50, "completion_tokens": 20}},
        end,
        end,
    )
    logger.log_success_event(
        litellm_kwargs("call-embedding", None),
        {"object": "list", "model": "text-embedding-3-small", "usage": {"prompt_tokens": 8}},
        end,
        end,
    )
    logger.log_success_event(
        litellm_kwargs("call-nobody", None, customer=None),
        {"model": "gpt-4o-mini", "usage": {"prompt_tokens": 1, "completion_tokens": 1}},
        end,
        end,
    )
    assert client.flush(timeout=10)

    plain = {"cached_input_tokens": 0, "cache_creation_input_tokens": 0, "reasoning_tokens": 0}
    assert stored() == {
        "call-anthropic": shapes.ANTHROPIC_METRICS,  # cache writes priced as writes
        "call-openai": shapes.OPENAI_CHAT_METRICS,
        "call-stream": {"input_tokens": 50, "output_tokens": 20, **plain},
        "call-embedding": {"input_tokens": 8, "output_tokens": 0, **plain},
    }
    assert set(UsageEvent.objects.values_list("timestamp", flat=True)) == {end.astimezone(UTC)}
