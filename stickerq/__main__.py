from stickerq.cli import app

app()
