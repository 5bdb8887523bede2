# The CURE image: API, worker, Flower and the cure command (compose.yaml runs it several ways).
# Debian's Python 3.11 in a virtualenv; build with the host's network for apt and PyPI:
# `scripts/image` (or `docker build --network host -t cure .`). On a machine with no image
# registry, scripts/image first builds debian:bookworm-slim locally, as for the app images.
FROM debian:bookworm-slim
# Local certificate authorities (deploy/ca-certificates/*.crt, see its README) join Debian's.
COPY deploy/ca-certificates/ /usr/local/share/ca-certificates/
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv ca-certificates \
 && update-ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/cure \
 && useradd --system --uid 10001 --home-dir /srv/cure cure
ENV PATH=/opt/cure/bin:$PATH PYTHONUNBUFFERED=1 PIP_CERT=/etc/ssl/certs/ca-certificates.crt
WORKDIR /srv/cure
# The runtime dependencies at the versions requirements-runtime.lock pins (scripts/lock writes
# it), each checked against its hash, and setuptools for the editable install: this layer is
# rebuilt only when the lock changes.
COPY requirements-runtime.lock /tmp/requirements.lock
RUN pip install --no-cache-dir --disable-pip-version-check --require-hashes -r /tmp/requirements.lock \
 && pip install --no-cache-dir --disable-pip-version-check "setuptools>=68" \
 && rm /tmp/requirements.lock
COPY pyproject.toml alembic.ini ./
COPY alembic ./alembic
COPY cure ./cure
# Editable, so alembic.ini and the apps' folders are found beside the package; with the
# setuptools installed above, so a change of code rebuilds in seconds and needs no network.
# var/ is what the processes keep (the metrics of a worker's pool; outside production, the
# secrets generated at first start): compose.yaml mounts one volume there for them to share.
# compose.yaml's credentials (.env) never enter the build context (.dockerignore).
RUN pip install --no-cache-dir --disable-pip-version-check --no-deps --no-build-isolation -e . \
 && mkdir -p var && chown cure var
COPY README.md ./
USER cure
EXPOSE 8000
CMD ["cure", "api", "--host", "0.0.0.0"]
