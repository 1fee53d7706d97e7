"""A small receiver of poshost merchant webhooks: verifies each signature, dedupes by event id
and prints every event as one JSON line (docs/webhooks.md)."""
