"""The background ingestion queue of the « Gérer les documents » area: one job at a time, in order.

A job applies one change to the corpus (:mod:`ingest.corpus_edit`), then runs the ingestion job
(:func:`ingest.index.run_ingest`), which builds a new generation and switches the served index to it
atomically. Its progress (the ingestion's progress bars, read as they are written) and its French
summary are kept for the page to show. Every outcome is written to the audit trail.

A job that fails — the uploaded file cannot be split into passages, the ingestion lock is held, the
data folder is full — takes its change back (:class:`ingest.corpus_edit.Undo`): the corpus folder and
its manifest are as they were before the action, and the served index never changed. Each job starts
by sweeping the staging folder of the uploads that a killed process left behind.

Nothing starts at import or construction: the worker thread starts with the first job.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from assistant import shared_state
from assistant.audit import ACTION_LABELS, AuditAction, AuditLog, now
from assistant.embeddings import NamedEmbeddings
from assistant.errors import AssistantError
from assistant.settings import Settings
from ingest.corpus_edit import Change, sweep_staging
from ingest.index import IngestReport, run_ingest

log = logging.getLogger("assistant.jobs")

GENERIC_FAILURE = "Échec : l'opération a été interrompue par une erreur inattendue."
NOTHING_CHANGED = "Rien n'a été modifié : le corpus et l'index en service sont restés tels qu'avant la demande."
PUBLISHED_ANYWAY = "La modification est pourtant en service : le nouvel index a été publié avant l'erreur."
NOT_RESTORED = ("Attention : le corpus n'a pas pu être remis dans son état d'avant la demande ; prévenez "
                "l'administrateur (détails dans le journal du serveur).")
# The file a change must see indexed, or the change is taken back (a removal or a new description needs none).
_MUST_INDEX = ("add", "replace")
MAX_FINISHED = 50  # finished jobs kept for the page
_BAR = re.compile(r"^(?P<desc>[^:]+):\s*(?P<pct>\d+)%.*?(?P<n>\d+)/(?P<total>\d+)")
_PHASES = {"Fichiers": "Lecture des fichiers", "Passages": "Calcul des vecteurs des passages"}


@dataclass
class Job:
    id: str
    user: str
    action: str
    doc_id: str
    label: str  # what the manager asked, in French
    state: str = "en attente"  # en attente, en cours, terminé, échec
    progress: str = ""
    percent: int = 0
    summary: str = ""
    created_at: str = field(default_factory=now)
    finished_at: str = ""
    result_doc_id: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class _ProgressSink:
    """A text stream for the ingestion's tqdm bars: keeps the last bar line as a French progress line."""

    def __init__(self, job: Job) -> None:
        self.job = job

    def write(self, text: str) -> int:
        for line in re.split(r"[\r\n]+", text):
            match = _BAR.match(line.strip())
            if match:
                phase = _PHASES.get(match["desc"].strip(), match["desc"].strip())
                self.job.progress = f"{phase} : {match['n']} sur {match['total']}"
                self.job.percent = int(match["pct"])
        return len(text)

    def flush(self) -> None:
        pass


def summary_of(change: Change, report: IngestReport) -> str:
    """One French paragraph: what changed, what the new index holds, and any file that failed."""
    done = {
        "add": f"Document ajouté : « {change.title} » ({change.file}).",
        "replace": f"Nouvelle édition en service pour « {change.title} » ({change.file}).",
        "describe": f"Description mise à jour : « {change.title} ».",
        "remove": f"Document retiré : « {change.title or change.doc_id} ».",
    }[change.action]
    seconds = f"{report.seconds:.1f}".replace(".", ",")
    parts = [done, f"Index en service : {report.passages} passages, génération {report.generation or '—'} "
                   f"(indexation en {seconds} s)."]
    mine = [f for f in report.failed if f["path"] == change.file]
    if mine:
        parts.append(f"Attention : le fichier n'a pas pu être indexé ({mine[0]['reason']}).")
    others = [f for f in report.failed if f["path"] != change.file]
    if others:
        parts.append(f"{len(others)} autre(s) fichier(s) du corpus en échec (voir l'onglet Sources).")
    return " ".join(parts)


class JobQueue:
    """Runs corpus changes and their ingestion one at a time, in the order they were asked."""

    def __init__(self, settings: Settings, embedder: Callable[[], NamedEmbeddings], audit: AuditLog | None) -> None:
        self.settings = settings
        self._embedder = embedder
        self.audit = audit
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending: deque[tuple[Job, Callable[[], Change], Callable[[], None]]] = deque()
        self._jobs: list[Job] = []
        self._worker: threading.Thread | None = None
        self._running = False

    def submit(self, user: str, action: AuditAction, doc_id: str, label: str, apply: Callable[[], Change],
               cancel: Callable[[], None] = lambda: None, detail: dict[str, Any] | None = None) -> Job:
        """Queue ``apply`` (the corpus change); ``cancel`` cleans up if it never runs."""
        job = Job(uuid.uuid4().hex[:12], user, action, doc_id, label)
        if self.audit is not None:
            self.audit.record(user, action, doc_id, outcome="requested", detail=(detail or {}) | {"job": job.id})
        with self._lock:
            self._jobs.append(job)
            self._pending.append((job, apply, cancel))
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._work, name="corpus-jobs", daemon=True)
                self._worker.start()
        return job

    def jobs(self) -> list[dict[str, Any]]:
        """Most recent first."""
        with self._lock:
            return [j.to_json() for j in reversed(self._jobs)]

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            return next((j.to_json() for j in self._jobs if j.id == job_id), None)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no job is queued or running (tests, shutdown)."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._pending and not self._running, timeout)

    def _work(self) -> None:
        while True:
            with self._lock:
                if not self._pending:
                    self._running = False
                    self._idle.notify_all()
                    self._worker = None
                    return
                job, apply, cancel = self._pending.popleft()
                self._running = True
            self._run(job, apply, cancel)
            with self._lock:
                finished = [j for j in self._jobs if j.finished_at]
                for old in finished[:-MAX_FINISHED]:
                    self._jobs.remove(old)

    def _run(self, job: Job, apply: Callable[[], Change], cancel: Callable[[], None]) -> None:
        job.state = "en cours"
        job.progress = "Modification du corpus…"
        try:
            sweep_staging(self.settings)
        except OSError:
            log.exception("staging folder not swept")
        change: Change | None = None
        outcome, detail = "failed", dict[str, Any](job=job.id)
        served = _served_generation(self.settings)
        try:
            change = apply()
            job.result_doc_id = change.doc_id
            job.progress = "Indexation…"
            report = run_ingest(self.settings, embedder=self._embedder(), progress=True,
                                log=_ProgressSink(job),  # type: ignore[arg-type]
                                required=change.file if change.action in _MUST_INDEX else None)
            if change.undo is not None:
                change.undo.commit()
            job.summary = summary_of(change, report)
            job.state, job.percent, job.progress = "terminé", 100, "Terminé."
            outcome = "done"
            detail |= {"generation": report.generation, "passages": report.passages,
                       "old_hash": change.old_hash, "new_hash": change.new_hash, "old_file": change.old_file,
                       "old_edition": change.old_edition, "title": change.title}
        except Exception as exc:
            if isinstance(exc, AssistantError):
                reason = str(exc)
                job.summary = f"Échec : {reason.rstrip('.')}."
            else:
                log.exception("corpus job %s failed", job.id)
                reason, job.summary = "erreur inattendue", GENERIC_FAILURE
            job.state = "échec"
            restored, sentence = self._take_back(change, served)
            job.summary += f" {sentence}"
            detail |= {"error": reason, "corpus_restored": restored}
        finally:
            if change is None:
                cancel()
            job.finished_at = now()
            if self.audit is not None:
                try:
                    self.audit.record(job.user, job.action, change.doc_id if change else job.doc_id,  # type: ignore[arg-type]
                                      change.file if change else "", outcome=outcome, detail=detail)
                except Exception:
                    log.exception("audit trail not written for job %s", job.id)
        log.info("Gestion des documents : %s (%s) par %s : %s", ACTION_LABELS.get(job.action, job.action),
                 job.doc_id or job.result_doc_id, job.user, job.state)

    def _take_back(self, change: Change | None, served: str) -> tuple[bool, str]:
        """Undo a failed job's change to the corpus: whether the corpus is as before, and the sentence saying so."""
        if change is None or change.undo is None:
            return True, NOTHING_CHANGED  # never made: each edit function takes back its own partial work
        now_served = _served_generation(self.settings)
        if _UNKNOWN not in (served, now_served) and now_served != served:
            # The new index was published before the failure: the corpus must keep matching it.
            change.undo.commit()
            return False, PUBLISHED_ANYWAY
        try:
            change.undo.rollback()
        except OSError:
            log.exception("corpus change of %s (%s) not taken back", change.doc_id, change.action)
            return False, NOT_RESTORED
        return True, NOTHING_CHANGED


_UNKNOWN = "?"


def _served_generation(settings: Settings) -> str:
    """The served generation's name ("" for none; ``_UNKNOWN`` when its pointer cannot be read)."""
    try:
        generation = shared_state.current_generation(settings)
    except Exception:  # database down: then no job could publish either
        return _UNKNOWN
    return generation.name if generation is not None else ""
