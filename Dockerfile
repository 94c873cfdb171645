FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY stickerq stickerq
COPY worker worker
COPY producer producer
COPY migrations migrations
RUN pip install --no-cache-dir .
ENTRYPOINT ["stickerq"]
