"""stickerq: a queue-backed bulk sender for Kaleyra WhatsApp v2 sticker messages."""
