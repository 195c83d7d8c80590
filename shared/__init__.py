"""Shared code of the image-generation backend: every function's logic lives here."""
