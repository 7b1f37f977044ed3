"""Document ids: one per corpus file, unique across the corpus, the same on every run.

A file listed in ``sources.yaml`` keeps its manifest ``id``. Any other file gets an id derived from its
corpus-relative path (:func:`slug`: lower case, accents transliterated, any other character run → « - »).
Two files whose derived ids collide (``Projet commun.md`` / ``projet-commun.md``) both get a short hash of
their path appended: the suffix depends only on each path and on which paths collide, never on the order
the file system lists them in, so two runs over the same corpus give the same ids. A manifest id that
equals another file's derived id is refused: the manifest is the author's word, and silently renaming
either document would make citations point at something else than the author meant.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping

from assistant.errors import AssistantError

# Letters that NFKD does not decompose into a base letter plus accents.
_SPECIAL_LETTERS = str.maketrans({"œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae", "ß": "ss", "ø": "o", "Ø": "o",
                                  "đ": "d", "Đ": "d", "ł": "l", "Ł": "l", "ı": "i"})
_HASH_LENGTHS = (8, 12, 16, 64)


class DocIdError(AssistantError, ValueError):
    """Two corpus files would share one document id; the message (French) names both files."""


def slug(rel: str) -> str:
    """The id derived from a corpus-relative path: ``Été/Guide_2024.pdf`` → ``ete-guide-2024``."""
    stem = rel.rsplit(".", 1)[0].translate(_SPECIAL_LETTERS)
    ascii_stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode("ascii").lower()
    return re.sub(r"[^a-z0-9]+", "-", ascii_stem).strip("-") or "document"


def _suffixed(rel: str, length: int) -> str:
    return f"{slug(rel)}-{hashlib.sha256(rel.encode('utf-8')).hexdigest()[:length]}"


def assign_doc_ids(rels: Iterable[str], manifest_ids: Mapping[str, str]) -> dict[str, str]:
    """corpus-relative path → document id, for every path of ``rels``.

    ``manifest_ids`` maps the files listed in ``sources.yaml`` to their ``id``. Raises :class:`DocIdError`
    when two manifest entries share an id or a manifest id equals another file's derived id.
    """
    paths = sorted(set(rels))
    ids: dict[str, str] = {}
    owner: dict[str, str] = {}  # manifest id → its file
    problems: list[str] = []
    for rel in paths:
        if rel in manifest_ids:
            doc_id = manifest_ids[rel]
            if doc_id in owner:
                problems.append(f"identifiant de document « {doc_id} » donné à deux fichiers : "
                                f"« {owner[doc_id]} » et « {rel} »")
            owner.setdefault(doc_id, rel)
            ids[rel] = doc_id
    derived: dict[str, list[str]] = {}
    for rel in paths:
        if rel not in manifest_ids:
            derived.setdefault(slug(rel), []).append(rel)
    for doc_id, group in derived.items():
        if doc_id in owner:
            problems.append(f"l'identifiant « {doc_id} » du manifeste (fichier « {owner[doc_id]} ») est aussi "
                            f"celui que l'indexation donne à « {group[0]} » : renommez ce fichier ou "
                            "donnez-lui une entrée dans sources.yaml")
    if problems:
        raise DocIdError("Identifiants de documents en conflit :\n" + "\n".join(problems))
    taken = set(owner) | {doc_id for doc_id, group in derived.items() if len(group) == 1}
    for doc_id, group in derived.items():
        if len(group) == 1:
            ids[group[0]] = doc_id
            continue
        for rel in group:
            # The shortest suffix that is free; lengths are tried in a fixed order, so the result only
            # depends on the set of paths.
            candidates = [_suffixed(rel, n) for n in _HASH_LENGTHS]
            chosen = next((c for c in candidates if c not in taken), candidates[-1])
            taken.add(chosen)
            ids[rel] = chosen
    return ids
