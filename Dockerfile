# The lab in one image: `mtls-lab` is the entrypoint, so a compose service's command is its subcommand.
# Installs this repository (not a PyPI release). The lab is pure Python and every dependency ships a
# manylinux wheel, so the only wheel built here is the lab's own, and no compiler is in the image.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# The non-root user every service runs as. The lab PKI volume is mounted at /lab/certs: Docker copies
# this directory's owner into a new named volume, so the keys the `certs` service writes (mode 0600)
# belong to uid 10001 and the server and caller, running as the same uid, can read them.
RUN groupadd --system --gid 10001 lab \
    && useradd --system --uid 10001 --gid lab --home-dir /lab --shell /usr/sbin/nologin lab \
    && mkdir -p /lab/certs \
    && chown -R lab:lab /lab \
    && chmod 0700 /lab/certs

WORKDIR /app
COPY pyproject.toml README.md ./
COPY mtls_lab/ mtls_lab/
COPY certs/ certs/
COPY server/ server/
COPY caller/ caller/
COPY examples/ examples/
# --only-binary: dependencies come as wheels or the build fails loudly (no compiling in the image).
RUN pip install --no-cache-dir --only-binary=:all: . \
    && rm -rf build *.egg-info

USER lab
ENTRYPOINT ["mtls-lab"]
CMD ["--help"]
