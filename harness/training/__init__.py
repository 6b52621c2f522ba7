"""Shared training machinery: chat examples with per-message loss, and a supervised trainer."""
