"""French BM25: the token pipeline and a saved index over passage ids.

:func:`analyze` is the single pipeline for passages and queries: French
elisions dropped (« l'alliance » → « alliance »), numbers kept whole
(« 2030 », « 1 000 » → « 1000 », « 4,5 »), hyphenated words split and also
glued (« co-construction » → co, construction, coconstruction), accents
folded, French stop words removed, Snowball French stemming.

Folding comes BEFORE stemming although Snowball French was written for
accented words. Measured on PIAF (evals/piaf.py, 3,835 questions, BM25 alone,
hit@1 / MRR@10): stem-then-fold 0.693 / 0.763 with the questions as written
but 0.678 / 0.751 once their accents are dropped (as many people type);
fold-then-stem 0.687 / 0.759 in both cases. An answer that does not depend on
typing « é » is worth the 0.006.

The index is built once (at ingestion), saved as a folder and loaded at query
time: it is never rebuilt while answering.
"""

from __future__ import annotations

import json
import re
import threading
import unicodedata
from collections.abc import Collection, Sequence
from functools import lru_cache
from pathlib import Path

import bm25s
import numpy as np
import Stemmer

from assistant.errors import AssistantError
from assistant.text import strip_accents

# Bump when analyze() changes: an index saved by another pipeline is refused.
ANALYZER_VERSION = 1

# Tuned on PIAF (evals/piaf.py): Lucene BM25 with these parameters.
BM25_METHOD = "lucene"
BM25_K1 = 0.9
BM25_B = 0.5

_META = "lexical.json"

_APOSTROPHES = "'’‘ʼ`´"
_SPACES = "\u0020\u00a0\u202f\u2009\u2007"
_LIGATURES = str.maketrans({"œ": "oe", "æ": "ae"})
# « l'état », « qu'il », « jusqu'au », « aujourd'hui » is handled as one word below.
_ELISION = re.compile(rf"\b(?:[cdjlmnst]|qu|jusqu|lorsqu|puisqu|quoiqu|presqu)[{_APOSTROPHES}](?=\w)")
# « 1 000 », « 12 500 000 » → one number. The first group has 1–3 digits so that
# « en 2015 350 catalyseurs » stays two numbers.
_GROUPED = re.compile(rf"(?<![\d,.])\d{{1,3}}(?:[{_SPACES}]\d{{3}})+(?!\d)")
_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W_]+(?:-[^\W_]+)*")
# A word is cut there before stemming (the longest term of the shipped corpus has 25 letters): a pasted run of
# letters costs what a word costs, and the cache of terms below never holds long strings.
_MAX_WORD_CHARS = 60


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


# French function words and question words (folded). Question words matter:
# every query carries « quel », « comment »… and they say nothing about the topic.
_STOP_WORDS = _word_set(
    """
    a ai aie aient aies ait as au aura aurai auraient aurais aurait auras aurez auriez aurions aurons auront aux
    avaient avais avait avec avez aviez avions avons ayant ayez ayons c ce ceci cela celle celles celui ces cet
    cette ceux d dans de des du elle elles en es est et etaient etais etait etant etiez etions ete etes eu eue
    eues eurent eus eut eux il ils j je l la le les leur leurs lui m ma mais me meme mes moi mon n ne ni nos notre
    nous on ont ou par pas pour qu que quel quelle quelles quels qui quoi s sa se sera serai seraient serais
    serait seras serez seriez serions serons seront ses si soient sois soit sommes son sont soyez soyons suis sur
    t ta te tes toi ton tu un une vos votre vous y dont ete etre fut furent fait faites comment combien pourquoi
    quand lequel laquelle lesquels lesquelles auquel auxquels auxquelles duquel desquels desquelles
    """
)

# PyStemmer's stemmers are not thread-safe and the web app answers several questions at once.
_local = threading.local()


def _stem(word: str) -> str:
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        stemmer = _local.stemmer = Stemmer.Stemmer("french")
    return str(stemmer.stemWord(word))


# How people phrase a request in French, whatever its topic: never a sign that the topic is out of the corpus.
_CONVERSATIONAL_WORDS = """
    voudrais voudrait voudrions voudriez veux veut voulons voulez vouloir souhaite souhaiterais souhaitons
    aimerais aimerait aimerions savoir sais sait connaitre besoin cherche cherchons trouver
    gens personne personnes quelqu'un quelqu quelque chose choses truc trucs exemple exemples
    bonjour merci svp stp please dire dites expliquer explique expliquez parler
    peut peux pouvez pouvons pourrait pourrais pourriez faut falloir doit dois devons devez
    vraiment deja aussi encore bien plutot juste simplement concretement exactement
    ça avoir chez genre koi quoi bref voila ok oui non
    """
# Short forms people type for words the documents spell out: known when the full word is.
_INFORMAL_WORDS = {"asso": "association", "assos": "associations", "stat": "statistique", "stats": "statistiques",
                   "info": "information", "infos": "informations", "appli": "application", "doc": "document",
                   "docs": "documents", "dev": "développement", "eco": "économie", "collec": "collectivité"}


class LexicalIndexError(AssistantError, RuntimeError):
    """A saved lexical index is missing, damaged or built by another analyzer (message in French)."""


@lru_cache(maxsize=200_000)
def _term(word: str) -> str:
    """One lower-case word → its index term; "" for a stop word or a lone letter."""
    if word[0].isdigit():
        return word.replace(",", ".")
    word = strip_accents(word)  # already lower-cased (and NFKC) by analyze: the case is not touched again
    if word in _STOP_WORDS or len(word) < 2:
        return ""
    term = _stem(word)
    # Snowball keeps the plural of « élus », « jeux »: one more step so that « élu » meets « élus ».
    if len(term) > 3 and term[-1] in "sx":
        term = term[:-1]
    return term


def analyze(text: str) -> list[str]:
    """Text → BM25 terms (the same pipeline for passages and queries)."""
    text = unicodedata.normalize("NFKC", text).lower().translate(_LIGATURES)
    text = text.replace("aujourd'hui", "aujourdhui").replace("aujourd’hui", "aujourdhui")
    text = _GROUPED.sub(lambda m: re.sub(r"\D", "", m.group(0)), text)
    text = _ELISION.sub(" ", text)
    terms: list[str] = []
    for match in _TOKEN.finditer(text):
        word = match.group(0)
        if "-" not in word:
            term = _term(word[:_MAX_WORD_CHARS])
            if term:
                terms.append(term)
            continue
        # « co-construction » is also written « coconstruction »: index the parts and the glued word,
        # but not for « a-t-il » or « est-ce » where a part is a function word.
        parts = [_term(p[:_MAX_WORD_CHARS]) for p in word.split("-")]
        terms.extend(t for t in parts if t)
        if all(parts):
            terms.append(_term(word.replace("-", "")[:_MAX_WORD_CHARS]))
    return terms


_CONVERSATIONAL_TERMS = frozenset(t for w in _CONVERSATIONAL_WORDS.split() for t in analyze(w))
_INFORMAL_TERMS = {analyze(short)[0]: analyze(full)[0] for short, full in _INFORMAL_WORDS.items()}


class LexicalIndex:
    """BM25 over passages identified by their ids (built once, saved, loaded)."""

    def __init__(self, ids: Sequence[str], bm25: bm25s.BM25) -> None:
        self.ids: list[str] = list(ids)
        self._bm25 = bm25
        self._position = {pid: i for i, pid in enumerate(self.ids)}

    @classmethod
    def build(
        cls,
        ids: Sequence[str],
        texts: Sequence[str],
        *,
        k1: float = BM25_K1,
        b: float = BM25_B,
        method: str = BM25_METHOD,
    ) -> LexicalIndex:
        """Index ``texts`` under ``ids`` (same length, ids unique)."""
        if len(ids) != len(texts):
            raise ValueError("ids and texts must have the same length")
        if len(set(ids)) != len(ids):
            raise ValueError("passage ids must be unique")
        bm25 = bm25s.BM25(k1=k1, b=b, method=method)
        if ids:
            bm25.index([analyze(t) for t in texts], show_progress=False)
        return cls(ids, bm25)

    def save(self, directory: Path) -> None:
        """Write everything needed by :meth:`load` into ``directory`` (created if needed)."""
        directory.mkdir(parents=True, exist_ok=True)
        if self.ids:
            self._bm25.save(str(directory), show_progress=False)
        meta = {"analyzer_version": ANALYZER_VERSION, "ids": self.ids}
        tmp = directory / (_META + ".tmp")
        tmp.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        tmp.replace(directory / _META)  # the metadata lands last: a half-written folder is not loadable

    @classmethod
    def load(cls, directory: Path) -> LexicalIndex:
        """Load an index written by :meth:`save`."""
        meta_path = directory / _META
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise LexicalIndexError(
                f"Index lexical introuvable dans « {directory} » : relancez l'ingestion du corpus."
            ) from None
        except (OSError, ValueError) as exc:
            raise LexicalIndexError(_unreadable(directory)) from exc
        if meta.get("analyzer_version") != ANALYZER_VERSION:
            raise LexicalIndexError(
                "L'index lexical a été construit avec une autre version de l'analyseur : relancez l'ingestion."
            )
        ids = meta["ids"]
        if not ids:
            return cls([], bm25s.BM25())
        try:
            bm25 = bm25s.BM25.load(str(directory), show_progress=False, verbosity=0)
        except (OSError, ValueError) as exc:
            raise LexicalIndexError(_unreadable(directory)) from exc
        if int(bm25.scores["num_docs"]) != len(ids):
            raise LexicalIndexError(f"Index lexical incohérent dans « {directory} » : relancez l'ingestion.")
        return cls(ids, bm25)

    def __len__(self) -> int:
        return len(self.ids)

    def unknown_share(self, query: str) -> float:
        """Share of the query's terms that occur nowhere in the indexed passages (0 when it has no term).

        Only words that carry the topic count: « je voudrais savoir », « des gens » are how people ask,
        not what they ask about; a verb in « -ent » (« mesurent ») is known when its stem is, and a short
        form (« assos ») when its full word is.
        """
        terms = [t for t in analyze(query) if t not in _CONVERSATIONAL_TERMS]
        if not terms or not self.ids:
            return 0.0
        vocab = self._bm25.vocab_dict

        def known(term: str) -> bool:
            return (term in vocab or (len(term) > 6 and term.endswith("ent") and term[:-3] in vocab)
                    or (term in _INFORMAL_TERMS and _INFORMAL_TERMS[term] in vocab))

        return sum(not known(t) for t in terms) / len(terms)

    def term_weights(self, query: str) -> dict[str, float]:
        """Inverse document frequency of each query term; a term found nowhere weighs the most."""
        n = len(self.ids)
        vocab = self._bm25.vocab_dict
        indptr = np.asarray(self._bm25.scores["indptr"])
        weights: dict[str, float] = {}
        for term in set(analyze(query)):
            tid = vocab.get(term)
            df = int(indptr[tid + 1] - indptr[tid]) if tid is not None and tid + 1 < len(indptr) else 0
            weights[term] = float(np.log(1 + (n + 1) / (df + 0.5)))
        return weights

    def scores(self, query: str) -> np.ndarray | None:
        """BM25 score of every passage (in ``ids`` order); None when no query term is indexed."""
        if not self.ids:
            return None
        vocab = self._bm25.vocab_dict
        token_ids = [vocab[t] for t in analyze(query) if t in vocab]
        if not token_ids:
            return None
        return np.asarray(self._bm25.get_scores_from_ids(token_ids), dtype=np.float32)

    def search(self, query: str, k: int, allowed: Collection[str] | None = None) -> list[tuple[str, float]]:
        """Best ``k`` passages as (id, BM25 score), best first; only ids in ``allowed`` when given.

        Passages sharing no term with the query are never returned.
        """
        if k <= 0:
            return []
        scores = self.scores(query)
        if scores is None:
            return []
        if allowed is not None:
            keep = np.fromiter((i for pid in allowed if (i := self._position.get(pid)) is not None), dtype=np.int64)
            masked = np.zeros_like(scores)
            masked[keep] = scores[keep]
            scores = masked
        candidates = np.flatnonzero(scores > 0)
        if candidates.size > k:
            top = np.argpartition(-scores[candidates], k - 1)[:k]
            candidates = candidates[top]
        # Ties broken by position in the index, so results never depend on the sort's mood.
        order = sorted(candidates.tolist(), key=lambda i: (-float(scores[i]), i))
        return [(self.ids[i], float(scores[i])) for i in order]


def _unreadable(directory: Path) -> str:
    # The library's own text (« Expecting value: line 1… ») is English and tells an operator nothing to do.
    return (f"Index lexical illisible dans « {directory} » : la génération en service est endommagée, relancez "
            "l'indexation complète (python -m ingest --rebuild).")
