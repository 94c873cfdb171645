"""Celery app and tasks: send batches, dispatch due work; the Kaleyra client, outcomes, limiter."""
