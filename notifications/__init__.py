"""Notifications: outbox, channels, templates (see issue #5; not built yet)."""
