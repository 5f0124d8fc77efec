"""tokentill's Python client: record LLM usage, hold credits before a call.

::

    from tokentill_client import Tokentill

    tokentill = Tokentill(api_key="tt_...", base_url="https://billing.example.com")
    tokentill.record_response(response, customer_id="acme", feature="support-bot")
"""

__version__ = "0.1.0"

from .authorization import Authorization
from .client import Tokentill
from .errors import (
    ApiError,
    AuthorizationRefused,
    DeliveryFailure,
    QueueFull,
    TokentillError,
)
from .providers import StreamReading, Usage, read_stream, usage_from_response

__all__ = [
    "ApiError",
    "Authorization",
    "AuthorizationRefused",
    "DeliveryFailure",
    "QueueFull",
    "StreamReading",
    "Tokentill",
    "TokentillError",
    "Usage",
    "__version__",
    "read_stream",
    "usage_from_response",
]
