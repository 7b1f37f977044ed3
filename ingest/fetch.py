"""Download the original publications listed in the corpus manifest (``python -m ingest fetch``).

The originals are kept beside the corpus (default ``<corpus>/../originals/``), never indexed. Each file is
written to a temporary name and renamed only once complete, its SHA-256 is recorded in
``checksums.json``, and a file already present with the recorded checksum (and URL) is not downloaded again.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import ssl
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from assistant.errors import AssistantError
from ingest.manifest import ManifestError, PublicationEntry, load_manifest

CHECKSUMS_FILE = "checksums.json"
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
USER_AGENT = "alliances-territoires-assistant/0.1 (ingest fetch)"
_CHUNK = 64 * 1024

_HTTP_REASONS = {
    400: "requête refusée",
    401: "authentification requise",
    403: "accès refusé",
    404: "page introuvable",
    410: "page supprimée",
    429: "trop de requêtes, réessayer plus tard",
    500: "erreur du serveur",
    502: "passerelle en erreur",
    503: "service indisponible",
    504: "délai dépassé côté serveur",
}


class FetchFailure(AssistantError):
    """One download failed; the message is the French reason shown to the maintainer."""


@dataclass(frozen=True)
class FetchResult:
    id: str
    url: str
    file: str
    status: str  # "downloaded" | "skipped" | "failed"
    sha256: str = ""
    size: int = 0
    reason: str = ""

    def line(self) -> str:
        """The French line printed for this publication."""
        if self.status == "failed":
            return f"Échec du téléchargement de {self.url} : {self.reason}"
        if self.status == "skipped":
            return f"Déjà présent et intact : {self.file}"
        return f"Téléchargé : {self.file} ({_human_size(self.size)}) depuis {self.url}"


@dataclass
class FetchReport:
    dest_dir: Path
    results: list[FetchResult] = field(default_factory=list)

    def _with(self, status: str) -> list[FetchResult]:
        return [r for r in self.results if r.status == status]

    @property
    def downloaded(self) -> list[FetchResult]:
        return self._with("downloaded")

    @property
    def skipped(self) -> list[FetchResult]:
        return self._with("skipped")

    @property
    def failed(self) -> list[FetchResult]:
        return self._with("failed")

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def fetch_publications(
    manifest_path: Path,
    dest_dir: Path,
    *,
    timeout: float = 30.0,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> FetchReport:
    """Download every publication of the manifest into ``dest_dir``; failures are reported, not raised.

    Raises :class:`ManifestError` when the manifest itself is unusable, ``OSError`` when ``dest_dir``
    cannot be created.
    """
    manifest = load_manifest(manifest_path)
    dest_dir.mkdir(parents=True, exist_ok=True)
    checksums = _read_checksums(dest_dir)
    report = FetchReport(dest_dir)
    for pub in manifest.publications:
        result = _fetch_one(pub, dest_dir, checksums, timeout=timeout, max_bytes=max_bytes)
        report.results.append(result)
        if result.status == "downloaded":
            checksums[pub.file] = {"sha256": result.sha256, "url": pub.url, "bytes": result.size}
            # Written after each file, so an interrupted run still remembers what it completed.
            _write_checksums(dest_dir, checksums)
    return report


def run_fetch(corpus_dir: Path, dest_dir: Path | None = None, out: IO[str] = sys.stdout) -> int:
    """CLI body of ``python -m ingest fetch``: French lines, a summary, and the exit code (0, 1, or 2)."""
    dest = dest_dir or corpus_dir.parent / "originals"
    manifest_path = corpus_dir / "sources.yaml"
    try:
        report = fetch_publications(manifest_path, dest)
    except ManifestError as exc:
        print(f"Erreur : manifeste du corpus inutilisable :\n{exc}", file=out)
        return 2
    except OSError as exc:
        print(f"Erreur : dossier de destination inutilisable : {dest} ({exc.strerror or exc})", file=out)
        return 2
    if not report.results:
        print(f"Aucune publication à télécharger dans {manifest_path}.", file=out)
        return 0
    for result in report.results:
        print(result.line(), file=out)
    print(
        f"Bilan : {len(report.downloaded)} téléchargée(s), {len(report.skipped)} déjà présente(s), "
        f"{len(report.failed)} en échec — dossier {dest}",
        file=out,
    )
    return report.exit_code


# --------------------------------------------------------------------------- one download


def _fetch_one(
    pub: PublicationEntry, dest_dir: Path, checksums: dict[str, Any], *, timeout: float, max_bytes: int
) -> FetchResult:
    target = dest_dir / pub.file
    recorded = checksums.get(pub.file) or {}
    if target.is_file() and recorded.get("url") == pub.url and recorded.get("sha256") == _sha256(target):
        return FetchResult(pub.id, pub.url, pub.file, "skipped", recorded["sha256"], target.stat().st_size)
    try:
        digest, size = _download(pub.url, target, timeout=timeout, max_bytes=max_bytes)
    except FetchFailure as exc:
        return FetchResult(pub.id, pub.url, pub.file, "failed", reason=str(exc))
    except OSError as exc:  # temp file or rename in the destination folder
        reason = f"écriture impossible dans {dest_dir} ({exc.strerror or exc})"
        return FetchResult(pub.id, pub.url, pub.file, "failed", reason=reason)
    return FetchResult(pub.id, pub.url, pub.file, "downloaded", digest, size)


def _download(url: str, target: Path, *, timeout: float, max_bytes: int) -> tuple[str, int]:
    """Stream ``url`` into a temp file beside ``target``, then rename it; (sha256, size)."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": "*/*"})
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            digest, size = _stream(request, fh, timeout=timeout, max_bytes=max_bytes)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return digest, size


def _stream(request: urllib.request.Request, fh: IO[bytes], *, timeout: float, max_bytes: int) -> tuple[str, int]:
    hasher = hashlib.sha256()
    size = 0
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            announced = response.headers.get("Content-Length")
            expected = int(announced) if announced and announced.isdigit() else None
            if expected is not None and expected > max_bytes:
                limit = _human_size(max_bytes)
                raise FetchFailure(f"fichier trop volumineux ({_human_size(expected)}, limite {limit})")
            while chunk := response.read(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise FetchFailure(f"fichier trop volumineux (plus de {_human_size(max_bytes)})")
                hasher.update(chunk)
                _write(fh, chunk)
            # http.client returns a short body without error when the server closes early.
            if expected is not None and size != expected:
                raise FetchFailure(f"téléchargement incomplet ({size} octets reçus sur {expected} annoncés)")
    except FetchFailure:
        raise
    except urllib.error.HTTPError as exc:
        raise FetchFailure(f"erreur HTTP {exc.code} ({_HTTP_REASONS.get(exc.code, exc.reason)})") from None
    except urllib.error.URLError as exc:
        raise FetchFailure(_network_reason(exc.reason, timeout)) from None
    except http.client.IncompleteRead as exc:
        raise FetchFailure(f"téléchargement incomplet ({len(exc.partial)} octets reçus)") from None
    except (http.client.HTTPException, ValueError) as exc:
        raise FetchFailure(f"réponse invalide du serveur ({type(exc).__name__})") from None
    except OSError as exc:
        raise FetchFailure(_network_reason(exc, timeout)) from None
    return hasher.hexdigest(), size


def _write(fh: IO[bytes], chunk: bytes) -> None:
    # Kept apart so that a full disk is not reported as a network error.
    try:
        fh.write(chunk)
    except OSError as exc:
        raise FetchFailure(f"écriture impossible sur le disque ({exc.strerror or exc})") from None


def _network_reason(reason: object, timeout: float) -> str:
    if isinstance(reason, TimeoutError):
        return f"délai dépassé ({timeout:g} s sans réponse)"
    if isinstance(reason, socket.gaierror):
        return "nom de domaine introuvable (pas d'accès à Internet ou adresse erronée)"
    if isinstance(reason, ConnectionRefusedError):
        return "connexion refusée (aucun serveur n'écoute à cette adresse)"
    if isinstance(reason, ConnectionResetError):
        return "connexion interrompue par le serveur"
    if isinstance(reason, ssl.SSLError):
        return f"erreur de connexion sécurisée TLS ({reason.reason or reason})"
    if isinstance(reason, OSError):
        return f"réseau injoignable ({reason.strerror or reason})"
    return f"réseau injoignable ({reason})"


# --------------------------------------------------------------------------- checksums


def _sha256(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def _read_checksums(dest_dir: Path) -> dict[str, Any]:
    path = dest_dir / CHECKSUMS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return {}  # a lost or damaged record only costs a fresh download
    return data if isinstance(data, dict) else {}


def _write_checksums(dest_dir: Path, checksums: dict[str, Any]) -> None:
    text = json.dumps(dict(sorted(checksums.items())), ensure_ascii=False, indent=2) + "\n"
    fd, tmp_name = tempfile.mkstemp(dir=dest_dir, prefix=f".{CHECKSUMS_FILE}.", suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp_name, dest_dir / CHECKSUMS_FILE)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _human_size(size: int) -> str:
    if size < 1024:
        return f"{size} octets"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} Ko".replace(".", ",")
    return f"{size / 1024 / 1024:.1f} Mo".replace(".", ",")
