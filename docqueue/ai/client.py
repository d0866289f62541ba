"""A small client for OpenAI-compatible HTTP APIs (OpenAI, TogetherAI, vLLM, Ollama, TEI).

One `post_json` is one logical request inside a stage attempt:
- 429: wait what `Retry-After` says (up to AI_MAX_RETRY_AFTER_SECONDS), then try again;
- 5xx, timeouts, refused connections: back off exponentially, with jitter, and try again;
  each counts against the service's circuit breaker;
- after AI_MAX_TRIES tries: TransientError, so the queue retries the stage later;
- any other 4xx, or an answer that is not what the API promises: a permanent
  StageError naming the service and what was wrong.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import requests

from docqueue.ai.breakers import SERVICES, ServiceFailed, guarded
from docqueue.backoff import jittered
from docqueue.errors import StageError, TransientError
from docqueue.settings import Settings

logger = logging.getLogger(__name__)


class MalformedAnswer(StageError):
    """The service answered, but not in the shape its API promises."""


@dataclass(frozen=True)
class Endpoint:
    """Where one service lives: its breaker's name, base URL, key and model."""

    breaker: str
    base_url: str
    api_key: str
    model: str

    @property
    def service(self) -> str:
        return SERVICES[self.breaker]


def _retry_after_seconds(response: requests.Response) -> float | None:
    """Seconds the server asked us to wait (delta-seconds or an HTTP date), or None."""
    raw = response.headers.get("Retry-After", "").strip()
    if not raw:
        return None
    if raw.isdigit():
        return float(raw)
    try:
        return max(0.0, (parsedate_to_datetime(raw) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def _refusal(endpoint: Endpoint, response: requests.Response) -> StageError:
    try:
        detail = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        detail = response.text[:200]
    hint = " (check the API key setting)" if response.status_code in (401, 403) else ""
    return StageError(f"the {endpoint.service} refused the request with HTTP {response.status_code}{hint}: {detail}")


class ApiClient:
    """POSTs JSON to one OpenAI-compatible endpoint with the retry rules above."""

    def __init__(self, endpoint: Endpoint, settings: Settings, session: requests.Session | None = None) -> None:
        self.endpoint = endpoint
        self.settings = settings
        self.http = session or requests.Session()

    def _send(self, path: str, payload: dict) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.endpoint.api_key}"} if self.endpoint.api_key else {}
        try:
            response = self.http.post(
                f"{self.endpoint.base_url}{path}",
                json=payload,
                headers=headers,
                timeout=self.settings.ai_timeout_seconds,
            )
        except (requests.ConnectionError, requests.Timeout) as error:
            raise ServiceFailed(f"could not reach it ({type(error).__name__})") from None
        if response.status_code >= 500:
            raise ServiceFailed(f"it answered HTTP {response.status_code}", response.status_code)
        return response

    def post_json(self, path: str, payload: dict) -> dict:
        """POST `payload` to `path` under the base URL; the decoded JSON object it answers."""
        last_problem = ""
        for attempt in range(1, self.settings.ai_max_tries + 1):
            try:
                response = guarded(self.endpoint.breaker, lambda: self._send(path, payload))
            except ServiceFailed as failure:
                last_problem = str(failure)
                if attempt < self.settings.ai_max_tries:
                    time.sleep(jittered(self.settings.ai_retry_backoff_seconds, attempt - 1))
                continue
            if response.status_code == 429:
                wait = _retry_after_seconds(response)
                last_problem = "it kept answering HTTP 429 (rate limited)"
                if wait is not None and wait > self.settings.ai_max_retry_after_seconds:
                    raise TransientError(f"the {self.endpoint.service} asked us to wait {wait:.0f} s (rate limited)")
                if attempt < self.settings.ai_max_tries:
                    time.sleep(
                        wait if wait is not None else jittered(self.settings.ai_retry_backoff_seconds, attempt - 1)
                    )
                continue
            if response.status_code >= 400:
                raise _refusal(self.endpoint, response)
            try:
                body = response.json()
            except ValueError:
                raise MalformedAnswer(f"the {self.endpoint.service} answered something that is not JSON") from None
            if not isinstance(body, dict):
                raise MalformedAnswer(f"the {self.endpoint.service} answered JSON that is not an object")
            return body
        raise TransientError(f"the {self.endpoint.service} failed {self.settings.ai_max_tries} tries ({last_problem})")
