# The CURE image: API, worker, Flower and the cure command (compose.yaml runs it several ways).
# Debian's Python 3.11 in a virtualenv; build with the host's network for apt and PyPI:
# `scripts/image` (or `docker build --network host -t cure .`). On a machine with no image
# registry, scripts/image first builds debian:bookworm-slim locally, as for the app images.
# The runtime dependencies from pyproject.toml (and setuptools for the editable install), alone:
# a change elsewhere in pyproject.toml (lint settings, test tools) does not rebuild them.
FROM debian:bookworm-slim AS requirements
RUN command -v python3 >/dev/null \
 || (apt-get update && apt-get install -y --no-install-recommends python3-minimal)
COPY pyproject.toml /
RUN python3 -c "import tomllib; print('\n'.join(tomllib.load(open('/pyproject.toml', 'rb'))['project']['dependencies']))" \
      > /requirements.txt \
 && echo "setuptools>=68" >> /requirements.txt

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
# Dependencies first, from the list the first stage read: rebuilt only when that list changes.
COPY --from=requirements /requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir --disable-pip-version-check -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt
COPY pyproject.toml alembic.ini ./
COPY alembic ./alembic
COPY cure ./cure
# Editable, so alembic.ini and the apps' folders are found beside the package; with the
# setuptools installed above, so a change of code rebuilds in seconds and needs no network.
RUN pip install --no-cache-dir --disable-pip-version-check --no-deps --no-build-isolation -e . \
 && mkdir -p var && chown cure var
COPY README.md ./
USER cure
EXPOSE 8000
CMD ["cure", "api", "--host", "0.0.0.0"]
