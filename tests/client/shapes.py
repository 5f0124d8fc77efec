"""Responses and streams as the providers document them (their API references' examples,
with counts chosen so that each part shows), and the metrics tokentill must store for
each, worked by hand from the provider's rules (docs/guide/api.md#provider-usage). They
were made a minute ago: tokentill takes events of the last 35 days only."""

import time

A_MINUTE_AGO = int(time.time()) - 60

OPENAI_CHAT = {
    "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
    "object": "chat.completion",
    "created": A_MINUTE_AGO,
    "model": "o3-mini-2025-01-31",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Paris.", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 1117,
        "completion_tokens": 846,
        "total_tokens": 1963,
        "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 640,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
    "service_tier": "default",
    "system_fingerprint": "fp_fc9f1d7035",
}
# 1,117 prompt tokens of which 1,024 cached: 93 uncached; reasoning inside the 846.
OPENAI_CHAT_METRICS = {
    "input_tokens": 93,
    "cached_input_tokens": 1024,
    "cache_creation_input_tokens": 0,
    "output_tokens": 846,
    "reasoning_tokens": 640,
    "audio_input_tokens": 0,
    "audio_output_tokens": 0,
}

OPENAI_RESPONSE = {
    "id": "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b",
    "object": "response",
    "created_at": A_MINUTE_AGO,
    "status": "completed",
    "model": "o4-mini-2025-04-16",
    "output": [
        {
            "type": "message",
            "id": "msg_67ccd2bf17f0819081ff3bb2cf6508e60bb6a6b452d3795b",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "In a peaceful grove…", "annotations": []}],
        }
    ],
    "usage": {
        "input_tokens": 2200,
        "input_tokens_details": {"cached_tokens": 1920},
        "output_tokens": 1500,
        "output_tokens_details": {"reasoning_tokens": 1216},
        "total_tokens": 3700,
    },
}
OPENAI_RESPONSE_METRICS = {
    "input_tokens": 280,  # 2,200 - 1,920
    "cached_input_tokens": 1920,
    "cache_creation_input_tokens": 0,
    "output_tokens": 1500,
    "reasoning_tokens": 1216,
}

# Embeddings count their input only: no completion_tokens.
OPENAI_EMBEDDING = {
    "object": "list",
    "data": [{"object": "embedding", "index": 0, "embedding": [0.0023064255, -0.009327292]}],
    "model": "text-embedding-3-small",
    "usage": {"prompt_tokens": 8, "total_tokens": 8},
}
OPENAI_EMBEDDING_METRICS = {
    "input_tokens": 8,
    "cached_input_tokens": 0,
    "cache_creation_input_tokens": 0,
    "output_tokens": 0,
    "reasoning_tokens": 0,
}

ANTHROPIC_MESSAGE = {
    "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [{"type": "text", "text": "Hi! My name is Claude."}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 21,
        "cache_creation_input_tokens": 188086,
        "cache_read_input_tokens": 1800,
        "cache_creation": {"ephemeral_5m_input_tokens": 188086, "ephemeral_1h_input_tokens": 0},
        "output_tokens": 393,
        "server_tool_use": None,
        "service_tier": "standard",
    },
}
# Anthropic's input_tokens already exclude cache reads and writes.
ANTHROPIC_METRICS = {
    "input_tokens": 21,
    "cached_input_tokens": 1800,
    "cache_creation_input_tokens": 188086,
    "output_tokens": 393,
    "reasoning_tokens": 0,
    "cache_creation_1h_input_tokens": 0,
}

GEMINI_RESPONSE = {
    "candidates": [
        {
            "content": {"parts": [{"text": "A haiku…"}], "role": "model"},
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 4123,
        "candidatesTokenCount": 312,
        "totalTokenCount": 5285,
        "cachedContentTokenCount": 4000,
        "thoughtsTokenCount": 850,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 4123}],
        "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 4000}],
    },
    "modelVersion": "gemini-2.5-flash",
    "responseId": "mAitaLmkHPPlz7IPvtfUqQ4",
}
# The prompt includes the cached 4,000; thoughts are output beside the candidates.
GEMINI_METRICS = {
    "input_tokens": 123,
    "cached_input_tokens": 4000,
    "cache_creation_input_tokens": 0,
    "output_tokens": 1162,  # 312 + 850
    "reasoning_tokens": 850,
}

# The Python SDK (google-genai) dumps its response in snake_case.
GEMINI_SDK_DUMP = {
    "candidates": [{"content": {"parts": [{"text": "Hi"}], "role": "model"}, "index": 0}],
    "usage_metadata": {
        "prompt_token_count": 10,
        "candidates_token_count": 5,
        "total_token_count": 15,
        "cached_content_token_count": None,
        "thoughts_token_count": None,
    },
    "model_version": "gemini-2.0-flash",
    "response_id": "gemini-sdk-1",
}
GEMINI_SDK_METRICS = {
    "input_tokens": 10,
    "cached_input_tokens": 0,
    "cache_creation_input_tokens": 0,
    "output_tokens": 5,
    "reasoning_tokens": 0,
}


def _chat_chunk(delta: dict, finish=None, usage=None, choices=True) -> dict:
    return {
        "id": "chatcmpl-stream-1",
        "object": "chat.completion.chunk",
        "created": A_MINUTE_AGO,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}] if choices else [],
        "usage": usage,
    }


# stream_options={"include_usage": True}: the last chunk has no choices and the usage.
OPENAI_CHAT_STREAM = [
    _chat_chunk({"role": "assistant", "content": ""}),
    _chat_chunk({"content": "Hello"}),
    _chat_chunk({"content": " there!"}),
    _chat_chunk({}, finish="stop"),
    _chat_chunk(
        {},
        choices=False,
        usage={
            "prompt_tokens": 9,
            "completion_tokens": 3,
            "total_tokens": 12,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    ),
]
OPENAI_CHAT_STREAM_METRICS = {
    "input_tokens": 9,
    "cached_input_tokens": 0,
    "cache_creation_input_tokens": 0,
    "output_tokens": 3,
    "reasoning_tokens": 0,
}

# Without include_usage: no usage at all; tokentill counts the text (o200k_base for
# gpt-4o-mini). The prompt [{"role": "user", "content": "Say hello"}] is 3 (a message)
# + 1 ("user") + 2 ("Say hello") + 3 (priming the reply) = 9; "Hello there!" is 3.
OPENAI_CHAT_STREAM_NO_USAGE = [
    {**chunk, "id": "chatcmpl-stream-2"} for chunk in OPENAI_CHAT_STREAM[:-1]
]
SAY_HELLO = [{"role": "user", "content": "Say hello"}]
TEXT_COUNTED_METRICS = {"input_tokens": 9, "output_tokens": 3}

OPENAI_RESPONSES_STREAM = [
    {
        "type": "response.created",
        "sequence_number": 0,
        "response": {
            **OPENAI_RESPONSE,
            "id": "resp_stream_1",
            "status": "in_progress",
            "usage": None,
        },
    },
    {"type": "response.output_text.delta", "sequence_number": 4, "delta": "In a peaceful"},
    {"type": "response.output_text.delta", "sequence_number": 5, "delta": " grove…"},
    {
        "type": "response.completed",
        "sequence_number": 9,
        "response": {**OPENAI_RESPONSE, "id": "resp_stream_1"},
    },
]

ANTHROPIC_STREAM = [
    {
        "type": "message_start",
        "message": {
            "id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": "claude-sonnet-4-5-20250929",
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": 472,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 2048,
                "output_tokens": 2,
            },
        },
    },
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "ping"},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Okay"}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " let"}},
    {"type": "content_block_stop", "index": 0},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": 89},  # cumulative: the whole reply
    },
    {"type": "message_stop"},
]
ANTHROPIC_STREAM_METRICS = {
    "input_tokens": 472,
    "cached_input_tokens": 2048,
    "cache_creation_input_tokens": 0,
    "output_tokens": 89,
    "reasoning_tokens": 0,
}

GEMINI_STREAM = [
    {
        "candidates": [{"content": {"parts": [{"text": "The"}], "role": "model"}, "index": 0}],
        "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "gemini-stream-1",
    },
    {
        "candidates": [
            {
                "content": {"parts": [{"text": " end."}], "role": "model"},
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 20, "totalTokenCount": 28},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "gemini-stream-1",
    },
]
GEMINI_STREAM_METRICS = {
    "input_tokens": 8,
    "cached_input_tokens": 0,
    "cache_creation_input_tokens": 0,
    "output_tokens": 20,
    "reasoning_tokens": 0,
}


class SdkObject:
    """What the providers' SDKs return: a pydantic model, read through model_dump."""

    def __init__(self, data: dict):
        self._data = data

    def model_dump(self, mode: str = "python") -> dict:
        return self._data
