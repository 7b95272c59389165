"""Azure AI Content Safety (the `azure-safety` extra): a message or an answer analysed for
hate, sexual content, violence and self-harm (`text:analyze`), and a customer's message
read by Prompt Shields for attacks on the assistant (`text:shieldPrompt`).

`azure-ai-contentsafety` 1.0.0, the current release, has no Prompt Shields method, so
that call goes through the same client's `send_request`: one pipeline, one credential
(the resource key, or Entra ID), one retry policy, for both.

When the service fails (an error, a throttle past the retries, or no answer within the
deadline) the text is let through and the failure is logged: this check guards a support
conversation, and a customer whose parcel is late should still get an answer while the
safety service is down. It fails open, not closed, because the local rules run beside it
(`CombinedSafety`), the model provider's own content filter still applies to the GPT
dialog, and the offline engine only says what the shop's tools and templates say.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from providers.safety.base import Category, Direction, Finding, SafetyVerdict
from shop.errors import ConfigurationError

log = logging.getLogger(__name__)

ANALYZE_API_VERSION = "2023-10-01"  # the SDK's own
SHIELD_API_VERSION = "2024-09-01"  # Prompt Shields, generally available
# The service's limit per call for both operations; a longer message is checked in its
# first part (customers' messages are far shorter; the channels cap them anyway).
MAX_CHARS = 10_000
_CATEGORIES = {
    "Hate": Category.HATE,
    "Sexual": Category.SEXUAL,
    "Violence": Category.VIOLENCE,
    "SelfHarm": Category.SELF_HARM,
}
_SCOPE = "https://cognitiveservices.azure.com/.default"


class AzureContentSafety:
    """`ContentSafety` over an `azure.ai.contentsafety.aio.ContentSafetyClient`."""

    name = "azure"
    checks_output = True

    def __init__(
        self,
        client: Any,
        *,
        timeout_s: float = 3.0,
        prompt_shields: bool = True,
        credential: Any = None,
    ) -> None:
        self._client = client
        self._timeout_s = timeout_s
        self._prompt_shields = prompt_shields
        self._credential = credential  # an Entra ID credential this provider opened, closed with it

    @classmethod
    def connect(cls, endpoint: str, key: str = "", **options: Any) -> AzureContentSafety:
        """A client for the resource at `endpoint`, signed in with `key`, or with Entra ID
        (`DefaultAzureCredential`: the managed identity on Azure) when there is none."""
        try:
            from azure.ai.contentsafety.aio import ContentSafetyClient
            from azure.core.credentials import AzureKeyCredential
        except ImportError as exc:
            raise ConfigurationError(
                "CONTENT_SAFETY=azure needs the Azure AI Content Safety SDK: install the "
                "`azure-safety` extra (pip install 'aftercare[azure-safety]')"
            ) from exc
        owned = None
        if key:
            credential: Any = AzureKeyCredential(key)
        else:
            from azure.identity.aio import DefaultAzureCredential

            credential = owned = DefaultAzureCredential()
        # Two tries at most: the turn waits for this check, within `timeout_s` anyway.
        client = ContentSafetyClient(endpoint, credential, retry_total=1, credential_scopes=[_SCOPE])
        return cls(client, credential=owned, **options)

    async def check(self, text: str, *, direction: Direction) -> SafetyVerdict:
        text = text[:MAX_CHARS]
        if not text.strip():
            return SafetyVerdict()
        try:
            async with asyncio.timeout(self._timeout_s):
                calls = [self._analyze(text)]
                if direction == "input" and self._prompt_shields:
                    calls.append(self._shield(text))
                found = await asyncio.gather(*calls)
        except TimeoutError:
            log.warning(
                "Azure AI Content Safety did not answer within %.1fs; the %s is let through",
                self._timeout_s,
                direction,
            )
            return SafetyVerdict(checked=False)
        except Exception as exc:  # azure-core's errors, and a transport's; see the module's docstring
            log.warning(
                "Azure AI Content Safety failed (%s: %s); the %s is let through",
                type(exc).__name__,
                exc,
                direction,
            )
            return SafetyVerdict(checked=False)
        return SafetyVerdict(findings=tuple(f for part in found for f in part))

    async def _analyze(self, text: str) -> list[Finding]:
        from azure.ai.contentsafety.models import AnalyzeTextOptions

        result = await self._client.analyze_text(
            AnalyzeTextOptions(text=text, output_type="FourSeverityLevels")
        )
        found = []
        for item in result.categories_analysis:
            # The SDK gives a `TextCategory` (a str enum) or, for a category it does not
            # know, the plain string; the enum's value is the wire name either way.
            category = _CATEGORIES.get(str(getattr(item.category, "value", item.category)))
            if category is not None and item.severity:
                found.append(Finding(category, int(item.severity), "azure: text:analyze"))
        return found

    async def _shield(self, text: str) -> list[Finding]:
        from azure.core.rest import HttpRequest

        request = HttpRequest(
            "POST",
            "/text:shieldPrompt",
            params={"api-version": SHIELD_API_VERSION},
            json={"userPrompt": text, "documents": []},
        )
        response = await self._client.send_request(request)
        response.raise_for_status()
        analysis = (response.json() or {}).get("userPromptAnalysis") or {}
        if analysis.get("attackDetected") is True:
            return [Finding(Category.PROMPT_INJECTION, 6, "azure: Prompt Shields")]
        return []

    async def aclose(self) -> None:
        await self._client.close()
        if self._credential is not None:
            await self._credential.close()
