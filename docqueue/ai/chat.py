"""Asking an OpenAI-compatible chat endpoint (`/v1/chat/completions`) one question."""

from __future__ import annotations

import base64

from docqueue.ai.client import ApiClient, Endpoint, MalformedAnswer
from docqueue.settings import Settings


class ChatClient:
    """One question, one answer, over the configured CHAT_* endpoint."""

    def __init__(self, settings: Settings) -> None:
        base_url = settings.chat_base_url.removesuffix("/v1")
        self.model = settings.chat_model
        self.vision_model = settings.chat_vision_model or settings.chat_model
        self.client = ApiClient(Endpoint("chat", base_url, settings.chat_api_key, self.model), settings)

    def _answer(self, model: str, content) -> str:
        body = self.client.post_json(
            "/v1/chat/completions", {"model": model, "messages": [{"role": "user", "content": content}]}
        )
        try:
            answer = body["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            answer = None
        if not isinstance(answer, str):
            raise MalformedAnswer(f"the {self.client.endpoint.service} answered without a message in choices[0]")
        return answer

    def ask_about_text(self, question: str, text: str) -> str:
        return self._answer(self.model, f"{question}\n\n---\n{text}")

    def ask_about_image(self, question: str, image: bytes, fmt: str) -> str:
        url = f"data:image/{fmt};base64,{base64.b64encode(image).decode()}"
        content = [{"type": "text", "text": question}, {"type": "image_url", "image_url": {"url": url}}]
        return self._answer(self.vision_model, content)


def chat_configured(settings: Settings) -> bool:
    """Enrichment is off unless CHAT_BASE_URL is set."""
    return bool(settings.chat_base_url)
