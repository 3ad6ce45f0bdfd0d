# One image for every docproc program. deploy/compose.yaml runs each in its own container
# (docproc watch / worker / beat / api, with a Valkey broker);
#
#   docker run -p 8750:8750 -e DOCPROC__STATUS_API__TOKEN="$(openssl rand -hex 24)" IMAGE
#
# runs everything in one container on the embedded broker, like `docproc up`. The status API
# listens on 0.0.0.0 here, so it needs that token (clients send "Authorization: Bearer
# <token>", the page asks for it once); without one `docproc up` and `docproc api` refuse to
# start, unless DOCPROC__STATUS_API__INSECURE_PUBLIC=true says the network is trusted.
FROM python:3.11-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends libmagic1 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/docproc
COPY pyproject.toml README.md ./
COPY docproc ./docproc
COPY config ./config
COPY deploy ./deploy
# Editable, so that `docproc up` finds deploy/supervisord.conf next to the package.
RUN pip install --no-cache-dir -e .

# The inbox and state_dir (its spool) share one volume: claiming a file is a rename, which
# cannot cross filesystems.
RUN useradd --system --uid 10001 --create-home docproc \
    && mkdir -p /srv/docproc/intake/inbox /srv/docproc/intake/state /srv/docproc/outbox \
    && chown -R docproc:docproc /srv/docproc
ENV DOCPROC_CONFIG=/opt/docproc/config/docproc.yaml \
    DOCPROC_INBOX=/srv/docproc/intake/inbox \
    DOCPROC_STATE_DIR=/srv/docproc/intake/state \
    DOCPROC_OUTBOX=/srv/docproc/outbox \
    DOCPROC__STATUS_API__HOST=0.0.0.0 \
    PYTHONUNBUFFERED=1
USER docproc
VOLUME ["/srv/docproc/intake", "/srv/docproc/outbox"]
EXPOSE 8750
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8750/healthz', timeout=5)"
ENTRYPOINT ["docproc"]
CMD ["up"]
