"""Talking to outside services: OpenAI-compatible HTTP APIs and their circuit breakers."""
