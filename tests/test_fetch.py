"""Downloading the original publications (ingest/fetch.py) and reading the manifest (ingest/manifest.py).

Every download goes to a loopback HTTP server started by the test.
"""

from __future__ import annotations

import hashlib
import io
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from ingest.fetch import CHECKSUMS_FILE, fetch_publications, run_fetch
from ingest.manifest import ManifestError, load_manifest

PDF_BODY = b"%PDF-1.4\n" + "Kit « co-construction territoriale » — données d'essai\n".encode() * 40
HTML_BODY = b"<html><body><h1>Observatoire des territoires</h1></body></html>"


class _Handler(BaseHTTPRequestHandler):
    hits: ClassVar[Counter[str]] = Counter()

    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        pass

    def _send(self, body: bytes) -> None:
        try:
            self.wfile.write(body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up first (size cap, timeout)
            pass

    def do_GET(self) -> None:
        _Handler.hits[self.path] += 1
        if self.path in ("/kit.pdf", "/page.html"):
            body = PDF_BODY if self.path == "/kit.pdf" else HTML_BODY
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self._send(body)
        elif self.path == "/unsized.pdf":  # no Content-Length: the body ends when the connection closes
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self._send(PDF_BODY)
            self.close_connection = True
        elif self.path == "/truncated.pdf":  # announces more than it sends, then hangs up
            self.send_response(200)
            self.send_header("Content-Length", str(len(PDF_BODY) * 10))
            self.end_headers()
            self._send(PDF_BODY)
            self.close_connection = True
        elif self.path == "/slow.pdf":
            time.sleep(1.0)
            try:
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
            except (BrokenPipeError, ConnectionResetError):
                return
            self._send(b"ok")
        else:
            self.send_error(404)


@pytest.fixture
def server() -> Iterator[str]:
    _Handler.hits.clear()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_manifest(corpus: Path, publications: list[tuple[str, str, str]]) -> Path:
    """A valid manifest with one document and the given (id, url, file) publications."""
    corpus.mkdir(parents=True, exist_ok=True)
    lines = [
        "documents:",
        "  - id: fiche",
        "    file: fiche.md",
        '    title: "Fiche d\'essai"',
        '    publisher: "Projet"',
        '    url: ""',
        '    edition: ""',
        '    licence: "CC BY 4.0"',
        "    themes: [partenariats]",
        "    covers: [fiche]",
        "publications:",
    ]
    for pub_id, url, file in publications:
        lines += [f"  - id: {pub_id}", f'    title: "Publication {pub_id}"', '    publisher: "Éditeur"',
                  f'    url: "{url}"', f"    file: {file}"]
    path = corpus / "sources.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.iterdir() if p.name.endswith(".part"))


# --------------------------------------------------------------------------- downloads


def test_download_writes_file_and_records_checksum(tmp_path: Path, server: str) -> None:
    manifest = write_manifest(tmp_path / "corpus", [("kit", f"{server}/kit.pdf", "kit.pdf"),
                                                    ("page", f"{server}/page.html", "page.html")])
    dest = tmp_path / "originals"
    report = fetch_publications(manifest, dest, timeout=5)
    assert [r.status for r in report.results] == ["downloaded", "downloaded"]
    assert report.exit_code == 0
    assert (dest / "kit.pdf").read_bytes() == PDF_BODY
    assert (dest / "page.html").read_bytes() == HTML_BODY
    sums = json.loads((dest / CHECKSUMS_FILE).read_text(encoding="utf-8"))
    assert sums["kit.pdf"]["sha256"] == hashlib.sha256(PDF_BODY).hexdigest()
    assert sums["kit.pdf"]["url"] == f"{server}/kit.pdf"
    assert sums["page.html"]["bytes"] == len(HTML_BODY)
    assert leftovers(dest) == []


def test_download_without_content_length(tmp_path: Path, server: str) -> None:
    manifest = write_manifest(tmp_path / "corpus", [("kit", f"{server}/unsized.pdf", "kit.pdf")])
    report = fetch_publications(manifest, tmp_path / "originals", timeout=5)
    assert report.results[0].status == "downloaded"
    assert (tmp_path / "originals" / "kit.pdf").read_bytes() == PDF_BODY


def test_second_run_skips_present_file_without_downloading(tmp_path: Path, server: str) -> None:
    manifest = write_manifest(tmp_path / "corpus", [("kit", f"{server}/kit.pdf", "kit.pdf")])
    dest = tmp_path / "originals"
    fetch_publications(manifest, dest, timeout=5)
    assert _Handler.hits["/kit.pdf"] == 1
    out = io.StringIO()
    assert run_fetch(tmp_path / "corpus", dest, out=out) == 0
    assert _Handler.hits["/kit.pdf"] == 1, "a file present with the recorded checksum is not downloaded again"
    assert "Déjà présent et intact : kit.pdf" in out.getvalue()
    assert "0 téléchargée(s), 1 déjà présente(s), 0 en échec" in out.getvalue()


def test_altered_file_is_downloaded_again(tmp_path: Path, server: str) -> None:
    manifest = write_manifest(tmp_path / "corpus", [("kit", f"{server}/kit.pdf", "kit.pdf")])
    dest = tmp_path / "originals"
    fetch_publications(manifest, dest, timeout=5)
    (dest / "kit.pdf").write_bytes(b"abime")
    report = fetch_publications(manifest, dest, timeout=5)
    assert report.results[0].status == "downloaded"
    assert (dest / "kit.pdf").read_bytes() == PDF_BODY
    assert _Handler.hits["/kit.pdf"] == 2


def test_default_destination_is_beside_the_corpus(tmp_path: Path, server: str) -> None:
    write_manifest(tmp_path / "corpus", [("kit", f"{server}/kit.pdf", "kit.pdf")])
    assert run_fetch(tmp_path / "corpus", out=io.StringIO()) == 0
    assert (tmp_path / "originals" / "kit.pdf").read_bytes() == PDF_BODY


def test_404_gives_french_line_and_exit_1(tmp_path: Path, server: str) -> None:
    write_manifest(tmp_path / "corpus", [("absent", f"{server}/absent.pdf", "absent.pdf"),
                                         ("kit", f"{server}/kit.pdf", "kit.pdf")])
    dest = tmp_path / "originals"
    out = io.StringIO()
    assert run_fetch(tmp_path / "corpus", dest, out=out) == 1
    lines = out.getvalue().splitlines()
    assert f"Échec du téléchargement de {server}/absent.pdf : erreur HTTP 404 (page introuvable)" in lines
    assert any(line.startswith("Téléchargé : kit.pdf") for line in lines), "one failure does not stop the others"
    assert "1 téléchargée(s), 0 déjà présente(s), 1 en échec" in out.getvalue()
    assert not (dest / "absent.pdf").exists()
    assert "absent.pdf" not in json.loads((dest / CHECKSUMS_FILE).read_text(encoding="utf-8"))


def test_unreachable_port_is_a_failure(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_free_port()}/kit.pdf"
    write_manifest(tmp_path / "corpus", [("kit", url, "kit.pdf")])
    out = io.StringIO()
    assert run_fetch(tmp_path / "corpus", tmp_path / "originals", out=out) == 1
    assert f"Échec du téléchargement de {url} : connexion refusée" in out.getvalue()
    assert not (tmp_path / "originals" / "kit.pdf").exists()


def test_truncated_download_leaves_nothing_half_written(tmp_path: Path, server: str) -> None:
    manifest = write_manifest(tmp_path / "corpus", [("kit", f"{server}/truncated.pdf", "kit.pdf")])
    dest = tmp_path / "originals"
    dest.mkdir()
    (dest / "kit.pdf").write_bytes(b"ancienne version")  # an older copy must survive a failed update
    report = fetch_publications(manifest, dest, timeout=5)
    result = report.results[0]
    assert result.status == "failed"
    assert result.reason.startswith("téléchargement incomplet")
    assert (dest / "kit.pdf").read_bytes() == b"ancienne version"
    assert leftovers(dest) == []
    assert not (dest / CHECKSUMS_FILE).exists()


@pytest.mark.parametrize("path", ["/kit.pdf", "/unsized.pdf"])
def test_size_cap(tmp_path: Path, server: str, path: str) -> None:
    manifest = write_manifest(tmp_path / "corpus", [("kit", f"{server}{path}", "kit.pdf")])
    dest = tmp_path / "originals"
    report = fetch_publications(manifest, dest, timeout=5, max_bytes=100)
    assert report.results[0].status == "failed"
    assert "trop volumineux" in report.results[0].reason
    assert not (dest / "kit.pdf").exists()
    assert leftovers(dest) == []


def test_timeout_is_reported(tmp_path: Path, server: str) -> None:
    manifest = write_manifest(tmp_path / "corpus", [("lent", f"{server}/slow.pdf", "lent.pdf")])
    report = fetch_publications(manifest, tmp_path / "originals", timeout=0.3)
    assert report.results[0].status == "failed"
    assert report.results[0].reason == "délai dépassé (0.3 s sans réponse)"


def test_invalid_manifest_exits_2_with_french_message(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "sources.yaml").write_text("documents: [\n", encoding="utf-8")
    out = io.StringIO()
    assert run_fetch(corpus, tmp_path / "originals", out=out) == 2
    assert "Erreur : manifeste du corpus inutilisable" in out.getvalue()
    assert "YAML invalide" in out.getvalue()


def test_manifest_without_publications(tmp_path: Path) -> None:
    write_manifest(tmp_path / "corpus", [])
    out = io.StringIO()
    assert run_fetch(tmp_path / "corpus", tmp_path / "originals", out=out) == 0
    assert "Aucune publication à télécharger" in out.getvalue()


# --------------------------------------------------------------------------- manifest validation


def _doc(**overrides: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "id": "fiche", "file": "fiche.md", "title": "Fiche", "publisher": "Projet", "url": "",
        "edition": "", "licence": "CC BY 4.0", "themes": ["partenariats"], "covers": ["fiche"],
    }
    entry.update(overrides)
    return entry


def _write_yaml(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")  # JSON is valid YAML
    return path


def test_manifest_reads_entries(tmp_path: Path) -> None:
    path = _write_yaml(tmp_path, {
        "themes": {"partenariats": "Partenariats"},
        "documents": [_doc(edition=2019, url="https://exemple.fr/fiche")],
        "publications": [{"id": "p", "title": "P", "publisher": "E", "url": "https://exemple.fr", "file": "p.html"}],
    })
    manifest = load_manifest(path)
    doc = manifest.documents[0]
    assert doc.edition == "2019" and doc.themes == ("partenariats",) and doc.covers == ("fiche",)
    assert manifest.by_file("fiche.md") is doc and manifest.by_id("fiche") is doc
    assert manifest.publications[0].file == "p.html"


def test_manifest_missing_field_is_reported_in_french(tmp_path: Path) -> None:
    entry = _doc()
    del entry["licence"]
    with pytest.raises(ManifestError) as info:
        load_manifest(_write_yaml(tmp_path, {"documents": [entry]}))
    assert "document n° 1 (fiche) : champ(s) manquant(s) : licence" in str(info.value)


def test_manifest_duplicates_and_bad_values_are_all_reported(tmp_path: Path) -> None:
    data = {
        "themes": {"partenariats": "Partenariats"},
        "documents": [
            _doc(),
            _doc(file="autre.md"),  # same id
            _doc(id="autre", title=""),  # same file, empty title
            _doc(id="lien", file="lien.md", url="ftp://exemple.fr"),
            _doc(id="cache", file="_build/source.md"),
            _doc(id="theme", file="theme.md", themes=["inconnu"]),
            _doc(id="format", file="image.png"),
        ],
        "publications": [
            {"id": "p", "title": "P", "publisher": "E", "url": "https://a.fr", "file": "../p.html"},
        ],
    }
    with pytest.raises(ManifestError) as info:
        load_manifest(_write_yaml(tmp_path, data))
    problems = "\n".join(info.value.problems)
    assert "identifiant de document en double : « fiche »" in problems
    assert "fichier de document en double : « fiche.md »" in problems
    assert "le champ « title » est vide" in problems
    assert "doit commencer par https://" in problems
    assert "dossier ignoré par l'indexation" in problems
    assert "hors du vocabulaire « themes » : inconnu" in problems
    assert "format non pris en charge pour « image.png »" in problems
    assert "doit être un simple nom de fichier" in problems
    assert len(info.value.problems) == 8


def test_manifest_missing_file_or_documents(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="fichier introuvable"):
        load_manifest(tmp_path / "absent.yaml")
    with pytest.raises(ManifestError, match="« documents » est absente ou vide"):
        load_manifest(_write_yaml(tmp_path, {"publications": []}))
