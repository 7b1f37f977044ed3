"""``Assistant(settings).answer(question, history) -> Answer`` — the one entry point (``stream`` for the app).

The path of one question:
  1. validate it (empty, no letter, too long → :class:`QuestionError` in French; control characters dropped);
  2. rewrite a follow-up into a standalone question (LLM, or carried key terms);
  3. retrieve passages (:mod:`assistant.retrieve`); below the relevance floor → refuse;
  4. extractive answer (always computed: it is the default and the fallback);
  5. in ``llm`` mode, generate with the numbered passages and keep only the
     sentences the verifier accepts, streaming each as soon as it is checked.

The app, ``python -m assistant`` and the evaluation runner all call this.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from assistant.embeddings import NamedEmbeddings, embedder_from_settings
from assistant.extractive import REFUSAL, build_extractive, question_parts, refusal
from assistant.followup import recent_history, rewrite_without_llm
from assistant.limits import QuestionError, validate_question
from assistant.llm import LLMBusyError, LLMError
from assistant.retrieve import Filters, Retriever
from assistant.schema import Answer, Citation, DroppedSentence, Passage
from assistant.sentences import split_sentences
from assistant.settings import AnswerMode, Settings

Message = Mapping[str, str]

FALLBACK_NOTICE = (
    "Aucune phrase de la réponse générée n'a pu être vérifiée dans les sources : "
    "voici les extraits des documents."
)
LLM_UNAVAILABLE = "Le modèle de langage n'est pas disponible : voici les extraits des documents."
LLM_NOT_CONFIGURED = "Le mode LLM n'est pas configuré sur ce serveur : voici les extraits des documents."


class Assistant:
    """Loads the embedder, the index and (lazily) the chat model once; answers many questions."""

    def __init__(
        self,
        settings: Settings,
        *,
        embedder: NamedEmbeddings | None = None,
        chat_model: Any = None,
    ) -> None:
        self.settings = settings
        self.embedder = embedder or embedder_from_settings(settings)
        self.retriever = Retriever(settings, self.embedder)
        self._chat_model = chat_model
        self._chat_lock = threading.Lock()

    # -- pieces ----------------------------------------------------------------------------

    def validate(self, question: str) -> str:
        return validate_question(question, self.settings.max_question_chars)

    @property
    def llm_available(self) -> bool:
        return self._chat_model is not None or self.settings.llm_configured

    def chat_model(self) -> Any:
        with self._chat_lock:
            if self._chat_model is None:
                from assistant.llm import build_chat_model

                self._chat_model = build_chat_model(self.settings)
            return self._chat_model

    def standalone(self, question: str, history: Sequence[Message], mode: AnswerMode) -> str:
        """The follow-up made standalone from the last ``max_history_turns`` turns, each message cut."""
        # Only the recent window is read, whatever the client sent: its cost does not grow with the history.
        history = recent_history(history, self.settings.max_history_turns, self.settings.max_history_chars)
        if not history:
            return question
        if mode == "llm" and self.llm_available:
            try:
                from assistant.llm import rewrite_question

                return rewrite_question(question, list(history), self.chat_model())
            except Exception:  # the heuristic below still gives retrieval a chance
                pass
        return rewrite_without_llm(question, history, max_turns=self.settings.max_history_turns,
                                   max_chars=self.settings.max_history_chars)

    # -- the whole path --------------------------------------------------------------------

    def stream(
        self,
        question: str,
        history: Sequence[Message] = (),
        *,
        mode: AnswerMode | None = None,
        plain_language: bool | None = None,
        filters: Filters | None = None,
    ) -> Iterator[str | Answer]:
        """Text pieces as soon as they are final, then the complete :class:`Answer`."""
        s = self.settings
        mode = mode or s.answer_mode
        plain = s.plain_language if plain_language is None else plain_language
        started = time.perf_counter()
        timings: dict[str, float] = {}
        question = self.validate(question)

        t = time.perf_counter()
        standalone = self.standalone(question, history, mode)
        timings["rewrite"] = time.perf_counter() - t

        t = time.perf_counter()
        # Deeper than the k sources: on designed brochures the line with the fact is often in a lower passage.
        result = self.retriever.search(standalone, k=max(s.k, s.quote_depth), filters=filters)
        passages = result.passages
        parts = question_parts(standalone)
        if len(parts) > 1:
            # Each part may be answered by another document: search for each and keep the best passages too.
            seen = {p.id for p in passages}
            for part in parts:
                extra = self.retriever.search(part, k=3, filters=filters)
                if extra.generation != result.generation:
                    continue  # a new generation was published meanwhile: one answer never mixes two
                for p in extra.passages:
                    if p.id not in seen:
                        seen.add(p.id)
                        passages.append(p)
        passages = self.retriever.with_page_neighbours(passages, s.quote_page_neighbours,
                                                       generation=result.generation)
        timings["retrieve"] = time.perf_counter() - t

        signals = {"best_similarity": result.best_similarity, "unknown_share": result.unknown_share}
        short = ""

        def finish(answer: Answer) -> Answer:
            answer.timings = timings | {"total": time.perf_counter() - started}
            answer.signals = signals
            answer.short_answer = short
            answer.generation = result.generation
            if result.notice and result.notice not in answer.notice:  # e.g. the reranking service failed
                answer.notice = f"{answer.notice} {result.notice}".strip()
            return answer

        t = time.perf_counter()
        if result.below_floor:
            text = refusal(passages)
            timings["first_text"] = time.perf_counter() - started
            yield text
            timings["answer"] = time.perf_counter() - t
            yield finish(Answer(question=question, standalone_question=standalone, mode=mode, text=text, abstained=True,
                                passages=passages))
            return

        extracts, citations, selection = build_extractive(
            standalone, passages, self.embedder, self.retriever.calibration, max_quotes=s.max_quotes,
            plain_language=plain, query_vector=result.query_vector or None, term_weights=result.term_weights,
            boilerplate=result.boilerplate,
        )
        signals["coverage"] = selection.coverage
        signals["top_score"] = max((r.score for r in selection.ranked), default=0.0)
        if selection.short is not None:
            signals["short_confidence"] = selection.short.confidence
        abstained = not citations
        short = selection.short.text if selection.short is not None and not abstained else ""
        if mode == "extractive" or abstained:
            timings["first_text"] = time.perf_counter() - started
            yield extracts
            timings["answer"] = time.perf_counter() - t
            yield finish(Answer(question=question, standalone_question=standalone, mode=mode, text=extracts,
                                abstained=abstained, citations=citations, passages=passages, extracts=extracts))
            return

        if not self.llm_available:
            timings["first_text"] = time.perf_counter() - started
            yield extracts
            timings["answer"] = time.perf_counter() - t
            yield finish(Answer(question=question, standalone_question=standalone, mode="extractive", text=extracts,
                                abstained=False, citations=citations, passages=passages,
                                notice=LLM_NOT_CONFIGURED, extracts=extracts))
            return

        kept: list[str] = []
        llm_citations: list[Citation] = []
        dropped: list[DroppedSentence] = []
        notice = ""
        try:
            for sentence, sentence_citations, sentence_dropped in self._generate_verified(standalone, passages, plain):
                dropped.extend(sentence_dropped)
                if sentence:
                    if not kept:
                        timings["first_text"] = time.perf_counter() - started
                    kept.append(sentence)
                    llm_citations.extend(sentence_citations)
                    yield sentence + " "
        except LLMError as exc:
            notice = str(exc) if isinstance(exc, LLMBusyError) else LLM_UNAVAILABLE
        timings["answer"] = time.perf_counter() - t
        if not kept:
            timings.setdefault("first_text", time.perf_counter() - started)
            yield extracts
            yield finish(Answer(question=question, standalone_question=standalone, mode="llm", text=extracts,
                                abstained=False, citations=citations, passages=passages,
                                dropped_sentences=dropped, notice=notice or FALLBACK_NOTICE, extracts=extracts))
            return
        yield finish(Answer(question=question, standalone_question=standalone, mode="llm", text=" ".join(kept),
                            abstained=False, citations=_unique(llm_citations), passages=passages,
                            dropped_sentences=dropped, notice=notice, extracts=extracts))

    def _generate_verified(
        self, question: str, passages: Sequence[Passage], plain: bool
    ) -> Iterator[tuple[str, list[Citation], list[DroppedSentence]]]:
        """Stream the model's answer and verify each sentence as soon as it is complete."""
        from assistant.llm import build_messages, stream_text
        from assistant.verify import verify_answer

        messages = build_messages(question, passages, plain_language=plain, max_sentences=self.settings.max_quotes + 2)
        buffer = ""
        for piece in stream_text(self.chat_model(), messages):
            buffer += piece
            sentences = split_sentences(buffer)
            # The last sentence may still be growing; everything before it is final.
            while len(sentences) > 1:
                done = sentences.pop(0)
                buffer = buffer[buffer.index(done) + len(done):]
                verified = verify_answer(done, passages)
                yield verified.text, list(verified.citations), list(verified.dropped)
        if buffer.strip():
            verified = verify_answer(buffer.strip(), passages)
            yield verified.text, list(verified.citations), list(verified.dropped)

    def answer(self, question: str, history: Sequence[Message] = (), **kwargs: Any) -> Answer:
        final: Answer | None = None
        for item in self.stream(question, history, **kwargs):
            if isinstance(item, Answer):
                final = item
        assert final is not None
        return final


def _unique(citations: Sequence[Citation]) -> list[Citation]:
    seen: set[tuple[int, str]] = set()
    out = []
    for c in citations:
        if (c.n, c.quote) not in seen:
            seen.add((c.n, c.quote))
            out.append(c)
    return out


__all__ = ["REFUSAL", "Answer", "Assistant", "QuestionError"]
