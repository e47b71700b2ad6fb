# Test plumbing: a local stand-in for the official `python:3.11-slim-bookworm`, which CI cannot pull
# (no image registry is reachable there). scripts/compose-test.sh builds it on a root filesystem that
# mmdebstrap makes from Debian bookworm (python3, python3-venv, ca-certificates) and tags
# it `python:3.11-slim-bookworm`, so the project's Dockerfile builds unchanged. Users pull the real one.
FROM mtls-lab-bookworm-rootfs:local

# The official image has `python` and `pip` first on PATH; a venv gives the same (Debian's own pip
# refuses to install into the system Python).
RUN python3 -m venv /opt/venv
# The build machine's CA bundle, so that pip reaches the package index the way the host's pip does.
COPY host-ca-bundle.crt /usr/local/share/ca-certificates-host/bundle.crt
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    PIP_CERT=/usr/local/share/ca-certificates-host/bundle.crt
CMD ["python3"]
