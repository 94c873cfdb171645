"""The producer: validate a campaign, read its recipients, store it and dispatch it."""
