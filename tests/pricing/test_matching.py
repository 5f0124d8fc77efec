"""Which price applies to an event: the most specific matching selector (no database)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pricing.matching import Selector, selector_choose, selectors_overlapping

BATCH = {"inference": "batch"}


@pytest.mark.parametrize(
    ("selector", "model", "feature", "properties", "expected"),
    [
        (Selector("gpt-4o"), "gpt-4o", "", {}, True),
        (Selector("gpt-4o"), "gpt-4o-mini", "", {}, False),
        (Selector("gpt-4o*"), "gpt-4o-mini", "", {}, True),
        (Selector("gpt-4o*"), "gpt-4o", "", {}, True),
        (Selector("gpt-4o*"), "gpt-4", "", {}, False),
        (Selector("claude-*-4-5"), "claude-sonnet-4-5", "", {}, True),
        (Selector("claude-*-4-5"), "claude-sonnet-4-5-20250929", "", {}, False),
        (Selector("*"), "anything", "", {}, True),
        (Selector("llama-3.1-8b"), "llama-3x1-8b", "", {}, False),  # "." is literal
        (Selector("m[1]"), "m[1]", "", {}, True),  # only "*" is special
        (Selector("gpt-4o", feature="chat"), "gpt-4o", "chat", {}, True),
        (Selector("gpt-4o", feature="chat"), "gpt-4o", "search", {}, False),
        (Selector("gpt-4o", feature="chat"), "gpt-4o", "", {}, False),
        (Selector("gpt-4o", properties=BATCH), "gpt-4o", "", BATCH, True),
        (Selector("gpt-4o", properties=BATCH), "gpt-4o", "", {"inference": "live"}, False),
        (Selector("gpt-4o", properties=BATCH), "gpt-4o", "", {}, False),
        (Selector("gpt-4o"), "gpt-4o", "chat", BATCH, True),
    ],
)
def test_a_selector_matches_what_it_says(selector, model, feature, properties, expected):
    assert selector.matches(model=model, feature=feature, properties=properties) is expected


PRICES = [
    ("any model", Selector("*")),
    ("gpt family", Selector("gpt-*")),
    ("gpt-4o family", Selector("gpt-4o*")),
    ("gpt-4o", Selector("gpt-4o")),
    ("gpt-4o for support", Selector("gpt-4o", feature="support-bot")),
    ("gpt-4o batch", Selector("gpt-4o", properties=BATCH)),
    ("gpt-4o batch for support", Selector("gpt-4o", feature="support-bot", properties=BATCH)),
]


@pytest.mark.parametrize(
    ("model", "feature", "properties", "winner"),
    [
        ("gpt-4o", "", {}, "gpt-4o"),
        ("gpt-4o", "support-bot", {}, "gpt-4o for support"),
        ("gpt-4o", "search", BATCH, "gpt-4o batch"),
        ("gpt-4o", "support-bot", BATCH, "gpt-4o batch for support"),
        ("gpt-4o-mini", "support-bot", BATCH, "gpt-4o family"),
        ("gpt-5", "", {}, "gpt family"),
        ("claude-sonnet-4-5", "", {}, "any model"),
    ],
)
def test_the_most_specific_price_wins(model, feature, properties, winner):
    chosen = selector_choose(
        PRICES, selector_of=lambda p: p[1], model=model, feature=feature, properties=properties
    )

    assert chosen[0] == winner


def test_an_event_no_price_matches_is_unpriced():
    prices = [("gpt-4o", Selector("gpt-4o"))]

    assert (
        selector_choose(
            prices, selector_of=lambda p: p[1], model="gpt-5", feature="", properties={}
        )
        is None
    )


def test_equally_specific_prices_that_overlap_are_reported_and_the_first_wins():
    by_inference = Selector("gpt-4o", properties=BATCH)
    by_region = Selector("gpt-4o", properties={"region": "eu"})
    disjoint = Selector("gpt-4o", properties={"inference": "live"})
    prices = [by_inference, by_region, disjoint]

    assert selectors_overlapping(prices) == [(0, 1), (1, 2)]
    both = {"inference": "batch", "region": "eu"}
    event = {"model": "gpt-4o", "feature": "", "properties": both}
    assert selector_choose(prices, selector_of=lambda s: s, **event) is by_inference


@pytest.mark.parametrize(
    ("first", "second", "overlap"),
    [
        ("gpt-4o*", "gpt-4o-*", False),  # different specificity: not ambiguous
        ("gpt-4o*", "gpt-5o*", False),
        ("gpt-*o", "gpt-4*", True),
        ("gpt-*-mini", "gpt-*-nano", False),
        ("a*b", "ab*", True),  # both match "abb"
        ("claude-*", "gemini-*", False),
        ("*-mini", "gpt*", False),  # 5 and 3 literal characters
    ],
)
def test_overlap_of_model_patterns(first, second, overlap):
    assert bool(selectors_overlapping([Selector(first), Selector(second)])) is overlap


names = st.text(alphabet="abc-4o", min_size=1, max_size=6)
patterns = st.builds(lambda a, star, b: a + ("*" if star else "") + b, names, st.booleans(), names)


@given(
    selectors=st.lists(
        st.builds(
            Selector,
            model=patterns,
            feature=st.sampled_from(["", "chat"]),
            properties=st.dictionaries(st.sampled_from(["k", "j"]), st.sampled_from(["1", "2"])),
        ),
        min_size=1,
        max_size=6,
    ),
    model=names,
    feature=st.sampled_from(["", "chat", "search"]),
    properties=st.dictionaries(st.sampled_from(["k", "j"]), st.sampled_from(["1", "2"])),
)
def test_the_choice_matches_and_nothing_matching_is_more_specific(
    selectors, model, feature, properties
):
    event = {"model": model, "feature": feature, "properties": properties}

    chosen = selector_choose(selectors, selector_of=lambda s: s, **event)

    matching = [s for s in selectors if s.matches(**event)]
    if not matching:
        assert chosen is None
    else:
        assert chosen.matches(**event)
        assert chosen.specificity() == max(s.specificity() for s in matching)
        assert chosen is next(s for s in matching if s.specificity() == chosen.specificity())
