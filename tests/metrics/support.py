"""Scraping /metrics as Prometheus does, and reading the answer with prometheus_client's
own parser."""

from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

TOKEN = "metrics-token-for-tests-0123456789abcdef"

Figures = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Figures:
    """Every sample, by (sample name, sorted labels)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client: Client | None = None) -> Figures:
    response = (client or Client()).get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse(response.content.decode())


def figure(figures: Figures, name: str, **labels: str) -> float | None:
    return figures.get((name, tuple(sorted(labels.items()))))


def change(before: Figures, after: Figures, name: str, **labels: str) -> float:
    """How much a counter moved between two scrapes (0 for a series not yet seen)."""
    return (figure(after, name, **labels) or 0.0) - (figure(before, name, **labels) or 0.0)
