"""Which price applies to an event (pure: no Django).

A price says which events it applies to with a `Selector`: a model, exact (`gpt-4o`) or a
pattern with `*` wildcards (`gpt-4o*`, `claude-*-4-5`); optionally a feature; optionally
property filters (`inference = batch`). When several prices match an event, the most
specific one wins, compared in this order:

1. an exact model beats a pattern; between patterns, more literal characters win
   (`gpt-4o-mini*` beats `gpt-4o*` beats `gpt-*` beats `*`);
2. a price for one feature beats a price for any feature;
3. more property filters beat fewer.

Two prices that are equally specific and can both match one event are ambiguous: the one
listed first wins (a stable, visible rule), and `selectors_overlapping` finds such pairs
so that the admin can say which price will be used before anything is rated.
"""

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Selector:
    model: str
    feature: str = ""  # "" = any feature
    properties: Mapping[str, str] = field(default_factory=dict)

    @cached_property
    def _model_regex(self) -> re.Pattern[str]:
        return re.compile(".*".join(re.escape(part) for part in self.model.split("*")))

    @property
    def is_pattern(self) -> bool:
        return "*" in self.model

    def matches(self, *, model: str, feature: str, properties: Mapping[str, str]) -> bool:
        if self.is_pattern:
            if not self._model_regex.fullmatch(model):
                return False
        elif model != self.model:
            return False
        if self.feature and feature != self.feature:
            return False
        return all(properties.get(key) == value for key, value in self.properties.items())

    def specificity(self) -> tuple[int, int, int, int]:
        """Larger is more specific; compared as a tuple, in the order of the module's rule."""
        literal = len(self.model.replace("*", ""))
        exact = 0 if self.is_pattern else 1
        return (exact, literal, 1 if self.feature else 0, len(self.properties))


def selector_choose(
    candidates: Sequence[T],
    *,
    selector_of: Callable[[T], Selector],
    model: str,
    feature: str,
    properties: Mapping[str, str],
) -> T | None:
    """The most specific candidate whose selector matches the event (first listed on a tie),
    or None when nothing matches: unpriced usage, never silently free."""
    best, best_rank = None, None
    for candidate in candidates:
        selector = selector_of(candidate)
        if selector.matches(model=model, feature=feature, properties=properties):
            rank = selector.specificity()
            if best_rank is None or rank > best_rank:
                best, best_rank = candidate, rank
    return best


def selectors_overlapping(selectors: Sequence[Selector]) -> list[tuple[int, int]]:
    """Index pairs (i < j) of equally specific selectors that some event could match both:
    for these the earlier one (i) wins, which the admin should say out loud."""
    pairs = []
    for i, first in enumerate(selectors):
        for j in range(i + 1, len(selectors)):
            second = selectors[j]
            if first.specificity() == second.specificity() and _may_overlap(first, second):
                pairs.append((i, j))
    return pairs


def _may_overlap(first: Selector, second: Selector) -> bool:
    if first.feature and second.feature and first.feature != second.feature:
        return False
    for key in first.properties.keys() & second.properties.keys():
        if first.properties[key] != second.properties[key]:
            return False
    return _models_may_overlap(first.model, second.model)


def _models_may_overlap(first: str, second: str) -> bool:
    """Whether some model name matches both (exact names or `*` patterns)."""
    if "*" not in first:
        return Selector(second).matches(model=first, feature="", properties={})
    if "*" not in second:
        return Selector(first).matches(model=second, feature="", properties={})
    # Two patterns: they overlap unless their literal prefixes or suffixes disagree.
    prefix_a, prefix_b = first.split("*", 1)[0], second.split("*", 1)[0]
    suffix_a, suffix_b = first.rsplit("*", 1)[1], second.rsplit("*", 1)[1]
    prefixes_agree = prefix_a.startswith(prefix_b) or prefix_b.startswith(prefix_a)
    suffixes_agree = suffix_a.endswith(suffix_b) or suffix_b.endswith(suffix_a)
    return prefixes_agree and suffixes_agree


_RULES = ("an exact model", "more literal characters", "a feature of its own", "more filters")


def selectors_competing(selectors: Sequence[Selector]) -> list[tuple[int, int, str]]:
    """For each pair of selectors that some event could match both, (winner, other, why):
    the admin shows these so billing ops know which price a call gets before it is rated."""
    found = []
    for i, first in enumerate(selectors):
        for j in range(i + 1, len(selectors)):
            second = selectors[j]
            if not _may_overlap(first, second):
                continue
            ranks = (first.specificity(), second.specificity())
            if ranks[0] == ranks[1]:
                found.append((i, j, "equally specific, it is listed first"))
                continue
            winner, other = (i, j) if ranks[0] > ranks[1] else (j, i)
            rule = next(n for n, (a, b) in enumerate(zip(*ranks, strict=True)) if a != b)
            found.append((winner, other, f"it has {_RULES[rule]}"))
    return found
