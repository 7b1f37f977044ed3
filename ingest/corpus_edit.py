"""Changes to the corpus folder and its manifest asked from the browser: add, replace, describe, remove.

An upload is first written to ``corpus/_televersements/`` (a ``_`` folder: never indexed) under a name the
server makes up, with its size counted while it streams in, then read by the ingestion job's own loader
(:func:`ingest.load.load_file`: child process, time and memory caps, content checked against the
extension) so that a refusal gives the same French reason as ``python -m ingest``. Only a file that passed
is moved into the corpus, under a safe name derived from its title, never from the client's path.

Until the ingestion job has indexed a change, the change can be taken back (:class:`Undo`): the manifest's
text before it is kept in memory, and every file it displaced waits in the staging folder. A file that
passed the upload checks but fails in the ingestion itself (splitting, passage budget) thus leaves the
corpus as it was. Files left in the staging folder by a process killed mid-action are swept
(:func:`sweep_staging`) once they are older than any live action could be.

The manifest (``sources.yaml``) is edited with ruamel.yaml, which keeps its comments and layout; the
edited text is validated with :func:`ingest.manifest.parse_manifest` before it replaces the file
atomically. These functions are not safe to call concurrently: the job queue (:mod:`ingest.jobs`) runs
them one at a time.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import time
import unicodedata
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from assistant import shared_state, store
from assistant.catalog import CatalogEntry
from assistant.errors import AssistantError
from assistant.settings import Settings
from ingest.ids import slug
from ingest.load import RESERVED_NAMES, SUFFIX_FORMATS, LoadError, LoadLimits, corpus_files, load_file
from ingest.manifest import ManifestError, parse_manifest

log = logging.getLogger("assistant.jobs")

STAGING_DIR = "_televersements"
# A staged upload waits for its turn in the queue, then its job runs one incremental ingestion (minutes). Another
# replica sharing the corpus folder may be in the middle of such an action: only files older than this are
# leftovers of a process that was killed.
STAGING_SAFE_AGE_S = 6 * 3600
MANIFEST = "sources.yaml"
DEFAULT_LICENCE = "non précisée (document ajouté depuis l'interface)"
MAX_FIELD_CHARS = 300
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class CorpusEditError(AssistantError, ValueError):
    """A change that cannot be made; the message is one French sentence for the manager."""


@dataclass(frozen=True)
class Description:
    """What a manager may set on a document (manifest fields)."""

    title: str = ""
    publisher: str = ""
    url: str = ""
    edition: str = ""

    def checked(self, *, need_title: bool) -> Description:
        values = {}
        for name, label in (("title", "titre"), ("publisher", "éditeur"), ("url", "lien"), ("edition", "date")):
            value = " ".join(str(getattr(self, name) or "").split())
            if _CONTROL.search(value):
                raise CorpusEditError(f"Le champ « {label} » contient des caractères de contrôle.")
            if len(value) > MAX_FIELD_CHARS:
                raise CorpusEditError(f"Le champ « {label} » dépasse {MAX_FIELD_CHARS} caractères.")
            values[name] = value
        if need_title and not values["title"]:
            raise CorpusEditError("Le titre du document est obligatoire.")
        if values["url"] and not values["url"].startswith("https://"):
            raise CorpusEditError("Le lien de la publication d'origine doit commencer par https://.")
        return Description(**values)


@dataclass(frozen=True)
class StagedFile:
    """An uploaded file that passed the ingestion checks, waiting in the staging folder."""

    path: Path
    suffix: str
    client_name: str
    size: int
    sha256: str
    pages: int
    title: str  # the title found in the file (PDF metadata, first heading), "" when none


def upload_suffix(client_name: str) -> str:
    """The extension of the client's file name, lower-case, when it is a supported format."""
    name = PurePosixPath(str(client_name or "").replace("\\", "/")).name
    suffix = PurePosixPath(name).suffix.lower()
    if suffix not in SUFFIX_FORMATS:
        accepted = ", ".join(sorted(SUFFIX_FORMATS))
        shown = suffix or "sans extension"
        raise CorpusEditError(f"Format non pris en charge ({shown}) : formats acceptés {accepted}.")
    return suffix


def _too_big(settings: Settings) -> CorpusEditError:
    return CorpusEditError(f"Fichier trop volumineux (limite {settings.max_file_mb:.0f} Mo) : rien n'a été modifié.")


class Upload:
    """One upload being received: ``write`` each chunk, then ``finish`` (checks) or ``abort``.

    The size is counted as the bytes arrive: past ``max_file_mb`` the partial file is deleted and
    the upload refused, so a 200 MB body never lands on disk whole.
    """

    def __init__(self, settings: Settings, client_name: str) -> None:
        self.settings = settings
        self.client_name = client_name
        self.suffix = upload_suffix(client_name)
        self.dir = settings.corpus_dir / STAGING_DIR
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / f"{uuid.uuid4().hex}{self.suffix}"
        self._fh: io.BufferedWriter | None = self.path.open("xb")
        self._digest = hashlib.sha256()
        self.size = 0
        self._limit = int(settings.max_file_mb * 1024 * 1024)

    def write(self, chunk: bytes) -> None:
        if self._fh is None:
            raise CorpusEditError("Téléversement déjà terminé.")
        self.size += len(chunk)
        if self.size > self._limit:
            self.abort()
            raise _too_big(self.settings)
        self._fh.write(chunk)
        self._digest.update(chunk)

    def abort(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self.path.unlink(missing_ok=True)

    def finish(self) -> StagedFile:
        """Close the file and read it as the ingestion job would; refused files are deleted."""
        if self._fh is None:
            raise CorpusEditError("Téléversement déjà terminé.")
        self._fh.close()
        self._fh = None
        limits = LoadLimits.from_settings(self.settings)
        try:
            loaded = load_file(self.path, self.dir, limits)
        except LoadError as exc:
            self.path.unlink(missing_ok=True)
            raise CorpusEditError(f"Fichier refusé : {exc.reason}. Rien n'a été modifié.") from None
        except BaseException:
            self.path.unlink(missing_ok=True)
            raise
        return StagedFile(self.path, self.suffix, self.client_name, self.size, self._digest.hexdigest(),
                          len(loaded.pages), loaded.title)


def discard(staged: StagedFile) -> None:
    staged.path.unlink(missing_ok=True)


def sweep_staging(settings: Settings, older_than_s: float = STAGING_SAFE_AGE_S) -> int:
    """Delete the staging folder's files older than ``older_than_s`` (leftovers of a killed process); one log
    line says how many and where. Returns how many were deleted."""
    staging = settings.corpus_dir / STAGING_DIR
    if not staging.is_dir():
        return 0
    limit = time.time() - older_than_s
    removed = 0
    for path in staging.iterdir():
        try:
            if path.is_file() and not path.is_symlink() and path.stat().st_mtime < limit:
                path.unlink()
                removed += 1
        except FileNotFoundError:  # another replica swept it first
            continue
    if removed:
        log.info("Téléversements abandonnés supprimés : %d fichier(s) dans %s", removed, staging)
    return removed


@dataclass
class Undo:
    """How to put the corpus back as it was before a change, until the change's ingestion has succeeded."""

    corpus: Path
    manifest: str | None  # the manifest's text before the change; None: there was none
    added: list[Path] = field(default_factory=list)  # files the change put into the corpus
    kept: list[tuple[Path, Path]] = field(default_factory=list)  # (backup in the staging folder, original path)

    @classmethod
    def begin(cls, corpus: Path) -> Undo:
        path = corpus / MANIFEST
        return cls(corpus, path.read_text(encoding="utf-8") if path.exists() else None)

    def keep(self, path: Path) -> None:
        """Move ``path`` out of the corpus into the staging folder, to be put back by :meth:`rollback`."""
        staging = self.corpus / STAGING_DIR
        staging.mkdir(parents=True, exist_ok=True)
        backup = staging / f"{uuid.uuid4().hex}.ancien"
        os.replace(path, backup)
        os.utime(backup)  # its age counts from now for the sweep, not from the old file's last change
        self.kept.append((backup, path))

    def rollback(self) -> None:
        # New files go first: a new edition may have taken the old one's name.
        for path in self.added:
            path.unlink(missing_ok=True)
        for backup, original in reversed(self.kept):
            os.replace(backup, original)
        manifest = self.corpus / MANIFEST
        if self.manifest is None:
            manifest.unlink(missing_ok=True)
        else:
            tmp = self.corpus / f".{MANIFEST}.{uuid.uuid4().hex}.tmp"
            tmp.write_text(self.manifest, encoding="utf-8")
            os.replace(tmp, manifest)
        self.added, self.kept = [], []

    def commit(self) -> None:
        """The change is indexed: the displaced files are not needed any more."""
        for backup, _ in self.kept:
            backup.unlink(missing_ok=True)
        self.added, self.kept = [], []


# -- manifest ----------------------------------------------------------------------------------------


def _yaml() -> YAML:
    rt = YAML()  # round trip: comments, order and quoting of the untouched entries are kept
    rt.preserve_quotes = True
    rt.width = 4096
    rt.indent(mapping=2, sequence=4, offset=2)
    return rt


def _read_manifest(corpus: Path) -> Any:
    path = corpus / MANIFEST
    if not path.exists():
        return CommentedMap([("documents", CommentedSeq())])
    data = _yaml().load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise CorpusEditError("Le manifeste sources.yaml est invalide : corrigez-le d'abord.")
    if data.get("documents") is None:
        data["documents"] = CommentedSeq()
    return data


def _write_manifest(corpus: Path, data: Any) -> None:
    out = io.StringIO()
    _yaml().dump(data, out)
    text = out.getvalue()
    try:
        parse_manifest(yaml.safe_load(text), MANIFEST)
    except ManifestError as exc:
        raise CorpusEditError(f"Modification refusée, le manifeste serait invalide : {exc.problems[0]}") from None
    tmp = corpus / f".{MANIFEST}.{uuid.uuid4().hex}.tmp"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, corpus / MANIFEST)


def _entry(data: Any, doc_id: str) -> Any:
    return next((d for d in data["documents"] if isinstance(d, dict) and str(d.get("id")) == doc_id), None)


def _new_entry(doc_id: str, rel: str, described: Description) -> CommentedMap:
    entry = CommentedMap()
    entry["id"] = doc_id
    entry["file"] = rel
    entry["title"] = described.title
    entry["publisher"] = described.publisher or "non précisé"
    entry["url"] = described.url
    entry["edition"] = described.edition
    entry["licence"] = DEFAULT_LICENCE
    entry["themes"] = CommentedSeq()
    entry["covers"] = CommentedSeq()
    entry["themes"].fa.set_flow_style()
    entry["covers"].fa.set_flow_style()
    return entry


def _served_file(settings: Settings, doc_id: str) -> tuple[str, str] | None:
    """(corpus-relative file, file hash) of ``doc_id`` in the served index."""
    entry = _served_entry(settings, doc_id)
    return (entry.source_path, entry.file_hash) if entry is not None else None


def _served_entry(settings: Settings, doc_id: str) -> CatalogEntry | None:
    generation = shared_state.current_generation(settings)
    if generation is None:
        return None
    for rel, entry in store.read_catalog(generation).documents.items():
        if entry.doc_id == doc_id:
            return replace(entry, source_path=rel)
    return None


def _locate(settings: Settings, data: Any, doc_id: str) -> tuple[Any, str]:
    """The manifest entry (None when the file has none yet) and the file of ``doc_id``."""
    entry = _entry(data, doc_id)
    if entry is not None:
        return entry, str(entry["file"])
    served = _served_file(settings, doc_id)
    if served is None:
        raise CorpusEditError(f"Document introuvable : « {doc_id} ».")
    return None, served[0]


def _safe_rel(rel: str, corpus: Path) -> Path:
    pure = PurePosixPath(rel)
    if pure.is_absolute() or any(p in ("", ".", "..") for p in pure.parts):
        raise CorpusEditError(f"Chemin de document invalide : « {rel} ».")
    path = corpus / pure
    path.resolve().relative_to(corpus.resolve())
    return path


def _taken_ids(settings: Settings, data: Any) -> set[str]:
    corpus = settings.corpus_dir
    taken = {str(d.get("id")) for d in data["documents"] if isinstance(d, dict)}
    taken |= {slug(p.relative_to(corpus).as_posix()) for p in corpus_files(corpus)}
    return taken


def _base_name(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    base = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")[:60].strip("-")
    return base or "document"


def _free_name(corpus: Path, base: str, suffix: str, taken_ids: set[str]) -> str:
    for n in range(1, 10_000):
        stem = base if n == 1 else f"{base}-{n}"
        name = stem + suffix
        if name not in RESERVED_NAMES and not (corpus / name).exists() and slug(name) not in taken_ids:
            return name
    raise CorpusEditError("Impossible de trouver un nom libre pour ce document.")


def _today() -> str:
    return datetime.now(UTC).strftime("%d/%m/%Y")


def _day(iso: str) -> str:
    """``2026-11-30T…`` → ``30/11/2026`` (anything else unchanged)."""
    match = re.match(r"(\d{4})-(\d{2})-(\d{2})", iso)
    return f"{match[3]}/{match[2]}/{match[1]}" if match else iso


@dataclass(frozen=True)
class Change:
    """What a change did, for the job's summary and the audit trail."""

    action: str
    doc_id: str
    file: str
    old_file: str = ""
    old_hash: str = ""
    new_hash: str = ""
    title: str = ""
    old_edition: str = ""  # the edition replaced: its manifest label, else the day it was indexed
    undo: Undo | None = field(default=None, repr=False, compare=False)


def add_document(settings: Settings, staged: StagedFile, described: Description) -> Change:
    corpus = settings.corpus_dir
    described = described.checked(need_title=False)
    title = described.title or staged.title or _base_name(PurePosixPath(staged.client_name).stem).replace("-", " ")
    described = Description(title, described.publisher, described.url, described.edition or _today())
    undo = Undo.begin(corpus)
    data = _read_manifest(corpus)
    taken = _taken_ids(settings, data)
    name = _free_name(corpus, _base_name(title), staged.suffix, taken)
    doc_id = slug(name)
    data["documents"].append(_new_entry(doc_id, name, described))
    target = corpus / name
    os.replace(staged.path, target)
    undo.added.append(target)
    try:
        _write_manifest(corpus, data)
    except BaseException:
        undo.rollback()
        raise
    return Change("add", doc_id, name, new_hash=staged.sha256, title=title, undo=undo)


def replace_document(settings: Settings, doc_id: str, staged: StagedFile, edition: str = "") -> Change:
    """The new edition takes the old one's id (citations keep pointing to the same document)."""
    corpus = settings.corpus_dir
    edition = Description(title="-", edition=edition).checked(need_title=False).edition or _today()
    undo = Undo.begin(corpus)
    data = _read_manifest(corpus)
    entry, old_rel = _locate(settings, data, doc_id)
    old_path = _safe_rel(old_rel, corpus)
    served = _served_entry(settings, doc_id)
    old_hash = served.file_hash if served else ""
    old_edition = str(entry.get("edition") or "") if entry is not None else ""
    old_edition = old_edition or (served.edition or _day(served.indexed_at) if served else "")
    if entry is None:  # a file without manifest entry: give it one, with what the index knew
        entry = _new_entry(doc_id, old_rel, Description(title=_title_of(settings, doc_id) or doc_id))
        data["documents"].append(entry)
    if old_path.suffix.lower() == staged.suffix:
        new_rel = old_rel
    else:
        parent = PurePosixPath(old_rel).parent
        name = _free_name(corpus / parent, PurePosixPath(old_rel).stem, staged.suffix, set())
        new_rel = (parent / name).as_posix()
    entry["file"] = new_rel
    entry["edition"] = edition
    try:
        if old_path.exists():
            undo.keep(old_path)  # put back if the new edition cannot be indexed
        os.replace(staged.path, corpus / new_rel)
        undo.added.append(corpus / new_rel)
        _write_manifest(corpus, data)
    except BaseException:
        undo.rollback()
        raise
    return Change("replace", doc_id, new_rel, old_file=old_rel, old_hash=old_hash, new_hash=staged.sha256,
                  title=str(entry.get("title", "")), old_edition=old_edition, undo=undo)


def describe_document(settings: Settings, doc_id: str, described: Description) -> Change:
    corpus = settings.corpus_dir
    described = described.checked(need_title=True)
    undo = Undo.begin(corpus)
    data = _read_manifest(corpus)
    entry, rel = _locate(settings, data, doc_id)
    if entry is None:
        entry = _new_entry(doc_id, rel, described)
        data["documents"].append(entry)
    for key in ("title", "publisher", "url", "edition"):
        entry[key] = getattr(described, key) or ("non précisé" if key == "publisher" else "")
    _write_manifest(corpus, data)
    return Change("describe", doc_id, rel, title=described.title, undo=undo)


def remove_document(settings: Settings, doc_id: str) -> Change:
    corpus = settings.corpus_dir
    undo = Undo.begin(corpus)
    data = _read_manifest(corpus)
    entry, rel = _locate(settings, data, doc_id)
    path = _safe_rel(rel, corpus)
    served = _served_file(settings, doc_id)
    title = str(entry.get("title", "")) if entry is not None else _title_of(settings, doc_id)
    if entry is not None:
        data["documents"].remove(entry)
        if data["documents"]:
            _write_manifest(corpus, data)
        elif not data.get("publications") and not data.get("themes"):
            (corpus / MANIFEST).unlink()  # it described only this document: files without entry need none
        else:
            raise CorpusEditError("Le dernier document du manifeste ne peut pas être retiré.")
    if path.exists():
        try:
            undo.keep(path)
        except BaseException:
            undo.rollback()
            raise
    return Change("remove", doc_id, rel, old_file=rel, old_hash=served[1] if served else "", title=title,
                  undo=undo)


def _title_of(settings: Settings, doc_id: str) -> str:
    generation = shared_state.current_generation(settings)
    if generation is None:
        return ""
    return next((e.title for e in store.read_catalog(generation).documents.values() if e.doc_id == doc_id), "")


def known_document(settings: Settings, doc_id: str) -> bool:
    """Whether ``doc_id`` names a document of the manifest or of the served index."""
    try:
        data = _read_manifest(settings.corpus_dir)
    except Exception:
        data = {"documents": []}
    return _entry(data, doc_id) is not None or _served_file(settings, doc_id) is not None
