"""Outgoing webhooks to the platform: an outbox written with each change, delivered later."""
