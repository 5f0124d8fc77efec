"""A LangChain callback handler that records every chat model and LLM call's usage.

Needs ``langchain-core`` (``pip install "tokentill-client[langchain]"``)::

    from tokentill_client.langchain import TokentillCallbackHandler

    handler = TokentillCallbackHandler(tokentill, feature="support-bot")
    chain.invoke(question, config={"callbacks": [handler],
                                   "metadata": {"tokentill_customer_id": "acme"}})
"""

from __future__ import annotations

from collections.abc import Mapping

from langchain_core.callbacks import BaseCallbackHandler

from .client import Tokentill
from .integrations import LangChainRecorder


class TokentillCallbackHandler(LangChainRecorder, BaseCallbackHandler):
    """Records each call's usage through ``client`` (see ``tokentill_client.integrations``
    for where the customer, the feature and the usage come from)."""

    def __init__(
        self,
        client: Tokentill,
        *,
        customer_id: str | None = None,
        feature: str | None = None,
        properties: Mapping[str, str] | None = None,
    ):
        LangChainRecorder.__init__(
            self, client.record, customer_id=customer_id, feature=feature, properties=properties
        )
