"""The corpus manifest (``corpus/sources.yaml``): which file is which document, and the originals to fetch.

Every problem found is reported at once, in French, through :class:`ManifestError`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from assistant.errors import AssistantError

DOCUMENT_FIELDS = ("id", "file", "title", "publisher", "url", "edition", "licence", "themes", "covers")
PUBLICATION_FIELDS = ("id", "title", "publisher", "url", "file")
# Fields that may be "" (the facts do not always give an edition or a canonical address).
OPTIONAL_TEXT = {"url", "edition"}
TOP_LEVEL_KEYS = {"documents", "publications", "themes"}

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class ManifestError(AssistantError, ValueError):
    """The manifest cannot be used; ``problems`` lists every problem found, in French."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class DocumentEntry:
    """One indexed file of the corpus and the original resource it summarises."""

    id: str
    file: str  # relative to the corpus folder, POSIX separators
    title: str
    publisher: str
    url: str
    edition: str
    licence: str
    themes: tuple[str, ...]
    covers: tuple[str, ...]


@dataclass(frozen=True)
class PublicationEntry:
    """A real publication to download with ``python -m ingest fetch``."""

    id: str
    title: str
    publisher: str
    url: str
    file: str  # plain file name inside the originals folder


@dataclass(frozen=True)
class Manifest:
    documents: tuple[DocumentEntry, ...]
    publications: tuple[PublicationEntry, ...] = ()
    themes: Mapping[str, str] = field(default_factory=dict)

    def by_id(self, doc_id: str) -> DocumentEntry | None:
        return next((d for d in self.documents if d.id == doc_id), None)

    def by_file(self, file: str) -> DocumentEntry | None:
        return next((d for d in self.documents if d.file == file), None)


def load_manifest(path: Path) -> Manifest:
    """Read and validate a manifest file; raise :class:`ManifestError` (French) when it is unusable."""
    name = path.name
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError([f"{name} : fichier introuvable ({path})"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError([f"{name} : lecture impossible ({exc})"]) from None
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" à la ligne {mark.line + 1}" if mark is not None else ""
        raise ManifestError([f"{name} : YAML invalide{where}"]) from None
    return parse_manifest(data, name)


def parse_manifest(data: Any, name: str = "sources.yaml") -> Manifest:
    """Validate already-parsed YAML data (see :func:`load_manifest`)."""
    if not isinstance(data, dict):
        raise ManifestError([f"{name} : le fichier doit contenir une table avec la clé « documents »"])
    problems: list[str] = []
    unknown = sorted(set(data) - TOP_LEVEL_KEYS)
    if unknown:
        problems.append(f"{name} : clé(s) inconnue(s) au premier niveau : {', '.join(map(str, unknown))}")

    themes: dict[str, str] = {}
    raw_themes = data.get("themes") or {}
    if not isinstance(raw_themes, dict):
        problems.append(f"{name} : « themes » doit associer chaque identifiant de thème à son libellé")
    else:
        themes = {str(k): str(v) for k, v in raw_themes.items()}

    raw_docs = data.get("documents")
    if not isinstance(raw_docs, list) or not raw_docs:
        problems.append(f"{name} : la liste « documents » est absente ou vide")
        raw_docs = []
    documents = _parse_entries(raw_docs, DOCUMENT_FIELDS, "document", name, problems)
    raw_pubs = data.get("publications") or []
    if not isinstance(raw_pubs, list):
        problems.append(f"{name} : « publications » doit être une liste")
        raw_pubs = []
    publications = _parse_entries(raw_pubs, PUBLICATION_FIELDS, "publication", name, problems)

    docs = [_document(d, themes, problems) for d in documents]
    pubs = [_publication(p, problems) for p in publications]
    _no_duplicate_ids(docs, name, problems)
    _no_duplicates([d.file for d in docs], "fichier de document", name, problems)
    _no_duplicates([p.id for p in pubs], "identifiant de publication", name, problems)
    _no_duplicates([p.file for p in pubs], "fichier de publication", name, problems)
    if problems:
        raise ManifestError(problems)
    return Manifest(tuple(docs), tuple(pubs), themes)


def _parse_entries(
    raw: list[Any], fields: tuple[str, ...], kind: str, name: str, problems: list[str]
) -> list[tuple[str, dict[str, Any]]]:
    """(label for messages, entry) for each well-formed entry; problems are appended."""
    entries = []
    for n, entry in enumerate(raw, 1):
        if not isinstance(entry, dict):
            problems.append(f"{name}, {kind} n° {n} : chaque entrée doit être une table de champs")
            continue
        label = f"{name}, {kind} n° {n}" + (f" ({entry['id']})" if entry.get("id") else "")
        missing = [f for f in fields if f not in entry]
        if missing:
            problems.append(f"{label} : champ(s) manquant(s) : {', '.join(missing)}")
        unknown = sorted(set(map(str, entry)) - set(fields))
        if unknown:
            problems.append(f"{label} : champ(s) inconnu(s) : {', '.join(unknown)}")
        if not missing:
            entries.append((label, entry))
    return entries


def _text(entry: dict[str, Any], key: str, label: str, problems: list[str]) -> str:
    value = entry.get(key)
    if value is None:
        value = ""
    if isinstance(value, (list, dict)):
        problems.append(f"{label} : le champ « {key} » doit être un texte")
        return ""
    text = str(value).strip()  # unquoted YAML years or dates are accepted as text
    if not text and key not in OPTIONAL_TEXT:
        problems.append(f"{label} : le champ « {key} » est vide")
    return text


def _slugs(entry: dict[str, Any], key: str, label: str, problems: list[str]) -> tuple[str, ...]:
    value = entry.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"{label} : le champ « {key} » doit être une liste d'identifiants")
        return ()
    bad = [v for v in value if not _SLUG.match(v)]
    if bad:
        problems.append(f"{label} : identifiant(s) invalide(s) dans « {key} » : {', '.join(bad)} "
                        "(minuscules sans accents, chiffres et tirets)")
    return tuple(value)


def _check_url(url: str, label: str, problems: list[str], schemes: tuple[str, ...]) -> None:
    if url and not url.startswith(schemes):
        problems.append(f"{label} : l'adresse « {url} » doit commencer par {' ou '.join(schemes)}")


def _document(parsed: tuple[str, dict[str, Any]], themes: dict[str, str], problems: list[str]) -> DocumentEntry:
    label, entry = parsed

    def text(key: str) -> str:
        return _text(entry, key, label, problems)

    doc = DocumentEntry(
        id=text("id"),
        file=text("file"),
        title=text("title"),
        publisher=text("publisher"),
        url=text("url"),
        edition=text("edition"),
        licence=text("licence"),
        themes=_slugs(entry, "themes", label, problems),
        covers=_slugs(entry, "covers", label, problems),
    )
    if doc.id and not _SLUG.match(doc.id):
        problems.append(f"{label} : identifiant « {doc.id} » invalide (minuscules sans accents, chiffres et tirets)")
    if doc.file:
        rel = PurePosixPath(doc.file)
        if rel.is_absolute() or ".." in rel.parts or "\\" in doc.file:
            problems.append(f"{label} : le fichier « {doc.file} » doit être un chemin relatif au dossier du corpus")
        elif any(part.startswith(("_", ".")) for part in rel.parts):
            problems.append(f"{label} : le fichier « {doc.file} » est dans un dossier ignoré par l'indexation "
                            "(nom commençant par « _ » ou « . »)")
        else:
            from ingest.load import SUFFIX_FORMATS

            if rel.suffix.lower() not in SUFFIX_FORMATS:
                problems.append(f"{label} : format non pris en charge pour « {doc.file} » "
                                f"(formats acceptés : {', '.join(sorted(SUFFIX_FORMATS))})")
    _check_url(doc.url, label, problems, ("https://",))
    if themes:
        unknown = [t for t in doc.themes if t not in themes]
        if unknown:
            problems.append(f"{label} : thème(s) hors du vocabulaire « themes » : {', '.join(unknown)}")
    return doc


def _publication(parsed: tuple[str, dict[str, Any]], problems: list[str]) -> PublicationEntry:
    label, entry = parsed

    def text(key: str) -> str:
        return _text(entry, key, label, problems)

    pub = PublicationEntry(
        id=text("id"), title=text("title"), publisher=text("publisher"), url=text("url"), file=text("file")
    )
    if pub.id and not _SLUG.match(pub.id):
        problems.append(f"{label} : identifiant « {pub.id} » invalide (minuscules sans accents, chiffres et tirets)")
    if pub.file and (pub.file != PurePosixPath(pub.file).name or pub.file.startswith(".") or "\\" in pub.file):
        problems.append(f"{label} : « {pub.file} » doit être un simple nom de fichier (sans dossier)")
    # Plain http is allowed here so that tests can serve publications from a loopback server.
    _check_url(pub.url, label, problems, ("https://", "http://"))
    return pub


def _no_duplicate_ids(docs: list[DocumentEntry], name: str, problems: list[str]) -> None:
    # Named by both files: the author must know which two entries to reconcile.
    first: dict[str, str] = {}
    for doc in docs:
        if doc.id and doc.id in first:
            problems.append(f"{name} : identifiant de document en double : « {doc.id} » "
                            f"(fichiers « {first[doc.id]} » et « {doc.file} »)")
        first.setdefault(doc.id, doc.file)


def _no_duplicates(values: list[str], what: str, name: str, problems: list[str]) -> None:
    seen: set[str] = set()
    for value in values:
        if value and value in seen:
            problems.append(f"{name} : {what} en double : « {value} »")
        seen.add(value)
