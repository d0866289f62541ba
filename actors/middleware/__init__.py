"""Dramatiq middleware, one class per file, written like Dramatiq's own."""
