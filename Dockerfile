# The CURE image: API, worker, Flower and the cure command (compose.yaml runs it several ways).
FROM python:3.11-slim
WORKDIR /srv/cure
COPY pyproject.toml README.md alembic.ini ./
COPY alembic ./alembic
COPY cure ./cure
RUN pip install --no-cache-dir . && useradd --system --uid 10001 cure
USER cure
EXPOSE 8000
CMD ["cure", "api", "--host", "0.0.0.0"]
