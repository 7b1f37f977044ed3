"""A generation's archive (server deployment) unpacks safely on every Python 3.11, filters or not."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from assistant.pgstore import DatabaseError, pack, unpack


def _generation(folder: Path) -> Path:
    folder.mkdir()
    (folder / "catalog.json").write_text('{"documents": []}', encoding="utf-8")
    (folder / "lexical").mkdir()
    (folder / "lexical" / "index.json").write_text("{}", encoding="utf-8")
    return folder


@pytest.mark.parametrize("filters", [True, False], ids=["with-filters", "python-3.11.2"])
def test_a_packed_generation_unpacks_whole(tmp_path: Path, filters: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not filters:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)  # Debian 12's Python 3.11.2 has none
    archive = pack(_generation(tmp_path / "gen"))
    unpack(archive, tmp_path / "out")
    assert (tmp_path / "out" / "catalog.json").read_text(encoding="utf-8") == '{"documents": []}'
    assert (tmp_path / "out" / "lexical" / "index.json").is_file()


@pytest.mark.parametrize("filters", [True, False], ids=["with-filters", "python-3.11.2"])
def test_an_archive_escaping_its_folder_is_refused(tmp_path: Path, filters: bool,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    if not filters:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = b"pwned"
        info = tarfile.TarInfo("../evade.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    (tmp_path / "out").mkdir()
    with pytest.raises((DatabaseError, tarfile.TarError)):
        unpack(buffer.getvalue(), tmp_path / "out")
    assert not (tmp_path / "evade.txt").exists()
