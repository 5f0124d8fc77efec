"""A LiteLLM custom logger that records every successful call's usage.

Needs ``litellm`` (``pip install "tokentill-client[litellm]"``)::

    import litellm
    from tokentill_client.litellm import TokentillLogger

    litellm.callbacks = [TokentillLogger(tokentill)]
    litellm.completion(model="gpt-4o", messages=messages,
                       metadata={"tokentill_customer_id": "acme"})
"""

from __future__ import annotations

from collections.abc import Mapping

from litellm.integrations.custom_logger import CustomLogger

from .client import Tokentill
from .integrations import LiteLLMRecorder


class TokentillLogger(LiteLLMRecorder, CustomLogger):  # type: ignore[misc]  # litellm: untyped here
    """Records each successful call's usage through ``client`` (see
    ``tokentill_client.integrations``)."""

    def __init__(
        self,
        client: Tokentill,
        *,
        customer_id: str | None = None,
        feature: str | None = None,
        properties: Mapping[str, str] | None = None,
    ):
        CustomLogger.__init__(self)
        LiteLLMRecorder.__init__(
            self, client.record, customer_id=customer_id, feature=feature, properties=properties
        )
