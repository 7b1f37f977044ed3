"""Server deployment: the audit trail and the retention purge in a real PostgreSQL (loopback), seen by every replica.

The SQLite and PostgreSQL schemas are compared here too, so that the two engines cannot drift apart.
"""

from __future__ import annotations

import io
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from assistant import pgstore, shared_state
from assistant.cli import main as assistant_main
from assistant.feedback import FeedbackError, FeedbackStore, Purge, apply_retention
from assistant.pgfeedback import PgAuditLog, PgFeedbackStore
from assistant.pgstore import Database
from assistant.settings import Settings
from tests.retention_cases import DATES, NOW, assert_a_failed_export_deletes_nothing, backdate_sqlite, fill
from tests.servers import create_database, free_port, postgres_server
from tests.test_feedback import _answer

psycopg = pytest.importorskip("psycopg", reason="psycopg (extra « server ») n'est pas installé")

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def pg_server() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture
def db_url(pg_server: str) -> str:
    return create_database(pg_server, "t" + uuid.uuid4().hex[:12])


@pytest.fixture
def pg_settings(settings: Settings, db_url: str) -> Settings:
    # Nothing here reaches the Chroma server: the port is only there for the settings to be complete.
    return settings.with_overrides(deployment="server", database_url=db_url, chroma_mode="http",
                                   chroma_port=free_port())


def replica(settings: Settings, tmp_path: Path, name: str) -> Settings:
    """The same deployment seen from another host: its own local folder."""
    return settings.with_overrides(data_dir=tmp_path / name)


def _server_env(monkeypatch: pytest.MonkeyPatch, settings: Settings, **extra: str) -> None:
    """The ASSISTANT_* variables of this deployment and no others, for the command line (it reads them)."""
    import os

    for key in [k for k in os.environ if k.startswith("ASSISTANT_")]:
        monkeypatch.delenv(key)
    env = {"ASSISTANT_DEPLOYMENT": "server", "ASSISTANT_DATABASE_URL": settings.database_url,
           "ASSISTANT_CHROMA_MODE": "http", "ASSISTANT_CHROMA_PORT": str(settings.chroma_port)} | extra
    for key, value in env.items():
        monkeypatch.setenv(key, value)


# -- the audit trail ---------------------------------------------------------------------------------------


def test_an_action_recorded_on_one_replica_is_seen_from_the_other(pg_settings: Settings, tmp_path: Path) -> None:
    one = shared_state.audit_log(replica(pg_settings, tmp_path, "one"))
    other = shared_state.audit_log(replica(pg_settings, tmp_path, "other"))
    assert isinstance(one, PgAuditLog) and isinstance(other, PgAuditLog)
    requested = one.record("gestion", "replace", "guide", outcome="requested", detail={"job": "j1"})
    done = one.record("gestion", "replace", "guide", "guide.pdf", outcome="done",
                      detail={"old_hash": "abc", "where": Path("/srv/corpus")})
    assert done > requested > 0
    [newest, oldest] = other.entries(doc_id="guide")
    assert (oldest.outcome, oldest.detail) == ("requested", {"job": "j1"})
    assert (newest.id, newest.user, newest.action, newest.file) == (done, "gestion", "replace", "guide.pdf")
    assert newest.detail == {"old_hash": "abc", "where": "/srv/corpus"}  # a path becomes text, as in SQLite
    assert other.entries(doc_id="autre") == []
    assert other.replacements() == {"guide": [(newest.at, "abc")]}  # the «édition remplacée» notes
    # Nothing went to a local file on either host.
    assert not (tmp_path / "one").exists() and not (tmp_path / "other").exists()


def test_audit_export_from_postgresql_on_the_command_line(pg_settings: Settings, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    log = shared_state.audit_log(pg_settings)
    log.record("gestion", "add", "", outcome="requested", detail={"client_name": "=HYPERLINK(1)"})
    log.record("=2+2", "remove", "guide", "guide.pdf", outcome="done")
    _server_env(monkeypatch, pg_settings)
    out = tmp_path / "journal.jsonl"
    assert assistant_main(["audit", "export", "--format", "jsonl", "--out", str(out),
                           "--db", str(tmp_path / "cache")]) == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(r["user"], r["action"], r["doc_id"], r["outcome"]) for r in rows] == [
        ("gestion", "add", "", "requested"), ("=2+2", "remove", "guide", "done")]
    assert rows[0]["detail"] == {"client_name": "=HYPERLINK(1)"}
    assert "2 ligne(s) du journal exportée(s)." in capsys.readouterr().err
    assert assistant_main(["audit", "export", "--db", str(tmp_path / "cache")]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "id,at,user,action,doc_id,file,outcome,detail"
    assert ",'=2+2,remove,guide,guide.pdf,done," in printed[2]  # a spreadsheet formula stays text


def test_migration_2_adds_the_audit_table_to_a_database_of_schema_1(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:  # a database left by the previous release
        conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
                     "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        conn.execute(pgstore.MIGRATIONS[0][1].encode())
        conn.execute("INSERT INTO schema_migrations (version) VALUES (1)")
    assert Database(db_url).migrate() == pgstore.SCHEMA_VERSION >= 2
    log = PgAuditLog(Database(db_url))
    log.record("gestion", "describe", "guide")
    assert [e.action for e in log.entries()] == ["describe"]


def _sqlite_columns(path: Path, table: str) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]


def _pg_columns(url: str, table: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT column_name FROM information_schema.columns WHERE "
                                           "table_name = %s ORDER BY ordinal_position", (table,))]


def test_sqlite_and_postgresql_schemas_have_the_same_columns(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite"
    FeedbackStore(path).log_answer(_answer(), {})  # creates the file's tables
    Database(db_url).migrate()
    for table in ("answers", "feedback", "audit"):
        sqlite_columns, pg_columns = _sqlite_columns(path, table), _pg_columns(db_url, table)
        assert sqlite_columns, table
        # PostgreSQL's answers add ``seq``, the insertion order that SQLite's rowid gives.
        extra = ["seq"] if table == "answers" else []
        assert pg_columns == extra + sqlite_columns, table


# -- the retention purge -----------------------------------------------------------------------------------


def _backdate_pg(url: str, answer_id: str, when: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE answers SET created_at = %s WHERE id = %s", (when, answer_id))


def _without_ids(records: list[dict[str, object]]) -> list[dict[str, object]]:
    """An archive's records without what differs between two stores: the ids the stores drew."""
    out = []
    for record in records:
        feedback = [{k: v for k, v in f.items() if k not in ("id", "created_at")}
                    for f in record["feedback"]]  # type: ignore[attr-defined]
        out.append({k: v for k, v in record.items() if k not in ("id", "feedback")} | {"feedback": feedback})
    return out


def test_postgresql_purge_exports_then_deletes_like_sqlite(pg_settings: Settings, db_url: str,
                                                           tmp_path: Path) -> None:
    store = shared_state.feedback_store(pg_settings)
    assert isinstance(store, PgFeedbackStore)
    ids = fill(store, lambda i, w: _backdate_pg(db_url, i, w))
    purge = apply_retention(store, 30, tmp_path / "archives", now=NOW)
    assert (purge.answers, purge.feedback) == (2, 2) and purge.archive is not None
    assert purge.archive.parent == tmp_path / "archives" and purge.archive.name.startswith("journal-avant-2026-05-31")
    exported = [json.loads(line) for line in purge.archive.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in exported] == ids[:2]
    assert [f["comment"] for f in exported[0]["feedback"]] == ["ancien avis", "avis récent sur une ancienne réponse"]
    assert exported[1]["feedback"] == []
    # What is left, seen from another replica.
    other = shared_state.feedback_store(replica(pg_settings, tmp_path, "other"))
    assert [a.id for a in other.list_answers()] == [ids[2]]
    assert [f.answer_id for f in other.list_feedback()] == [ids[2]]

    # The same log in SQLite gives the same archive, line for line (the same contract on both engines).
    sqlite_store = FeedbackStore(tmp_path / "feedback.sqlite")
    fill(sqlite_store, lambda i, w: backdate_sqlite(sqlite_store.path, i, w))
    sqlite_purge = apply_retention(sqlite_store, 30, tmp_path / "archives-sqlite", now=NOW)
    assert sqlite_purge.archive is not None
    from_sqlite = [json.loads(line) for line in sqlite_purge.archive.read_text(encoding="utf-8").splitlines()]
    assert _without_ids(from_sqlite) == _without_ids(exported)


def test_postgresql_purge_with_nothing_to_delete_writes_no_file(pg_settings: Settings, db_url: str,
                                                                tmp_path: Path) -> None:
    store = shared_state.feedback_store(pg_settings)
    assert store.purge_before(NOW, tmp_path / "archives") == Purge(0, 0, None)  # an empty log
    answer_id = store.log_answer(_answer(), {})
    _backdate_pg(db_url, answer_id, DATES[2])
    assert apply_retention(store, 30, tmp_path / "archives", now=NOW) == Purge(0, 0, None)
    assert not (tmp_path / "archives").exists()
    assert [a.id for a in store.list_answers()] == [answer_id]


def test_a_failed_export_deletes_nothing_in_postgresql(pg_settings: Settings, db_url: str, tmp_path: Path) -> None:
    store = shared_state.feedback_store(pg_settings)
    ids = fill(store, lambda i, w: _backdate_pg(db_url, i, w))
    assert_a_failed_export_deletes_nothing(store, ids, tmp_path)


_REFUSE = "CREATE FUNCTION refuse_purge() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {} END $$"
_REFUSALS = {
    # The delete itself fails.
    "delete": (_REFUSE.format("RAISE EXCEPTION 'suppression refusée';"),
               "CREATE TRIGGER refuse_purge BEFORE DELETE ON answers FOR EACH ROW EXECUTE FUNCTION refuse_purge()"),
    # The delete goes through, the COMMIT fails: the server answers with an error and rolls back.
    "commit": (_REFUSE.format("RAISE EXCEPTION 'suppression refusée';"),
               "CREATE CONSTRAINT TRIGGER refuse_purge AFTER DELETE ON answers DEFERRABLE INITIALLY DEFERRED "
               "FOR EACH ROW EXECUTE FUNCTION refuse_purge()"),
}


@pytest.mark.parametrize("refused", sorted(_REFUSALS))
def test_a_failed_delete_leaves_no_export_and_the_retry_exports_each_answer_once_in_postgresql(
        pg_settings: Settings, db_url: str, tmp_path: Path, refused: str) -> None:
    store = shared_state.feedback_store(pg_settings)
    ids = fill(store, lambda i, w: _backdate_pg(db_url, i, w))
    archives = tmp_path / "archives"
    with psycopg.connect(db_url) as conn:
        for statement in _REFUSALS[refused]:
            conn.execute(statement.encode())
    with pytest.raises(FeedbackError, match="rien n'a été supprimé et l'export préalable a été retiré"):
        apply_retention(store, 30, archives, now=NOW)
    assert list(archives.iterdir()) == []
    assert sorted(a.id for a in store.list_answers()) == sorted(ids)
    assert len(store.list_feedback()) == 3
    with psycopg.connect(db_url) as conn:
        conn.execute("DROP TRIGGER refuse_purge ON answers")
    purge = apply_retention(store, 30, archives, now=NOW + timedelta(days=1))  # the next day's purge
    assert purge.archive is not None and list(archives.iterdir()) == [purge.archive]
    exported = [json.loads(line)["id"] for line in purge.archive.read_text(encoding="utf-8").splitlines()]
    assert exported == ids[:2]
    assert [a.id for a in store.list_answers()] == [ids[2]]


def test_a_commit_of_unknown_outcome_keeps_the_export(pg_settings: Settings, db_url: str, tmp_path: Path) -> None:
    """The connection lost during the COMMIT: the rows may be gone, and the export is then their only copy."""
    store = shared_state.feedback_store(pg_settings)
    fill(store, lambda i, w: _backdate_pg(db_url, i, w))
    with psycopg.connect(db_url) as conn:
        conn.execute(_REFUSE.format("PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NULL;").encode())
        conn.execute(_REFUSALS["commit"][1].encode())
    with pytest.raises(FeedbackError, match=r"n'a peut-être pas abouti.*est gardé"):
        apply_retention(store, 30, tmp_path / "archives", now=NOW)
    [kept] = (tmp_path / "archives").iterdir()
    assert len(kept.read_text(encoding="utf-8").splitlines()) == 2


def test_replicas_purging_at_once_export_and_delete_once(pg_settings: Settings, db_url: str,
                                                         tmp_path: Path) -> None:
    ids = fill(shared_state.feedback_store(pg_settings), lambda i, w: _backdate_pg(db_url, i, w))
    stores = [PgFeedbackStore(Database(db_url)) for _ in range(4)]  # four replicas, each its own connections
    start = threading.Barrier(len(stores))
    results: list[Purge | Exception] = []

    def purge(store: FeedbackStore, n: int) -> None:
        start.wait()
        try:
            results.append(apply_retention(store, 30, tmp_path / f"archives-{n}", now=NOW))
        except Exception as exc:
            results.append(exc)

    threads = [threading.Thread(target=purge, args=(s, n)) for n, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not [r for r in results if isinstance(r, Exception)], results
    done = [r for r in results if isinstance(r, Purge) and r.archive is not None]
    assert len(done) == 1 and (done[0].answers, done[0].feedback) == (2, 2)
    assert sum(1 for r in results if r == Purge(0, 0, None)) == len(stores) - 1
    assert len(list(tmp_path.glob("archives-*/*.jsonl"))) == 1
    assert [a.id for a in stores[0].list_answers()] == [ids[2]]


def test_a_purge_gives_up_in_french_when_another_holds_the_lock_too_long(pg_settings: Settings, db_url: str,
                                                                         tmp_path: Path) -> None:
    store = shared_state.feedback_store(pg_settings)
    assert isinstance(store, PgFeedbackStore)
    ids = fill(store, lambda i, w: _backdate_pg(db_url, i, w))
    store.purge_wait_s = 0.5
    with psycopg.connect(db_url, autocommit=True) as other:  # another replica's purge, stuck
        other.execute("SELECT pg_advisory_lock(%s)", (pgstore.RETENTION_LOCK,))
        with pytest.raises(FeedbackError, match="une autre instance le purge déjà"):
            apply_retention(store, 30, tmp_path / "archives", now=NOW)
    assert not (tmp_path / "archives").exists() and len(store.list_answers()) == len(ids)
    assert apply_retention(store, 30, tmp_path / "archives", now=NOW).answers == 2  # lock released: it goes


def test_feedback_on_an_answer_purged_meanwhile_is_refused_in_french(pg_settings: Settings, db_url: str) -> None:
    store = shared_state.feedback_store(pg_settings)
    answer_id = store.log_answer(_answer(), {})
    errors: list[Exception] = []
    with psycopg.connect(db_url) as purge, psycopg.connect(db_url, autocommit=True) as watch:
        # ``purge`` holds the answer as PgFeedbackStore.purge_before does; ``watch`` sees the server's activity
        # afresh at each query (inside a transaction, pg_stat_activity would stay as first read).
        purge.execute("SELECT id FROM answers WHERE id = %s FOR UPDATE", (answer_id,))

        def give() -> None:
            try:
                store.add_feedback(answer_id, "up")
            except Exception as exc:
                errors.append(exc)

        thread = threading.Thread(target=give)
        thread.start()
        # The feedback's insert waits on the purge's row lock (its existence check went through).
        while not watch.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                "AND query LIKE 'INSERT INTO feedback%%'").fetchone()[0]:
            assert thread.is_alive()
            time.sleep(0.05)
        purge.execute("DELETE FROM answers WHERE id = %s", (answer_id,))
    thread.join()
    assert len(errors) == 1 and isinstance(errors[0], FeedbackError) and "introuvable" in str(errors[0])


def test_purge_command_and_app_start_purge_in_a_server_deployment(pg_settings: Settings, db_url: str,
                                                                  tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    import app as webapp

    store = shared_state.feedback_store(pg_settings)
    ids = fill(store, lambda i, w: _backdate_pg(db_url, i, w))
    _backdate_pg(db_url, ids[2], datetime.now(UTC).isoformat(timespec="seconds"))  # the command's clock is real
    _server_env(monkeypatch, pg_settings, ASSISTANT_RETENTION_EXPORT_DIR=str(tmp_path / "exports"))
    assert assistant_main(["feedback", "purge", "--days", "30", "--db", str(tmp_path / "cache")]) == 0
    err = capsys.readouterr().err
    assert "2 réponse(s) et 2 avis" in err and str(tmp_path / "exports") in err
    assert [a.id for a in store.list_answers()] == [ids[2]]

    # At start, the app purges its log (every replica does; the database serializes them).
    _backdate_pg(db_url, ids[2], DATES[0])
    thread = webapp.start_retention(pg_settings.with_overrides(retention_days=30,
                                                               retention_export_dir=tmp_path / "at-start"),
                                    store)
    assert thread is not None
    while store.list_answers():  # the first purge runs at once, then the thread sleeps for a day
        assert thread.is_alive()
        time.sleep(0.05)
    [archive] = (tmp_path / "at-start").iterdir()
    assert json.loads(archive.read_text(encoding="utf-8"))["id"] == ids[2]


def test_export_of_a_purge_is_readable_with_the_feedback_export_columns(pg_settings: Settings, db_url: str,
                                                                         tmp_path: Path) -> None:
    # The feedback export (CSV) of what the purge kept: the purged answers' feedback is gone from it too.
    store = shared_state.feedback_store(pg_settings)
    fill(store, lambda i, w: _backdate_pg(db_url, i, w))
    apply_retention(store, 30, tmp_path / "archives", now=NOW)
    out = io.StringIO()
    assert store.export(out, "csv") == 1 and "Question 2 ?" in out.getvalue() and "ancien avis" not in out.getvalue()
