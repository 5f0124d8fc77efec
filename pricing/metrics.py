"""The metric vocabulary shared by metering and pricing (pure: no Django).

Metric names are lowercase identifiers. The standard ones have one meaning whatever the
provider (docs/guide/api.md, "Metrics"); events may carry others, which a price then names itself.
"""

import re

METRIC_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

STANDARD_METRICS = (
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_creation_input_tokens",
    "cache_creation_1h_input_tokens",
    "reasoning_tokens",
    "audio_input_tokens",
    "audio_output_tokens",
    "web_search_requests",
)
