"""Follow-up questions → standalone questions, without a language model.

«Qui l'organise ?» after «Y a-t-il une formation en ligne gratuite sur les partenariats ?»
becomes «Qui organise la formation en ligne gratuite sur les partenariats ?». Retrieval and
the ranking of quoted sentences both read the standalone question, so it must name its
subject. With an LLM configured, :func:`assistant.llm.rewrite_question` is used instead.

The rules, in order (deterministic, word lists and a small tokeniser, no model):

1. Is it a follow-up? It is when it holds an anaphor that nothing in the question itself
   explains: a clitic object pronoun before a verb («l'organise», «la trouver», «les
   finance», «en parle», «s'y inscrire»), a subject pronoun («elle dit quoi», «propose-t-il»;
   not «il faut», «y a-t-il», nor «Le RAMEAU, il…»), «ça/cela», «c'est» without a noun,
   a demonstrative («ce kit», «celle-ci»), «son/sa/ses», or a nominal ellipsis («le
   dernier»); or when it is a fragment without a verb («et pour les associations ?»,
   «et en 2020 ?», «depuis quand ?», «avec quels partenaires ?»). A question that names its
   own subject and has none of these is returned unchanged.
2. The previous subject: the noun phrases of the previous standalone question (replayed turn
   by turn, so a chain of follow-ups keeps its subject; «merci» turns are skipped), scored
   by size and named words, +1 when the previous answer repeats its noun, complements
   after «à/par/avec…» and generic nouns («la commune») ranked lower; then the title of the
   first document the previous answer cites, then the noun phrases of its first sentences.
   The pronoun's gender and number pick among them («les» → a plural, «elle» → not «le kit»).
3. The rewrite: fragments are merged with the previous question (a noun phrase replaces
   the one of the same kind, a year replaces the year, a complement is added at the end,
   «depuis quand» is put in front); a pronoun is replaced by the noun phrase where French
   allows it («Qui organise X ?», «Où trouver X ?», «X dit quoi ?», «Combien coûte X ?»,
   «Que propose X ?», «le budget de X»), «c'est…» is left-dislocated («X, c'est gratuit ?»).
4. Otherwise (no safe substitution) the subject's words are appended in parentheses, as
   before: «et le dernier a été lancé quand ? (RAMEAU, programmes de recherche)».
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from assistant.limits import clip

Message = Mapping[str, Any]

__all__ = ["key_terms", "looks_like_follow_up", "recent_history", "rewrite_without_llm", "subject_of",
           "user_questions"]

_MAX_TURNS = 8  # user turns replayed to rebuild the chain of standalone questions
_MAX_MESSAGE_CHARS = 2000  # each message is cut there: a pasted page costs what a long answer costs

# --------------------------------------------------------------------------- words


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# determiner → (number, gender); "" when the determiner does not tell
_DETS: dict[str, tuple[str, str]] = {
    "le": ("s", "m"), "la": ("s", "f"), "l'": ("s", ""), "les": ("p", ""), "un": ("s", "m"), "une": ("s", "f"),
    "des": ("p", ""), "du": ("s", "m"), "au": ("s", "m"), "aux": ("p", ""), "ce": ("s", "m"), "cet": ("s", "m"),
    "cette": ("s", "f"), "ces": ("p", ""), "mon": ("s", ""), "ma": ("s", "f"), "mes": ("p", ""), "son": ("s", ""),
    "sa": ("s", "f"), "ses": ("p", ""), "notre": ("s", ""), "nos": ("p", ""), "votre": ("s", ""), "vos": ("p", ""),
    "leur": ("s", ""), "leurs": ("p", ""), "chaque": ("s", ""), "plusieurs": ("p", ""), "quelques": ("p", ""),
    "certains": ("p", "m"), "certaines": ("p", "f"), "deux": ("p", ""), "trois": ("p", ""), "quatre": ("p", ""),
    "cinq": ("p", ""), "six": ("p", ""), "sept": ("p", ""), "dix": ("p", ""),
}
_INDEFINITE = _words("un une chaque plusieurs quelques certains certaines deux trois quatre cinq six sept dix")
_CONTRACTED = {"du": "le", "au": "le", "aux": "les", "des": "les"}
_DEMONSTRATIVES = _words("ce cet cette ces")
_POSSESSIVE_3RD = {"son": "s", "sa": "s", "ses": "s", "leur": "p", "leurs": "p"}
_CONNECTORS = _words("de d' du des en sur")  # inside a noun phrase: «formation en ligne sur les partenariats»
_PREPOSITIONS = _words(
    "à au aux avec par pour dans chez selon entre vers contre sans sous depuis pendant auprès après avant via parmi "
    "jusqu' en sur de d' du des"
)
_WH = _words("qui que qu' quoi où quand comment pourquoi combien quel quelle quels quelles lequel laquelle lesquels "
             "lesquelles dont")
_PRONOUN_WH = _words("qui que qu' quoi où quand comment pourquoi")
_PRONOUN_SUBJECTS = _words("je j' tu on nous vous il elle ils elles se s' ne n'")
_SUBJECTS = {"il": ("s", "m"), "elle": ("s", "f"), "ils": ("p", "m"), "elles": ("p", "f")}
_CLITICS = {"l'": ("s", ""), "le": ("s", "m"), "la": ("s", "f"), "les": ("p", ""), "lui": ("s", ""),
            "leur": ("p", ""), "en": ("", ""), "y": ("", "")}
_DEMONSTRATIVE_PRONOUNS = {"celui-ci": ("s", "m"), "celle-ci": ("s", "f"), "ceux-ci": ("p", "m"),
                           "celles-ci": ("p", "f"), "celui-là": ("s", "m"), "celle-là": ("s", "f"),
                           "ceux-là": ("p", "m"), "celles-là": ("p", "f")}
_OTHER_PRONOUNS = _words("je j' tu on nous vous me m' te t' se s' moi toi soi eux ça cela ceci ce c' y en lui")
_ELLIPSIS_MARKERS = _words("et mais ou alors sinon puis ensuite aussi donc")
_ADVERBS = _words(
    "ne n' pas plus moins très trop bien aussi encore déjà toujours jamais souvent vraiment seulement surtout "
    "exactement concrètement maintenant aujourd'hui ici là oui non si tout tous toute toutes même mieux peu "
    "beaucoup environ ensemble donc alors puis ensuite sinon or ni car et ou mais est-ce"
)
_COURTESY = _words("merci bonjour bonsoir salut ok okay d'accord super parfait génial entendu au revoir bien "
                   "compris top cool")
_ORDINALS = _words("dernier dernière derniers dernières premier première premiers premières deuxième second "
                   "seconde troisième prochain prochaine suivant suivante autre autres même mêmes précédent "
                   "précédente")
# Finite forms that end a noun phrase and may follow a clitic («l'organise», «en a»).
_VERBS = _words(
    "a ai as avons avez ont avait avaient aura auront est es suis sommes êtes sont était étaient sera seront "
    "serait fait font peut peux peuvent pouvons pouvez pourrait doit dois doivent devons devez faut fallait "
    "faudrait veut veux veulent voudrais va vais vont allons dit dis disent sait sais savez coûte coûtent propose "
    "proposent organise organisent finance financent pilote pilotent anime animent publie publient trouve "
    "trouvent contient contiennent compte comptent existe existent date datent sert servent parle parlent "
    "concerne concernent réunit réunissent rassemble rassemblent regroupe regroupent porte portent aide aident "
    "permet permettent dure durent modélise modélisent signifie recommande recommandent accompagne accompagnent "
    "mène mènent héberge présente présentent explique montre montrent indique fixe donne donnent offre offrent "
    "vise couvre travaille travaillent réalise réalisent forme forment gère gèrent soutient soutiennent "
    "vient viennent prend prennent cite citent utilise utilisent crée créent lance lancent adresse inscrit"
)
_AUX = _words("a ai as avons avez ont avait avaient aura auront est sont était étaient sera seront")
_INFINITIVES = _words(
    "lire dire faire écrire inscrire prendre comprendre apprendre mettre voir recevoir "
    "vouloir construire conduire produire connaître être avoir suivre obtenir joindre rejoindre étudier publier "
    "vérifier identifier relier confier modifier signifier négocier remercier"
)
_NOT_INFINITIVES = _words(
    "avenir plaisir loisir désir souvenir devenir pouvoir savoir devoir élixir soupir martyr hiver enfer inter fer "
    "mer cancer laser hier cher amer super poster leader manager cluster master"
)
_IMPERSONAL = _words("faut fallait faudrait existe existait suffit reste manque vaut semble paraît agit s'agit fera "
                     "pleut pleuvra neige")
_TEMPORAL = _words("année années an ans mois semaine semaines jour jours matin soir moment cas stade époque")
_GENERIC_NOUNS = _words(
    "commune communes mairie élu élus maire maires territoire territoires collectivité collectivités équipe "
    "équipes conseil mandat projet projets question réponse chose choses gens"
)
_GENERIC_HEADS = _words(
    "document documents ressource ressources outil outils texte textes publication publications fiche fiches "
    "site sites dispositif initiative structure organisme organisation truc machin démarche"
)
_FUNCTION = (
    frozenset(_DETS) | _PREPOSITIONS | _WH | frozenset(_SUBJECTS) | _OTHER_PRONOUNS | _ADVERBS | _ELLIPSIS_MARKERS
)
_STOP = _FUNCTION | _VERBS | _words("c'est existe-t-il y-a-t-il est-ce plus moins")
_INVERSION = re.compile(r"-(?:t-)?(?:il|elle|ils|elles|on|je|tu|nous|vous|moi|toi|ce)$", re.IGNORECASE)
_YEAR = re.compile(r"^(?:19|20)\d\d$")
_VOWEL = re.compile(r"^[aeiouyàâäéèêëîïôöûùœæ]", re.IGNORECASE)
_PARTICIPLE = re.compile(r"(?:é|ée|és|ées|is|ise|ie|ies|it|u|ue|us|ert|erte|ait)$")

_TOKEN = re.compile(
    r"aujourd'hui|(?:qu|jusqu|lorsqu|puisqu|[cdjlmnst])'|\d+(?:[.,]\d+)+|\w+(?:[-.]\w+)*|[^\w\s]", re.IGNORECASE
)


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.replace("’", "'").replace("‘", "'"))


def _detok(tokens: Sequence[str]) -> str:
    out = ""
    for tok in tokens:
        if out and not (out.endswith("'") or out.endswith("(") or tok in {",", ".", ")", "…"}):
            out += " "
        out += tok
    return out


def _low(tok: str) -> str:
    return tok.lower()


def _is_word(tok: str) -> bool:
    return bool(tok) and (tok[0].isalnum())


def _verbish(tok: str) -> bool:
    low = _low(tok)
    return low in _VERBS or bool(_INVERSION.search(low))


def _infinitive(tok: str) -> bool:
    low = _low(tok)
    if low in _INFINITIVES:
        return True
    if low in _NOT_INFINITIVES or len(low) <= 3 or not low.isalpha():
        return False
    return low.endswith("ir") or (low.endswith("er") and not low.endswith("ier"))


def _finite(tok: str) -> bool:
    """A guess for verbs that no list holds: «disposent», «permettraient», «inspirait»."""
    low = _low(tok)
    return _verbish(tok) or (len(low) > 4 and low.isalpha() and (
        (low.endswith("ent") and not low.endswith("ment")) or low.endswith(("aient", "ait"))))


def _is_content(tok: str) -> bool:
    return _is_word(tok) and _low(tok) not in _STOP and not _INVERSION.search(_low(tok))


def _named(tok: str) -> bool:
    """A proper noun, an acronym or a figure: «RAMEAU», «Coursera», «17»."""
    return _is_word(tok) and (tok[0].isupper() or tok[0].isdigit()) and _low(tok) not in _FUNCTION


# --------------------------------------------------------------------------- noun phrases


@dataclass(frozen=True)
class Phrase:
    """A noun phrase of a question: ``tokens[start:end]``, its determiner made canonical («du» → «le»)."""

    start: int
    end: int
    words: tuple[str, ...]
    number: str  # "s", "p" or "" (unknown)
    gender: str  # "m", "f" or ""
    named: bool  # holds a name, an acronym, a figure or a quoted title
    nested: bool = False  # inside a longer phrase: «les partenariats» in «une formation … sur les partenariats»
    score: float = 0.0  # how likely it is the subject of its question
    is_definite: bool = True  # «la formation», not «une formation»

    @property
    def text(self) -> str:
        return _detok(self.words)

    @property
    def head(self) -> str:
        return next((w for w in self.words if _is_content(w)), "")

    def definite(self) -> list[str]:
        """Mentioned again, «une formation» becomes «la formation»."""
        words = list(self.words)
        article = {"un": "le", "une": "la", "des": "les"}.get(_low(words[0]) if words else "")
        if article:
            words[0] = "l'" if article != "les" and _VOWEL.match(words[1]) else article
        return words

    def bare(self) -> str:
        """Without its determiner, for a parenthesis: «formation en ligne gratuite sur les partenariats»."""
        words = list(self.words)
        if words and _low(words[0]) in _DETS:
            words = words[1:]
        return _detok(words)


def _extend(tokens: Sequence[str], i: int) -> int:
    """End (exclusive) of the noun phrase whose first word after the determiner is at ``i``."""
    end = i
    participle = False
    j = i
    while j < len(tokens):
        tok, low = tokens[j], _low(tokens[j])
        if tok in ("«", '"'):
            close = "»" if tok == "«" else '"'
            k = next((k for k in range(j + 1, len(tokens)) if tokens[k] == close), -1)
            if k < 0:
                break
            j = end = k + 1
            continue
        if low in _DETS and tok[0].isupper() and j > i and _is_content(tokens[j - 1]):
            # «le MOOC Les alliances qui changent les territoires»: an unquoted title runs to the end
            k = next((k for k in range(j, len(tokens)) if tokens[k] in ("?", "!", ",", ";", "»")), len(tokens))
            j = end = k
            break
        if _is_content(tok) or (tok[:1].isdigit()):
            if _PARTICIPLE.search(low) and j > i:
                participle = True
            j = end = j + 1
            continue
        connector = low in _CONNECTORS or (participle and low in _PREPOSITIONS)
        if connector and j + 1 < len(tokens):
            k = j + 1
            if _low(tokens[k]) in _DETS and _low(tokens[k]) not in _POSSESSIVE_3RD:
                k += 1
            if k < len(tokens) and (_is_content(tokens[k]) or tokens[k] == "«"):
                j = k
                continue
        break
    return end


def noun_phrases(tokens: Sequence[str]) -> list[Phrase]:
    """Top-level noun phrases, then the ones nested in them («les partenariats» in «une formation … sur les …»)."""
    top: list[Phrase] = []
    i = 0
    while i < len(tokens):
        tok, low = tokens[i], _low(tokens[i])
        start = None
        if low in _DETS and i + 1 < len(tokens) and (_is_content(tokens[i + 1]) or tokens[i + 1] == "«"):
            if not (low in _CLITICS and i + 1 < len(tokens) and _clitic_verb(tokens, i)):
                start = i
        elif tok == "«" or (_named(tok) and not _verbish(tok) and (
                i > 0 or tok.isupper() or (len(tokens) > 1 and _verbish(tokens[1])))):
            start = i  # at the start, a capital is a name only before a verb: «Stablinski faisait-il…»
        if start is None:
            i += 1
            continue
        end = _extend(tokens, start + 1 if low in _DETS else start)
        if end <= start + (1 if low in _DETS else 0):
            i += 1
            continue
        top.append(_phrase(tokens, start, end))
        i = end
    nested = []
    for p in top:
        for k in range(p.start + 1, p.end - 1):
            low = _low(tokens[k])
            after_connector = _low(tokens[k - 1]) in _CONNECTORS or low in _CONTRACTED
            if low in _DETS and after_connector and _is_content(tokens[k + 1]):
                nested.append(_phrase(tokens, k, p.end, nested=True))
    return top + nested


def _phrase(tokens: Sequence[str], start: int, end: int, nested: bool = False) -> Phrase:
    words = list(tokens[start:end])
    low = _low(words[0])
    number, gender = _DETS.get(low, ("", ""))
    contracted = low in ("du", "au", "aux") or (low == "des" and start > 0 and _is_content(tokens[start - 1]))
    if contracted:
        words[0] = _CONTRACTED[low]  # «du réseau» → «le réseau», «des pionniers» after a noun → «les pionniers»
    elif low in _DETS and start == 0:
        words[0] = low  # «Le kit…» at the start of the question → «le kit…» inside another one
    content = [w for w in words if _is_content(w)]
    before = _low(tokens[start - 1]) if start > 0 else ""
    complement = before in _PREPOSITIONS and before not in _CONNECTORS  # «à notre projet», «par le collectif»
    generic = not content or _low(content[0]) in _GENERIC_NOUNS  # «la commune», «les élus»
    named = any(_named(w) for w in words[1:] if w not in ("«", "»")) or "«" in words or _named(words[0])
    score = len(content) + 2.0 * named - 3.0 * generic - 2.0 * complement
    definite = low not in _INDEFINITE and not (low == "des" and not contracted)
    return Phrase(start, end, tuple(words), number, gender, named, nested, score, definite)


def subject_of(question: str) -> str:
    """The main noun phrase of a question, «» when it has none."""
    ranked = _ranked(noun_phrases(_tokens(question)))
    return ranked[0].text if ranked else ""


def _ranked(phrases: Iterable[Phrase]) -> list[Phrase]:
    top = [p for p in phrases if not p.nested]
    nested = [p for p in phrases if p.nested]
    return sorted(top, key=lambda p: (-p.score, p.start)) + nested


# --------------------------------------------------------------------------- anaphors


@dataclass(frozen=True)
class Anaphor:
    kind: str  # clitic, subject, inverted, ca, ce, demonstrative, pronoun, possessive, nominal
    index: int
    end: int
    number: str = ""
    gender: str = ""


_WEAK_FOLLOWERS = _words("? ! . , pas plus jamais bien vraiment aussi encore toujours exactement concrètement "
                         "aujourd'hui maintenant où quand comment")
_MODALS = _words("peut peux peuvent pouvons pouvez pourrait pourrais doit dois doivent devons devez faut faudrait "
                 "veux veut voudrais voulons va vais vont allons aimerais souhaite souhaitons sait sais savez")
_BEFORE_INFINITIVE = _words("pour de d' à sans par")
_CLITIC_TRIGGERS = _words("on je j' tu nous vous ne n' s' se m' me t' te ça cela y en ce c'")
# «qui les finance ?» but not «c'est quoi la catalyse ?» nor «qu'est-ce que la co-construction ?»
_WEAK_WH = _words("qui où quand comment pourquoi combien")
_NOUN_ENDING = re.compile(r"(?:tion|sion|ment|té|age|ure|isme|iste|eur|aire|ique|ie|ance|ence|te)s?$")


def _clitic_verb(tokens: Sequence[str], i: int) -> int:
    """Index of the verb governed by the clitic pronoun at ``i``, or 0 when it is not one («la formation»).

    «qui l'organise», «il en a», «où la trouver», «pour les contacter», «peut-on s'y inscrire», «Le RAMEAU
    les finance-t-il»; after a question word or a subject pronoun, a verb-like word that ends the clause is
    enough («qui les finance ?»), elsewhere it must be a known verb form or an infinitive.
    """
    j = i + 1
    while j < len(tokens) and _low(tokens[j]) in ("y", "en", "lui", "leur"):
        j += 1  # «le lui», «s'y en»
    if i == 0 or j >= len(tokens) or not tokens[j][:1].isalpha() or tokens[j][0].isupper():
        return j if i == 0 and j < len(tokens) and _INVERSION.search(_low(tokens[j])) else 0
    before, verb = _low(tokens[i - 1]), tokens[j]
    low = _low(verb)
    if low in _FUNCTION:
        return 0
    if before in _BEFORE_INFINITIVE or before in _MODALS or _INVERSION.search(before):
        return j if _infinitive(verb) else 0
    if before in _WH or before in _SUBJECTS or before in _CLITIC_TRIGGERS:
        if _verbish(verb) or _infinitive(verb):
            return j
        if before in _WH and before not in _WEAK_WH:
            return 0
        following = _low(tokens[j + 1]) if j + 1 < len(tokens) else "?"
        return j if following in _WEAK_FOLLOWERS and not _NOUN_ENDING.search(low) else 0
    return j if _is_content(tokens[i - 1]) and _INVERSION.search(low) else 0


def _existential_y(tokens: Sequence[str], i: int) -> bool:
    nxt = [_low(t) for t in tokens[i + 1:i + 3]]
    if nxt and nxt[0] == "en":
        nxt = nxt[1:]
    return bool(nxt) and re.match(r"^(a|avait|aura|aurait)(-t)?(-il)?$", nxt[0]) is not None


def _impersonal(tokens: Sequence[str], i: int, verb: str) -> bool:
    low = _low(verb)
    if low in _IMPERSONAL or "y" in [_low(t) for t in tokens[max(0, i - 3):i]] or low == "y":
        return True
    if low in ("s'", "se") and i + 2 < len(tokens):
        return _low(tokens[i + 2]) in _IMPERSONAL
    if i > 0 and _low(tokens[i - 1]) in ("s'", "se"):
        return True  # «que s'est-il passé», «que se passe-t-il»
    if low in ("est", "était") and i + 3 < len(tokens):  # «il est possible de», «est-il utile que»
        return _low(tokens[i + 3]) in _words("de d' que qu'")
    return False


def anaphors(tokens: Sequence[str]) -> list[Anaphor]:
    """The words of a question that point back to the previous turn, in reading order."""
    own = [p for p in noun_phrases(tokens) if not p.nested and _low(tokens[p.start]) not in _POSSESSIVE_3RD]

    def local(i: int) -> bool:  # a noun phrase of the question itself comes before: «Le RAMEAU, il…»
        return any(p.end <= i for p in own)

    def antecedent(i: int, number: str) -> bool:  # «les trois impacts … Le RAMEAU les lit-il ?»; not «C'est X qui l'…»
        before = [p for p in own if p.end <= i and (p.start == 0 or _low(tokens[p.start - 1]) != "est")]
        if number == "p" and len(before) >= 2:
            return True  # «le kit A et le kit B : où les trouver ?»
        return any(not number or not p.number or p.number == number for p in before)

    quantity = any(_low(t) == "combien" or t[:1].isdigit() for t in tokens)

    found: list[Anaphor] = []
    for i, tok in enumerate(tokens):
        low = _low(tok)
        if low in _SUBJECTS:
            nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
            if not (low == "il" and _impersonal(tokens, i, nxt)) and not local(i):
                found.append(Anaphor("subject", i, i + 1, *_SUBJECTS[low]))
        elif _INVERSION.search(low) and "-" in low:
            pronoun = low.rsplit("-", 1)[1]
            verb = low.split("-", 1)[0]
            if pronoun in _SUBJECTS and not (pronoun == "il" and _impersonal(tokens, i, verb)) and not local(i):
                found.append(Anaphor("inverted", i, i + 1, *_SUBJECTS[pronoun]))
        elif low in _CLITICS and (low != "y" or not _existential_y(tokens, i)) and _clitic_verb(tokens, i):
            if low == "en" and quantity:  # «il en a combien»: a count of something named before
                resolved = i > 0 and _low(tokens[i - 1]) == "y" and local(i)
            elif low in ("en", "y"):
                resolved = local(i)
            else:
                resolved = antecedent(i, _CLITICS[low][0])
            if not resolved:
                found.append(Anaphor("clitic", i, i + 1, *_CLITICS[low]))
        elif low in ("ça", "cela", "ceci") and not local(i):
            found.append(Anaphor("ca", i, i + 1))
        elif low in ("c'", "ce") and i + 1 < len(tokens) and _low(tokens[i + 1]) in _words(
                "est était sera serait sont") and not own:
            found.append(Anaphor("ce", i, i + 2))
        elif low in _DEMONSTRATIVE_PRONOUNS:
            found.append(Anaphor("pronoun", i, i + 1, *_DEMONSTRATIVE_PRONOUNS[low]))
        elif low in _DEMONSTRATIVES and i + 1 < len(tokens) and _is_content(tokens[i + 1]) and (
                _low(tokens[i + 1]) not in _TEMPORAL):
            end = _extend(tokens, i + 1)
            if not any(_named(w) for w in tokens[i + 1:end]):
                found.append(Anaphor("demonstrative", i, end, *_DETS[low]))
        elif low in _POSSESSIVE_3RD and i + 1 < len(tokens) and _is_content(tokens[i + 1]) and not own:
            found.append(Anaphor("possessive", i, _extend(tokens, i + 1), _POSSESSIVE_3RD[low]))
        elif low in ("le", "la", "les", "l'") and i + 1 < len(tokens) and _low(tokens[i + 1]) in _ORDINALS and (
                i + 2 >= len(tokens) or not _is_content(tokens[i + 2])):
            found.append(Anaphor("nominal", i, i + 2))
    return found


def is_fragment(tokens: Sequence[str]) -> bool:
    """No verb: «et pour les associations ?», «depuis quand ?», «avec quels partenaires ?», «gratuit ?».

    «Quelle différence entre une alliance et un partenariat ?» names what it asks about: not a fragment.
    """
    words = [t for t in tokens if _is_word(t)]
    if not words or any(_finite(t) or _infinitive(t) for t in words):
        return False
    if any(_low(t) in _CLITICS and _clitic_verb(tokens, k) for k, t in enumerate(tokens)):
        return False  # «comment le savoir ?»
    if any(_low(a) in _PRONOUN_SUBJECTS and b.isalpha() and b.islower() for a, b in itertools.pairwise(tokens)):
        return False  # «où se situe…», «on trouve…»: a pronoun, then its verb
    first = _low(words[0])
    if first in _ELLIPSIS_MARKERS and (first != "ou" or (len(words) > 1 and _low(words[1]) in _PREPOSITIONS)):
        return True  # «et pour…», «ou en 2020 ?»; «ou se situe…» is a misspelt «où»
    short = len(words) <= 5 and "," not in tokens
    if first in _PRONOUN_WH and len(words) > 1 and _is_content(words[1]) and words[1].islower():
        return False  # «qui gagne ?»: after «qui», «où», «comment»… a word is a verb that no list holds
    if first in _WH or (first in _PREPOSITIONS and len(words) > 1 and _low(words[1]) in _WH):
        return short and not any(not p.nested for p in noun_phrases(tokens))
    if first in _PREPOSITIONS:
        return short
    content = [t for t in words if _is_content(t)]
    named = any(_named(t) for t in words[1:]) or (len(words[0]) > 1 and words[0].isupper()) or words[0][0].isdigit()
    return len(words) <= 3 and len(content) <= 1 and not named


def looks_like_follow_up(question: str) -> bool:
    tokens = _tokens(question)
    return bool(anaphors(tokens)) or is_fragment(tokens)


# --------------------------------------------------------------------------- rewriting


def _agrees(p: Phrase, number: str, gender: str) -> bool:
    return (not number or not p.number or p.number == number) and (not gender or not p.gender or p.gender == gender)


def _with_prep(prep: str, words: Sequence[str]) -> list[str]:
    """«de» + «le MOOC» → «du MOOC»; «à» + «les associations» → «aux associations»."""
    first = _low(words[0]) if words else ""
    table = {("de", "le"): "du", ("de", "les"): "des", ("à", "le"): "au", ("à", "les"): "aux"}
    if (prep, first) in table:
        return [table[(prep, first)], *words[1:]]
    if prep == "de" and _VOWEL.match(first):
        return ["d'", *words]
    return [prep, *words]


def _elide(tokens: list[str]) -> list[str]:
    """«ne organise» → «n'organise», «s' rendre» → «se rendre» after a pronoun was moved."""
    full = {"n'": "ne", "s'": "se", "m'": "me", "t'": "te", "j'": "je", "qu'": "que", "l'": "le",
            "lorsqu'": "lorsque", "puisqu'": "puisque"}
    short = {v: k for k, v in full.items() if k != "l'"}
    out = list(tokens)
    for k in range(len(out) - 1):
        low, nxt = _low(out[k]), out[k + 1]
        if low in short and _VOWEL.match(nxt) and _is_word(nxt):
            out[k] = short[low] if out[k].islower() else short[low].capitalize()
        elif low in full and not _VOWEL.match(nxt) and nxt[:1].lower() != "h" and _is_word(nxt):
            out[k] = full[low] if out[k].islower() else full[low].capitalize()
    return out


def _finish(tokens: Sequence[str]) -> str:
    words = _elide([t for t in tokens if t])
    while words and words[-1] in ("?", ".", "!", "…"):
        words.pop()
    text = _detok(words)
    return text[:1].upper() + text[1:] + " ?"


def _after_verb(tokens: list[str], j: int) -> int:
    """Where the object goes: after the verb, its participle and «pas»; the participle no longer agrees."""
    k = j + 1
    if _low(tokens[j]) in _AUX and k < len(tokens) and _PARTICIPLE.search(_low(tokens[k])) and _is_content(tokens[k]):
        # «qui l'a réalisée» → «qui a réalisé l'étude»
        tokens[k] = re.sub(r"(?<=[éu])(?:es|e|s)$|(?<=i)es?$|(?<=[ir]t)(?:es|e|s)$|(?<=is)es?$", "", tokens[k])
        k += 1
    while k < len(tokens) and _low(tokens[k]) in ("pas", "plus", "jamais", "rien"):
        k += 1
    return k


def _substitute(tokens: list[str], a: Anaphor, np: Phrase) -> list[str] | None:
    """The question with the anaphor replaced by the noun phrase, where French allows it."""
    words = np.definite()
    low = _low(tokens[a.index])
    if not _named(tokens[0]) or _verbish(tokens[0]):
        tokens = [_low(tokens[0]), *tokens[1:]]  # «Est-il ouvert ?» → «Le MOOC est-il ouvert ?»
    if a.kind == "clitic":
        j = _clitic_verb(tokens, a.index)
        if low == "en" and any(_low(t) == "combien" or t[:1].isdigit() for t in tokens):
            return None  # «il en a combien»: «en» stands for a count, not for the subject
        inserted = _with_prep("de", words) if low == "en" else (
            _with_prep("à", words) if low in ("y", "lui", "leur") else words)
        tokens = list(tokens)
        k = _after_verb(tokens, j)
        return tokens[:a.index] + tokens[a.index + 1:k] + inserted + tokens[k:]
    if a.kind in ("subject", "pronoun"):
        if a.index > 0 and (_low(tokens[a.index - 1]) == "t" or _finite(tokens[a.index - 1])):
            return None  # «habite t il», «sont ils»: an inversion without hyphens
        return tokens[:a.index] + words + tokens[a.index + 1:]
    if a.kind == "inverted":
        verb = tokens[a.index].split("-", 1)[0]
        if a.index > 0 and _low(tokens[a.index - 1]) in ("que", "qu'"):  # «Que propose-t-il ?» → «Que propose X ?»
            return [*tokens[:a.index], verb, *words, *tokens[a.index + 1:]]
        k = a.index
        while k > 0 and _low(tokens[k - 1]) in _words("ne n' se s' y en le la les l' lui leur me m' te t'"):
            k -= 1  # «Pourquoi ne l'a-t-elle pas…» → «Pourquoi X ne l'a-t-elle pas…»
        return tokens[:k] + words + tokens[k:]  # «Comment est-elle financée» → «Comment X est-elle…»
    if a.kind == "ca":
        rest = [t for t in tokens[a.index + 2:] if _is_word(t)]
        if a.index > 0 and _low(tokens[a.index - 1]) in _WH and a.index + 1 < len(tokens) and not rest:
            return [*tokens[:a.index], tokens[a.index + 1], *words, *tokens[a.index + 2:]]  # «combien coûte X»
        return tokens[:a.index] + words + tokens[a.index + 1:]
    if a.kind == "ce":  # «c'est gratuit ?» → «La formation …, c'est gratuit ?»
        head = tokens[1:] if _low(tokens[0]) in _ELLIPSIS_MARKERS else tokens
        return [*words, ",", _low(head[0]), *head[1:]]
    if a.kind == "demonstrative":
        return tokens[:a.index] + words + tokens[a.end:]
    if a.kind == "possessive":
        noun = tokens[a.index + 1]
        article = {"ses": "les", "leurs": "les", "sa": "la"}.get(low) or (
            "la" if re.search(r"(tion|sion|té|ure|ance|ence|ette|ie|ée|ise|ude)s?$", _low(noun)) else "le")
        return [*tokens[:a.index], article, *tokens[a.index + 1:a.end], *_with_prep("de", words), *tokens[a.end:]]
    return None


def _pick(a: Anaphor, tokens: Sequence[str], candidates: Sequence[Phrase]) -> Phrase | None:
    agreeing = [p for p in candidates if _agrees(p, a.number, a.gender)]
    if a.kind == "demonstrative":
        head = _low(tokens[a.index + 1])
        same = [p for p in candidates if any(_low(w).rstrip("sx") == head.rstrip("sx") for w in p.words)]
        if same:  # «ce kit» → «le kit co-construction territoriale»
            return same[0]
        return agreeing[0] if agreeing and head in _GENERIC_HEADS else None  # «ce document» → the subject
    if a.kind == "possessive":
        return next((p for p in candidates if not p.number or p.number == a.number), None)
    return agreeing[0] if agreeing else None


def _insert_before_end(tokens: Sequence[str], extra: Sequence[str]) -> list[str]:
    body = list(tokens)
    while body and body[-1] in ("?", ".", "!", "…"):
        body.pop()
    return body + list(extra)


def _declarative(tokens: Sequence[str]) -> list[str] | None:
    """The previous question in a form that a fronted «depuis quand» can precede, else None."""
    words = list(tokens)
    if len(words) > 2 and _low(words[0]) == "est-ce" and _low(words[1]) in ("que", "qu'"):
        words = words[2:]
    first = _low(words[0]) if words else ""
    inverted = bool(_INVERSION.search(first)) and not first.startswith(("existe", "a-t", "faut"))
    if not words or first in _WH or first in ("c'", "ce") or inverted:
        return None  # «Qui a fait X ?», «C'est quoi X ?», «Parle-moi de X»
    if first in _FUNCTION or first in _DETS:
        words[0] = first
    return words


def _merge_fragment(tokens: list[str], prev: list[str], subject: Phrase | None) -> list[str] | None:
    """«et pour les associations ?», «et en 2020 ?», «depuis quand ?» merged with the previous question."""
    body = [t for t in tokens if t not in ("?", "!", ".", "…")]
    while body and _low(body[0]) in _ELLIPSIS_MARKERS:
        body = body[1:]
    if not body:
        return None
    first = _low(body[0])
    wh = first in _WH or (first in _PREPOSITIONS and len(body) > 1 and _low(body[1]) in _WH)
    if wh:
        noun = any(_is_content(t) for t in body)
        declarative = _declarative(prev)
        if declarative is not None and (first in _PREPOSITIONS or not noun):
            return body + _insert_before_end(declarative, [])  # «Depuis quand le réseau est une association ?»
        if subject is None:
            return None
        return body + (["pour"] if noun else [","]) + subject.definite()  # «Combien de cibles pour l'ODD 17 ?»
    years = [k for k, t in enumerate(body) if _YEAR.match(t)]
    prev_years = [k for k, t in enumerate(prev) if _YEAR.match(t)]
    if years and prev_years and len([t for t in body if _is_content(t) and not _YEAR.match(t)]) == 0:
        out = list(prev)
        out[prev_years[-1]] = body[years[0]]
        return out
    own = [p for p in noun_phrases(body) if not p.nested]
    if own:
        new = own[0]
        targets = [p for p in noun_phrases(prev) if p.named == new.named and p.number == new.number
                   and p.is_definite == new.is_definite and p.text.lower() != new.text.lower()
                   and not (p.nested and new.named)]
        before = _low(body[new.start - 1]) if new.start > 0 else ""
        same_prep = [p for p in targets if p.start > 0 and _low(prev[p.start - 1]) == before]
        # «et pour l'hébergement ?» after «Que dit l'étude sur l'habitat ?» replaces the complement, «et le guide ?»
        # the main noun phrase
        ordered = sorted(targets, key=lambda p: p.nested != (before in _PREPOSITIONS))
        targets = same_prep or ordered
        if targets:
            old = targets[0]
            original = _low(prev[old.start])
            after_noun = old.start > 0 and _is_content(prev[old.start - 1])
            if original in ("du", "au", "aux") or (original == "des" and after_noun):
                replacement = _with_prep("de" if original in ("du", "des") else "à", new.words)  # «du X» → «de l'Y»
            else:
                replacement = list(new.words)
            return prev[:old.start] + replacement + prev[old.end:]
    if first in _PREPOSITIONS:
        return _insert_before_end(prev, body)
    return None


@dataclass(frozen=True)
class _Turn:
    standalone: str
    answer: str


_LEAD = re.compile(r"^(?:D'après|Voici ce que dit) « (?P<title>.+) »(?:, page [\w-]+)? :\s*$")


def _answer_phrases(answer: str) -> list[Phrase]:
    """The title of the first document the previous answer cites, then the noun phrases of its first sentences."""
    lines = [ln.strip() for ln in answer.replace("’", "'").splitlines() if ln.strip()]
    phrases = []
    if lines and (m := _LEAD.match(lines[0])):  # «D'après « MOOC « … » (ESSEC et Le RAMEAU) », page 1 :»
        title = _tokens(re.sub(r"\s*\([^()]*\)\s*$", "", m.group("title")))
        if title:
            phrases.append(_phrase(title, 0, len(title)))
        lines = lines[1:]
    body = re.sub(r"\[\d+\]", "", " ".join(re.sub(r"^[-•]\s*«?\s*|\s*»?\s*\[\d+\]$", "", ln) for ln in lines))
    first = " ".join(re.split(r"(?<=[.!?])\s+", body)[:2])
    return phrases + [p for p in _ranked(noun_phrases(_tokens(first)[:60])) if not p.nested]


def _candidates(turn: _Turn) -> list[Phrase]:
    """The previous subject first: the previous question's noun phrases (the one the answer repeats first)."""
    answer = turn.answer.lower()
    own = [replace(p, score=p.score + 1) if p.head and p.head.lower() in answer else p
           for p in noun_phrases(_tokens(turn.standalone))]
    return _ranked(own) + _answer_phrases(turn.answer)


def _fallback(question: str, turn: _Turn, candidates: Sequence[Phrase]) -> str:
    """The previous behaviour: the subject and the previous question's other key terms, in parentheses."""
    lowered = question.lower()
    subject = candidates[0].bare() if candidates and not candidates[0].nested else ""
    others = [t for t in key_terms(turn.standalone) if t.lower() not in subject.lower() and t.lower() not in lowered]
    carried = [c for c in (subject, " ".join(others)) if c and c.lower() not in lowered]
    if not carried:
        return question
    return f"{question.strip()} ({', '.join(carried)})"


def _rewrite_turn(question: str, turn: _Turn) -> str:
    tokens = _tokens(question)
    if not tokens or all(_low(t) in _COURTESY or not _is_word(t) for t in tokens):
        return question
    found = anaphors(tokens)
    fragment = is_fragment(tokens)
    if not found and not fragment:
        return question
    prev = _tokens(turn.standalone)
    candidates = _candidates(turn)
    subject = candidates[0] if candidates else None
    if fragment or (tokens and _low(tokens[0]) in _ELLIPSIS_MARKERS and _elliptic_rest(tokens, prev)):
        merged = _merge_fragment(tokens, prev, subject)
        if merged:
            return _finish(merged)
    for a in found:
        np = _pick(a, tokens, candidates)
        rewritten = _substitute(tokens, a, np) if np else None
        if rewritten:
            return _finish(rewritten)
    return _fallback(question, turn, candidates)


def _elliptic_rest(tokens: Sequence[str], prev: Sequence[str]) -> bool:
    """«et l'ODD 17 il en a combien ?»: a new noun phrase, then only words of the previous question."""
    own = [p for p in noun_phrases(tokens) if not p.nested]
    if not own:
        return False
    known = {_low(t) for t in prev}
    rest = tokens[own[0].end:]
    return all(not _is_content(t) or _low(t) in known for t in rest)


def _valid(m: object) -> tuple[str, str] | None:
    """(role, content) of a usable message, None for a malformed or empty one."""
    if not isinstance(m, Mapping):
        return None
    role, content = m.get("role"), m.get("content")
    if role not in ("user", "assistant") or not isinstance(content, str) or not content.strip():
        return None
    return role, content


def recent_history(history: Sequence[Message] | None, max_turns: int = _MAX_TURNS,
                   max_chars: int = _MAX_MESSAGE_CHARS) -> list[dict[str, str]]:
    """The messages from the ``max_turns``-th last user message on, each cut to ``max_chars`` characters.

    Malformed and empty messages are dropped. The history is read from its end, so a client that sends
    thousands of messages costs no more than one that sends the last few.
    """
    if not history or max_turns <= 0:
        return []
    kept: list[tuple[str, str]] = []
    users = 0
    for m in reversed(history):
        item = _valid(m)
        if item is None:
            continue
        kept.append(item)
        if item[0] == "user":
            users += 1
            if users == max_turns:
                break
    return [{"role": role, "content": clip(content, max_chars)} for role, content in reversed(kept)]


def _turns(history: Sequence[Message] | None, max_turns: int = _MAX_TURNS,
           max_chars: int = _MAX_MESSAGE_CHARS) -> list[tuple[str, str]]:
    """(user question, following assistant answer) pairs of the recent window; malformed messages are skipped."""
    pairs: list[tuple[str, str]] = []
    for m in recent_history(history, max_turns, max_chars):
        role, content = m["role"], m["content"]
        if role == "user":
            pairs.append((content.strip(), ""))
        elif pairs and not pairs[-1][1]:
            pairs[-1] = (pairs[-1][0], content)
    return pairs


def rewrite_without_llm(question: str, history: Sequence[Message] | None, *, max_turns: int = _MAX_TURNS,
                        max_chars: int = _MAX_MESSAGE_CHARS) -> str:
    """The follow-up made standalone from the previous turns; the question itself when it names its subject.

    Only the last ``max_turns`` user turns are read, each message cut to ``max_chars`` characters.
    """
    turns: list[_Turn] = []
    for user, answer in _turns(history, max_turns, max_chars):
        standalone = _rewrite_with(user, turns)
        turns.append(_Turn(standalone, answer))
    return _rewrite_with(question, turns)


def _rewrite_with(question: str, turns: Sequence[_Turn]) -> str:
    # The latest turn that has a subject: «merci» or «pourquoi ?» alone do not break the chain.
    for turn in reversed(turns):
        if _candidates(turn) or key_terms(turn.standalone):
            return _rewrite_turn(question, turn)
    return question


# --------------------------------------------------------------------------- kept from the first version


def user_questions(history: Sequence[Message]) -> list[str]:
    return [user for user, _ in _turns(history)]


def key_terms(text: str, limit: int = 8) -> list[str]:
    terms: list[str] = []
    for word in _WORD.findall(text):
        w = word.strip("'-")
        if "'" in w:
            w = w.split("'", 1)[1]
        if len(w) < 3 or w.lower() in _KEY_STOP or w.lower() in (t.lower() for t in terms):
            continue
        terms.append(w)
    return terms[:limit]


_WORD = re.compile(r"[\wÀ-ÿ'-]+")
_KEY_STOP = _STOP | _COURTESY | _words("c'est existe-t-il y-a-t-il est-ce estce a-t-il a-t-elle qu'est-ce parle-moi")
