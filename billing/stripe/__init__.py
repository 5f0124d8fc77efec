"""Stripe: every call tokentill makes to it (`push`), what its webhooks tell
(`events`), and the endpoint they arrive at (`webhook`)."""
