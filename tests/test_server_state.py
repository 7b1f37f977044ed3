"""Server deployment: the state replicas share in a real PostgreSQL, vectors on a real `chroma run` (loopback)."""

from __future__ import annotations

import io
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant import pgstore, shared_state
from assistant.pgstore import Database, DatabaseError
from assistant.retrieve import Retriever
from assistant.schema import Answer
from assistant.settings import Settings, SettingsError
from ingest.index import build_generation, plan_ingest, run_ingest
from tests.conftest import test_settings
from tests.servers import chroma_server, create_database, free_port, postgres_server

psycopg = pytest.importorskip("psycopg", reason="psycopg (extra « server ») n'est pas installé")

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def pg_server() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="module")
def chroma_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with chroma_server(tmp_path_factory.mktemp("chroma")) as port:
        yield port


@pytest.fixture
def db_url(pg_server: str) -> str:
    return create_database(pg_server, "t" + uuid.uuid4().hex[:12])


@pytest.fixture
def server_settings(settings: Settings, db_url: str, chroma_port: int) -> Settings:
    # Each test its own database and its own collection names on the shared Chroma server.
    return settings.with_overrides(deployment="server", database_url=db_url, chroma_mode="http",
                                   chroma_port=chroma_port, collection="c" + uuid.uuid4().hex[:8])


def replica(settings: Settings, tmp_path: Path, name: str) -> Settings:
    """The same deployment seen from another host: its own empty local cache."""
    return settings.with_overrides(data_dir=tmp_path / name)


def test_migrations_are_versioned_run_once_and_refuse_a_newer_schema(db_url: str) -> None:
    first, second = Database(db_url), Database(db_url)
    assert first.migrate() == pgstore.SCHEMA_VERSION
    assert second.migrate() == pgstore.SCHEMA_VERSION  # a second replica finds the schema there
    with psycopg.connect(db_url) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
        assert versions == [v for v, _ in pgstore.MIGRATIONS]
        conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (pgstore.SCHEMA_VERSION + 1,))
    with pytest.raises(DatabaseError, match="plus récent"):
        Database(db_url).migrate()


def test_unreachable_database_is_one_french_message_after_bounded_retries(caplog: pytest.LogCaptureFixture) -> None:
    url = f"postgresql://assistant:motdepasse-secret@127.0.0.1:{free_port()}/assistant"
    db = Database(url, connect_timeout_s=1, retries=3, retry_pause_s=0.01)
    with pytest.raises(DatabaseError) as err:
        db.current_generation_name()
    message = str(err.value)
    assert "injoignable" in message and "127.0.0.1" in message and "ASSISTANT_DATABASE_URL" in message
    assert "motdepasse-secret" not in message
    assert sum("tentative" in r.getMessage() for r in caplog.records) == 3


def test_server_setting_needs_a_database_and_the_chroma_server(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="ASSISTANT_DATABASE_URL"):
        Settings.from_env({"ASSISTANT_DEPLOYMENT": "server", "ASSISTANT_CHROMA_MODE": "http"})
    with pytest.raises(SettingsError, match="ASSISTANT_CHROMA_MODE=http"):
        Settings.from_env({"ASSISTANT_DEPLOYMENT": "server", "ASSISTANT_DATABASE_URL": "postgresql://x/y"})
    s = Settings.from_env({"ASSISTANT_DEPLOYMENT": "server", "ASSISTANT_DATABASE_URL": "postgresql://u:pw@h/db",
                           "ASSISTANT_CHROMA_MODE": "http"})
    assert s.server_deployment and "database_url" not in s.public_dict() and "pw" not in repr(s)


def test_feedback_written_on_one_replica_is_read_on_another(server_settings: Settings, tmp_path: Path) -> None:
    one = shared_state.feedback_store(server_settings)
    other = shared_state.feedback_store(replica(server_settings, tmp_path, "other"))
    answer = Answer(question="Quelles missions ?", standalone_question="Quelles missions ?", text="Quatre missions.",
                    mode="extractive", abstained=False)
    answer_id = one.log_answer(answer, {"k": 5, "where": Path("/x")}, plain_language=True)
    feedback_id = other.add_feedback(answer_id, "up", ["clair", "clair"], " très utile ")
    assert feedback_id > 0
    [record] = one.list_feedback(answer_id)
    assert (record.rating, record.tags, record.comment) == ("up", ["clair"], "très utile")
    stored = other.get_answer(answer_id)
    assert stored is not None and stored.plain_language and stored.settings == {"k": 5, "where": "/x"}
    assert [a.id for a in other.list_answers()] == [answer_id]
    with pytest.raises(pgstore.AssistantError, match="introuvable"):
        other.add_feedback("inconnue", "down")
    out = io.StringIO()
    assert one.export(out, "csv") == 1 and "très utile" in out.getvalue()


def test_replicas_read_the_published_generation_and_never_a_half_built_one(
        server_settings: Settings, fake_embedder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first = run_ingest(server_settings, embedder=fake_embedder, progress=False)
    assert first.exit_code == 0 and first.passages > 5

    # A replica on another host: nothing local, the generation comes from the database.
    host_b = replica(server_settings, tmp_path, "host-b")
    retriever = Retriever(host_b, fake_embedder)
    hit = retriever.search("missions des catalyseurs territoriaux").passages[0]
    assert hit.source_path == "guide-alliances.pdf"
    assert retriever.catalog().generation == first.generation
    assert shared_state.read_last_run(host_b)["report"]["generation"] == first.generation

    # A re-index under way (vectors embedded, not yet published): a replica starting now gets the last
    # complete generation.
    (server_settings.corpus_dir / "mooc.md").write_text(
        "# MOOC\n\nUne formation gratuite sur les alliances locales.\n", encoding="utf-8")
    plan = plan_ingest(server_settings, {}, fake_embedder, progress=False)
    built = build_generation(server_settings, plan, fake_embedder, progress=False)
    assert built is not None
    starting = Retriever(replica(server_settings, tmp_path, "host-c"), fake_embedder)
    assert starting.load() == first.generation
    assert shared_state.current_generation(host_b).name == first.generation  # type: ignore[union-attr]
    from assistant import store

    store.discard_generation(server_settings, built.generation)

    second = run_ingest(server_settings, embedder=fake_embedder, progress=False)
    assert second.indexed == ["mooc.md"]
    result = retriever.search("formation gratuite sur les alliances")
    assert result.generation == second.generation != first.generation
    assert "formation gratuite" in result.passages[0].text
    assert starting.load() == second.generation

    # The database keeps the served generation and the one before (a search may still be on it), no more.
    third_file = server_settings.corpus_dir / "mooc.md"
    third_file.write_text("# MOOC\n\nUne formation payante sur les alliances locales.\n", encoding="utf-8")
    third = run_ingest(server_settings, embedder=fake_embedder, progress=False)
    with psycopg.connect(server_settings.database_url) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM generations")}
    assert names == {second.generation, third.generation}


def test_one_ingestion_at_a_time_across_hosts(server_settings: Settings, fake_embedder,  # type: ignore[no-untyped-def]
                                              tmp_path: Path) -> None:
    from ingest.index import IngestConfigError

    other_host = replica(server_settings, tmp_path, "ingest-b")
    with shared_state.ingest_lock(server_settings) as got:
        assert got
        with pytest.raises(IngestConfigError, match="déjà en cours"):
            run_ingest(other_host, embedder=fake_embedder, progress=False)
    assert run_ingest(other_host, embedder=fake_embedder, progress=False).exit_code == 0


def test_a_lost_local_cache_is_fetched_again(server_settings: Settings, fake_embedder,  # type: ignore[no-untyped-def]
                                             tmp_path: Path) -> None:
    report = run_ingest(server_settings, embedder=fake_embedder, progress=False)
    host = replica(server_settings, tmp_path, "host-d")
    gen = shared_state.current_generation(host)
    assert gen is not None and (gen.path / "catalog.json").exists()
    shutil.rmtree(host.data_dir)
    again = shared_state.current_generation(host)
    assert again is not None and again.name == report.generation and (again.path / "bm25").is_dir()


def test_local_deployment_needs_no_database(tmp_path: Path, tiny_corpus: Path, fake_embedder) -> None:  # type: ignore[no-untyped-def]
    local = test_settings(tiny_corpus, tmp_path / "data")
    assert not local.server_deployment
    run_ingest(local, embedder=fake_embedder, progress=False)
    assert shared_state.current_generation(local) is not None
    assert type(shared_state.feedback_store(local)).__name__ == "FeedbackStore"


def test_app_start_with_the_database_down_is_one_french_line(settings: Settings, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    import app as webapp

    env = {"ASSISTANT_DEPLOYMENT": "server", "ASSISTANT_CHROMA_MODE": "http", "ASSISTANT_EMBEDDER": "hash:256",
           "ASSISTANT_DATABASE_URL": f"postgresql://assistant:motdepasse@127.0.0.1:{free_port()}/assistant",
           "ASSISTANT_DATABASE_RETRIES": "2", "ASSISTANT_DATABASE_CONNECT_TIMEOUT_S": "1",
           "ASSISTANT_CORPUS_DIR": str(settings.corpus_dir), "ASSISTANT_PORT": str(free_port())}
    _only(monkeypatch, env)
    # 4, as for an unreachable Chroma server and as `python -m ingest` does: a supervisor may retry later.
    assert webapp.main(["--db", str(settings.data_dir)]) == 4
    err = capsys.readouterr().err
    assert "Erreur : La base de données PostgreSQL (127.0.0.1:" in err and "Traceback" not in err
    assert "motdepasse" not in err


def test_replica_refuses_to_start_before_a_first_publication(server_settings: Settings,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    import app as webapp

    s = server_settings
    env = {"ASSISTANT_DEPLOYMENT": "server", "ASSISTANT_CHROMA_MODE": "http", "ASSISTANT_EMBEDDER": "hash:256",
           "ASSISTANT_DATABASE_URL": s.database_url, "ASSISTANT_CHROMA_PORT": str(s.chroma_port),
           "ASSISTANT_CORPUS_DIR": str(s.corpus_dir), "ASSISTANT_PORT": str(free_port())}
    _only(monkeypatch, env)
    assert webapp.main(["--db", str(s.data_dir)]) == 2
    assert "Aucun index n'est publié" in capsys.readouterr().err
    with psycopg.connect(s.database_url) as conn:  # the start migrated the database all the same
        assert conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0] == pgstore.SCHEMA_VERSION


def _only(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """These ASSISTANT_* variables and no others, for code that builds its settings from the environment."""
    import os

    for key in [k for k in os.environ if k.startswith("ASSISTANT_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)


def test_a_database_outage_keeps_the_loaded_generation_answering(
        server_settings: Settings, fake_embedder, tmp_path: Path,  # type: ignore[no-untyped-def]
        monkeypatch: pytest.MonkeyPatch) -> None:
    report = run_ingest(server_settings, embedder=fake_embedder, progress=False)
    host = replica(server_settings, tmp_path, "host-e")
    retriever = Retriever(host, fake_embedder)
    assert retriever.load() == report.generation

    def down(self: Database) -> str | None:
        raise DatabaseError(self.unreachable_message())

    monkeypatch.setattr(Database, "current_generation_name", down)
    result = retriever.search("missions des catalyseurs territoriaux")
    assert result.generation == report.generation and result.passages
    # A replica that never reached the database has nothing to serve: the French error.
    with pytest.raises(DatabaseError, match="injoignable"):
        Retriever(replica(server_settings, tmp_path, "host-f"), fake_embedder).load()
