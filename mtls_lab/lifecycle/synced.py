"""Trust stores kept by ``mtls-lab trust-sync``, for the matrix: "the bundle a scheduled trust-sync left by phase X".

A scenario with ``trust_sync=Phase.MIGRATION`` runs its server with a trust store that started as the
scenario's ``trust`` CAs (today's root, as most customers have it) and was then kept by a scheduled
``trust-sync`` against the lab's Adobe API: one run in each phase from the first up to that one, as
cron would, the first one plain (``--prune`` is refused on a first run), the others with ``--prune``;
``staged`` adds ``--stage next-hierarchy`` to the first run, the one-time change Adobe asks for.
Issuers come from the lab's ``ca/`` directory, exactly as docs/lifecycle.md's commands do. Each store
is built once per process, in a temporary directory removed at exit.
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
from mtls_lab.lifecycle.trust_sync import SyncOptions, SyncReport, sync

LAB_CREDENTIALS = Credentials(token="lab-token", api_key="lab-api-key", org_id="LAB@AdobeOrg")

_built: dict[tuple[Path, tuple[CA, ...], bool], dict[Phase, Path]] = {}
_lock = threading.Lock()


def synced_bundle(pki: LabPaths, initial: tuple[CA, ...], phase: Phase, staged: bool = False) -> Path:
    """The bundle a scheduled trust-sync leaves by ``phase``, starting from the ``initial`` CAs."""
    key = (pki.root.resolve(), initial, staged)
    with _lock:
        if key not in _built:
            _built[key] = _build(pki, initial, staged)
        return _built[key][phase]


def _build(pki: LabPaths, initial: tuple[CA, ...], staged: bool) -> dict[Phase, Path]:
    """One schedule through every phase; a copy of the bundle as each phase's run left it."""
    directory = Path(tempfile.mkdtemp(prefix="mtls-lab-trust-sync-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    bundle = directory / "adobe-trust.pem"
    bundle.write_bytes(b"".join(pki.ca(ca).read_bytes() for ca in initial))
    stores = {}
    with RunningAdobeApi(AdobeApiConfig(certs=pki.root, quiet=True)) as api:
        for number, phase in enumerate(Phase):
            api.set_phase(phase)
            scheduled_run(api, pki, bundle, number, staged)
            stores[phase] = directory / f"{phase.value}.pem"
            shutil.copyfile(bundle, stores[phase])
    return stores


def scheduled_run(api: RunningAdobeApi, pki: LabPaths, bundle: Path, number: int, staged: bool) -> SyncReport:
    """Run ``number`` (from 0) of a scheduled trust-sync on the lab: the first plain (``--prune`` is refused on a
    first run) and, if ``staged``, staging the next hierarchy, the one-time change; every later one ``--prune``."""
    options = SyncOptions(
        api=api.url,
        out=bundle,
        credentials=LAB_CREDENTIALS,
        server_ca=pki.ca(CA.SERVER_ROOT),
        ca_dir=pki.root / "ca",
        stage=("next-hierarchy",) if staged and number == 0 else (),
        prune=number > 0,
    )
    return sync(options)
