"""Trust stores kept by ``mtls-lab trust-sync``, for the matrix: "the bundle trust-sync writes in phase X".

A scenario with ``trust_sync="migration"`` runs its server with a trust store that started as the
scenario's ``trust`` CAs (today's root, as most customers have it) and was then brought up to date by
``trust-sync`` against the lab's Adobe API in that phase, finding issuers in the lab's ``ca/``
directory, exactly as the README's commands do. Each store is built once per process, in a
temporary directory removed at exit.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
from pathlib import Path

from mtls_lab.certs.layout import CA, LabPaths
from mtls_lab.lifecycle.api import AdobeApiConfig, RunningAdobeApi
from mtls_lab.lifecycle.client import Credentials
from mtls_lab.lifecycle.phases import Phase
from mtls_lab.lifecycle.trust_sync import SyncOptions, sync

LAB_CREDENTIALS = Credentials(token="lab-token", api_key="lab-api-key", org_id="LAB@AdobeOrg")

_built: dict[tuple[Path, tuple[CA, ...], Phase], Path] = {}
_lock = threading.Lock()


def synced_bundle(pki: LabPaths, initial: tuple[CA, ...], phase: Phase) -> Path:
    """The bundle trust-sync leaves after one run in ``phase``, starting from the ``initial`` CAs."""
    key = (pki.root.resolve(), initial, phase)
    with _lock:
        if key not in _built:
            _built[key] = _build(pki, initial, phase)
        return _built[key]


def _build(pki: LabPaths, initial: tuple[CA, ...], phase: Phase) -> Path:
    directory = Path(tempfile.mkdtemp(prefix="mtls-lab-trust-sync-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    bundle = directory / f"{phase.value}.pem"
    bundle.write_bytes(b"".join(pki.ca(ca).read_bytes() for ca in initial))
    with RunningAdobeApi(AdobeApiConfig(phase=phase, certs=pki.root, quiet=True)) as api:
        options = SyncOptions(
            api=api.url,
            out=bundle,
            credentials=LAB_CREDENTIALS,
            server_ca=pki.ca(CA.SERVER_ROOT),
            ca_dir=pki.root / "ca",
        )
        sync(options)
    return bundle
