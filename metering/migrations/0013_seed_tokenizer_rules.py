"""The tokenizer table's first rows: OpenAI's models counted with tiktoken as before
(tiktoken's own model table, written out), Mistral's, Qwen's and DeepSeek's with their
exact tokenizers from the packages that ship them. Llama and Gemma wait for an operator's
tokenizer.json; Claude, Gemini and every model no rule matches use the fallback setting."""

from django.db import migrations

O200K, CL100K = "o200k_base", "cl100k_base"
TEKKEN = "mistral-tekken-240911"

# (pattern, kind, name, chat format)
RULES = [
    *[
        (pattern, "tiktoken", O200K, "openai")
        for pattern in (
            "gpt-5*", "gpt-4.5*", "gpt-4.1*", "gpt-4o*", "chatgpt-4o*", "o1*", "o3*", "o4-mini*",
            "ft:gpt-4o*",
        )
    ],
    *[
        (pattern, "tiktoken", CL100K, "openai")
        for pattern in (
            "gpt-4*", "gpt-3.5*", "gpt-35-turbo*", "text-embedding-*", "ft:gpt-4*",
            "ft:gpt-3.5-turbo*",
        )
    ],
    # Mistral: Tekken for the current families; mistral-common's own table for older names.
    *[
        (pattern, "packaged", TEKKEN, "mistral")
        for pattern in (
            "mistral-*", "open-mistral-*", "ministral-*", "magistral-*", "devstral-*",
            "codestral-*", "pixtral-*", "voxtral-*",
        )
    ],
    ("mistral-large-2411", "packaged", "mistral-sp-v7", "mistral"),
    ("pixtral-large-2411", "packaged", "mistral-sp-v7", "mistral"),
    ("mistral-large-2407", "packaged", "mistral-sp-v3", "mistral"),
    ("mistral-tiny-2407", "packaged", "mistral-sp-v3", "mistral"),
    ("codestral-2405", "packaged", "mistral-sp-v3", "mistral"),
    ("codestral-mamba-2407", "packaged", "mistral-sp-v3", "mistral"),
    ("open-mixtral-8x22b*", "packaged", "mistral-sp-v3", "mistral"),
    ("mistral-small-2402", "packaged", "mistral-sp-v2", "mistral"),
    ("mistral-large-2402", "packaged", "mistral-sp-v2", "mistral"),
    ("mistral-small-2312", "packaged", "mistral-sp-v2", "mistral"),
    ("mistral-tiny-2312", "packaged", "mistral-sp-v2", "mistral"),
    ("mistral-medium-2312", "packaged", "mistral-sp-v1", "mistral"),
    ("open-mistral-nemo*", "packaged", "mistral-tekken-240718", "mistral"),
    ("ministral-8b-2410", "packaged", "mistral-tekken-240718", "mistral"),
    ("mistral-small-2409", "packaged", "mistral-tekken-240718", "mistral"),
    ("qwen*", "packaged", "qwen", "chatml"),
    ("qwen3.5*", "packaged", "qwen3.6", "chatml"),
    ("qwen3.6*", "packaged", "qwen3.6", "chatml"),
    ("deepseek-*", "packaged", "deepseek-v4", "none"),
]


def seed(apps, schema_editor):
    rule = apps.get_model("metering", "TokenizerRule")
    rule.objects.bulk_create(
        [rule(pattern=p, kind=k, name=n, chat_format=c, estimated=False) for p, k, n, c in RULES]
    )


def unseed(apps, schema_editor):
    apps.get_model("metering", "TokenizerRule").objects.filter(
        pattern__in=[p for p, *_ in RULES]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("metering", "0012_tokenizer_rules")]
    operations = [migrations.RunPython(seed, unseed)]
