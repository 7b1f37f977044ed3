"""Evaluation results → a Markdown summary and a self-contained HTML report (plots inlined as base64 PNG).

Every text taken from questions, answers or citations is escaped with
``html.escape`` in HTML and has its table-breaking characters neutralised in Markdown.

For each configuration and each set (scored against its own index): the whole set, each half
(tune, heldout), the ``hard_layout`` questions, the table per question type and, for sets that
have their own types (real-docs), the table per category. Sets skipped for absent data are listed
with their reason.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evals.sets import QUESTION_TYPES

# Headline metrics, in reading order: (key path in the summary, French label, higher is better).
HEADLINE: list[tuple[str, str, bool]] = [
    ("retrieval_doc.hit@1", "Document attendu en 1re position (hit@1)", True),
    ("retrieval_doc.hit@5", "Document attendu dans les 5 premiers (hit@5)", True),
    ("retrieval_doc.hit@10", "Document attendu dans les 10 premiers (hit@10)", True),
    ("retrieval_doc.mrr@10", "MRR@10 (documents)", True),
    ("retrieval_doc.ndcg@10", "nDCG@10 (documents)", True),
    ("retrieval_page.hit@1", "Page attendue en 1re position (hit@1)", True),
    ("retrieval_page.hit@5", "Page attendue dans les 5 premiers (hit@5)", True),
    ("retrieval_page.hit@10", "Page attendue dans les 10 premiers (hit@10)", True),
    ("retrieval_page.mrr@10", "MRR@10 (pages)", True),
    ("retrieval_page.ndcg@10", "nDCG@10 (pages)", True),
    ("fact_recall", "Rappel des faits clés", True),
    ("all_facts_rate", "Réponses contenant tous les faits", True),
    ("fact_on_expected_page", "Fait cité depuis une page attendue", True),
    ("citation_precision", "Précision des citations", True),
    ("citation_validity", "Validité des citations (citation littérale)", True),
    ("abstention.precision", "Précision des refus", True),
    ("abstention.recall", "Rappel des refus (hors corpus refusées)", True),
    ("false_refusal_rate", "Refus à tort (questions du corpus)", False),
    ("dropped_sentences.total", "Phrases retirées par le vérificateur (LLM)", False),
    ("dropped_sentences.per_answer", "Phrases retirées par réponse (LLM)", False),
    ("llm_fallback_rate", "Réponses LLM remplacées par les extraits", False),
    ("latency_s.retrieve.p50", "Latence recherche p50 (s)", False),
    ("latency_s.retrieve.p95", "Latence recherche p95 (s)", False),
    ("latency_s.answer.p50", "Latence réponse p50 (s)", False),
    ("latency_s.answer.p95", "Latence réponse p95 (s)", False),
    ("latency_s.total.p50", "Latence totale p50 (s)", False),
    ("latency_s.total.p95", "Latence totale p95 (s)", False),
]

TYPE_LABELS = {
    "factual": "factuelle",
    "paraphrase": "reformulée",
    "acronym": "sigle",
    "multi-document": "multi-documents",
    "follow-up": "relance",
    "out-of-corpus": "hors corpus",
}

CATEGORY_LABELS = {
    "chiffre": "chiffre",
    "qui": "qui",
    "definition": "définition",
    "procedure": "procédure",
    "oui-non": "oui ou non",
    "paraphrase": "reformulée",
    "multi": "plusieurs pages",
    "hors-corpus": "hors corpus",
}

BY_TYPE_COLUMNS = [
    ("questions", "Questions"),
    ("failed", "Échecs"),
    ("doc_hit@5", "Doc hit@5"),
    ("page_hit@5", "Page hit@5"),
    ("doc_mrr@10", "MRR@10 doc"),
    ("fact_recall", "Rappel faits"),
    ("all_facts_rate", "Tous les faits"),
    ("fact_on_expected_page", "Fait sur page attendue"),
    ("citation_precision", "Précision cit."),
    ("citation_validity", "Validité cit."),
    ("abstention_rate", "Taux de refus"),
]

# Parts of a set summary, as columns of its table: (key, French heading).
PARTS = [
    ("all", "Ensemble"),
    ("tune", "Réglage (tune)"),
    ("heldout", "Contrôle (heldout)"),
    ("hard_layout", "Mise en page difficile"),
]
# Rows of a set table: (key path in the summary, French label).
SET_ROWS = [
    ("retrieval_doc.hit@5", "Document attendu dans les 5 premiers (hit@5)"),
    ("retrieval_page.hit@5", "Page attendue dans les 5 premiers (hit@5)"),
    ("retrieval_doc.mrr@10", "MRR@10 (documents)"),
    ("fact_recall", "Rappel des faits clés"),
    ("all_facts_rate", "Réponses contenant tous les faits"),
    ("fact_on_expected_page", "Fait cité depuis une page attendue"),
    ("citation_precision", "Précision des citations"),
    ("citation_validity", "Validité des citations"),
    ("refusals.out_of_corpus", "Hors corpus refusées"),
    ("refusals.answerable", "Refus à tort (questions du corpus)"),
    ("failed", "Échecs"),
    ("latency_s.total.p95", "Latence totale p95 (s)"),
]

READING_GUIDE = [
    ("hit@k", "part des questions dont un document (ou une page) attendu figure parmi les k premiers passages."),
    ("MRR@10", "moyenne de 1/rang du premier passage pertinent (1 = toujours en tête)."),
    ("nDCG@10", "qualité du classement quand plusieurs documents sont attendus (1 = tous en tête)."),
    ("Rappel des faits clés", "part des faits attendus présents dans la réponse (casse, accents, espaces des nombres "
     "et « % »/« pour cent » ignorés) ; un refus compte 0."),
    ("Précision des citations", "part des citations dont la phrase porte un fait clé présent dans le passage cité "
     "(vérifié sur le texte)."),
    ("Validité des citations", "part des citations dont l'extrait figure mot pour mot dans la page source."),
    ("Fait cité depuis une page attendue", "parmi les réponses qui contiennent au moins un fait clé, part de celles "
     "dont un fait figure dans l'extrait d'une citation prise sur une page attendue."),
    ("Réglage / contrôle", "chaque jeu est coupé une fois pour toutes en deux moitiés stratifiées par type : les "
     "réglages se font sur « tune », la porte qualité juge aussi « heldout », jamais regardée pour régler."),
    ("Mise en page difficile", "questions dont la page attendue sort brouillée de l'extraction (colonnes, "
     "infographies)."),
    ("Refus", "les questions hors corpus doivent être refusées : précision = refus justifiés / refus, "
     "rappel = questions hors corpus refusées / questions hors corpus."),
]


def get_path(summary: dict[str, Any], path: str) -> Any:
    node: Any = summary
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def group_label(key: str) -> str:
    return TYPE_LABELS.get(key) or CATEGORY_LABELS.get(key) or key


def _set_views(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Set name → its figures in a configuration (one view of the whole configuration for older results)."""
    sets = config.get("sets")
    if sets:
        return dict(sets)
    return {"": {"summary": config.get("summary") or {}, "by_type": config.get("by_type") or {}}}


def _part(summary: dict[str, Any], part: str) -> dict[str, Any] | None:
    if part == "all":
        return summary
    if part == "hard_layout":
        return summary.get("hard_layout")
    return (summary.get("splits") or {}).get(part)


def _set_cell(part: dict[str, Any], key: str) -> str:
    if key.startswith("refusals."):
        refusals = part.get("refusals") or {}
        which = key.split(".", 1)[1]
        n, m = refusals.get(f"{which}_refused"), refusals.get(which)
        if not m:
            return "—"
        return f"{n} sur {m} ({fmt(n / m if isinstance(n, int) else None)})"
    return fmt(get_path(part, key))


def set_table(summary: dict[str, Any]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """The table of one set: a column per part (whole set, halves, hard layout), a row per metric."""
    parts = [(key, label, p) for key, label in PARTS if (p := _part(summary, key))]
    headers = [f"{label} (n = {p.get('questions', '?')})" for _, label, p in parts]
    rows = [(label, [_set_cell(p, key) for _, _, p in parts]) for key, label in SET_ROWS]
    return headers, rows


def fmt(value: Any) -> str:
    if value is None:
        return "n/d"
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if value != int(value) or abs(value) < 1000 else f"{value:.0f}"
    return str(value)


# --------------------------------------------------------------------------- plots


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display on CI machines
    import matplotlib.pyplot as plt

    return plt


def plot_by_type(config: dict[str, Any]) -> str | None:
    """Grouped bars: fact recall, doc hit@5, page hit@5 and abstention rate per question type (or category)."""
    by_type = config.get("by_type") or {}
    if not by_type:
        return None
    plt = _pyplot()
    series = [
        ("fact_recall", "Rappel des faits"),
        ("doc_hit@5", "Doc hit@5"),
        ("page_hit@5", "Page hit@5"),
        ("citation_precision", "Précision citations"),
        ("abstention_rate", "Taux de refus"),
    ]
    types = list(by_type)
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(10, 3.6))
    for i, (key, label) in enumerate(series):
        values = [by_type[t].get(key) for t in types]
        xs = [j + i * width for j in range(len(types))]
        ax.bar(xs, [v if v is not None else 0 for v in values], width, label=label)
    ax.set_xticks([j + width * (len(series) - 1) / 2 for j in range(len(types))])
    ax.set_xticklabels([f"{group_label(t)}\n(n={by_type[t]['questions']})" for t in types], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_title(f"Métriques par type de question — {config['name']}", fontsize=10)
    ax.legend(fontsize=7, ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.22))
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def plot_latency(configs: Sequence[dict[str, Any]]) -> str | None:
    """Histogram of total latency per question, one series per configuration."""
    data = []
    for c in configs:
        values = [q["timings"].get("total", q["wall_s"]) for q in c["questions"] if not q.get("error")]
        if values:
            data.append((c["name"], values))
    if not data:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.2))
    top = max(max(v) for _, v in data)
    bins = [top * i / 30 for i in range(31)] if top > 0 else 10
    for name, values in data:
        if len(data) == 1:
            ax.hist(values, bins=bins, alpha=0.7, label=name)
        else:  # outlines stay readable where several configurations overlap
            ax.hist(values, bins=bins, histtype="step", linewidth=1.6, label=name)
    ax.set_xlabel("Latence totale par question (s)")
    ax.set_ylabel("Questions")
    ax.set_title("Distribution des latences", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def plot_compare(configs: Sequence[dict[str, Any]]) -> str | None:
    """Headline quality metrics of every configuration side by side."""
    if len(configs) < 2:
        return None
    plt = _pyplot()
    keys = [
        ("retrieval_doc.hit@5", "Doc hit@5"),
        ("retrieval_doc.mrr@10", "Doc MRR@10"),
        ("retrieval_page.hit@5", "Page hit@5"),
        ("fact_recall", "Rappel faits"),
        ("citation_precision", "Précision cit."),
        ("citation_validity", "Validité cit."),
        ("abstention.recall", "Rappel refus"),
    ]
    width = 0.8 / len(configs)
    fig, ax = plt.subplots(figsize=(9, 3.6))
    for i, c in enumerate(configs):
        values = [get_path(c["summary"], k) for k, _ in keys]
        xs = [j + i * width for j in range(len(keys))]
        ax.bar(xs, [v if v is not None else 0 for v in values], width, label=c["name"])
    ax.set_xticks([j + width * (len(configs) - 1) / 2 for j in range(len(keys))])
    ax.set_xticklabels([label for _, label in keys], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_title("Comparaison des configurations", fontsize=10)
    ax.legend(fontsize=7, ncol=min(4, len(configs)), loc="upper center", bbox_to_anchor=(0.5, -0.12))
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


# --------------------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1200px;padding:0 1rem;
color:#1b1b1b;line-height:1.45}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:2px solid #000091;padding-bottom:.2rem}
h3{font-size:1.05rem;margin-top:1.5rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.86rem}
th,td{border:1px solid #ccc;padding:.3rem .5rem;vertical-align:top;text-align:left}
th{background:#eef}td.num{text-align:right;font-variant-numeric:tabular-nums}
.best{font-weight:bold;background:#e6f4ea}.worst{background:#fdecea}
.meta{color:#555;font-size:.9rem}.small{font-size:.8rem;color:#444}
details{margin:.2rem 0}blockquote{margin:.2rem 0 .2rem .5rem;padding-left:.5rem;border-left:3px solid #ccc}
.ok{color:#1e7b34}.ko{color:#b3261e}img{max-width:100%}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _headline_html(configs: Sequence[dict[str, Any]], set_name: str) -> str:
    rows = ["<table><tr><th>Métrique</th>" + "".join(f"<th>{_e(c['name'])}</th>" for c in configs) + "</tr>"]
    summaries = [(_set_views(c).get(set_name) or {}).get("summary") or {} for c in configs]
    for key, label, higher in HEADLINE:
        values = [get_path(summary, key) for summary in summaries]
        if all(v is None for v in values):
            continue
        numeric = [v for v in values if isinstance(v, int | float)]
        best = (max(numeric) if higher else min(numeric)) if len(configs) > 1 and numeric else None
        cells = []
        for v in values:
            cls = "num best" if best is not None and v == best and len(set(numeric)) > 1 else "num"
            cells.append(f'<td class="{cls}">{_e(fmt(v))}</td>')
        rows.append(f"<tr><td>{_e(label)} <span class='small'>({_e(key)})</span></td>{''.join(cells)}</tr>")
    rows.append("</table>")
    return "\n".join(rows)


def _by_type_html(by_type: dict[str, Any], heading: str = "Type") -> str:
    head = "".join(f"<th>{_e(label)}</th>" for _, label in BY_TYPE_COLUMNS)
    rows = [f"<table><tr><th>{_e(heading)}</th>{head}</tr>"]
    for t, row in by_type.items():
        cells = "".join(f'<td class="num">{_e(fmt(row.get(k)))}</td>' for k, _ in BY_TYPE_COLUMNS)
        rows.append(f"<tr><td>{_e(group_label(t))}</td>{cells}</tr>")
    rows.append("</table>")
    return "\n".join(rows)


def _set_table_html(summary: dict[str, Any]) -> str:
    headers, rows = set_table(summary)
    out = ["<table><tr><th>Métrique</th>" + "".join(f"<th>{_e(h)}</th>" for h in headers) + "</tr>"]
    for label, cells in rows:
        out.append(f"<tr><td>{_e(label)}</td>" + "".join(f'<td class="num">{_e(c)}</td>' for c in cells) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _set_title(set_name: str) -> str:
    return f"Jeu « {set_name} »" if set_name else "Toutes les questions"


def _set_meta(view: dict[str, Any]) -> str:
    index = view.get("index") or {}
    report = index.get("ingest_report")
    passages = report.get("passages") if isinstance(report, dict) else None
    bits = [f"{view['summary'].get('questions', '?')} questions"]
    if index.get("ingest_s"):
        bits.append(f"indexation {fmt(index['ingest_s'])} s")
    if passages:
        bits.append(f"{passages} passages indexés")
    if view.get("source"):
        bits.append(f"source : {view['source']}")
    return " · ".join(bits)


def _sets_html(config: dict[str, Any]) -> str:
    parts = []
    for set_name, view in _set_views(config).items():
        summary = view.get("summary") or {}
        parts.append(f"<h3>{_e(_set_title(set_name))}</h3><p class='meta'>{_e(_set_meta(view))}</p>")
        parts.append(_set_table_html(summary))
        parts.append("<h4>Par type de question</h4>" + _by_type_html(view.get("by_type") or {}))
        if view.get("by_category"):
            parts.append("<h4>Par catégorie du jeu</h4>" + _by_type_html(view["by_category"], "Catégorie"))
            by_group = {"name": f"{config['name']} · {set_name}", "by_type": view["by_category"]}
        else:
            by_group = {"name": f"{config['name']} · {set_name}" if set_name else config["name"],
                        "by_type": view.get("by_type") or {}}
        parts.append(_img(plot_by_type(by_group), f"Métriques par type — {by_group['name']}"))
    return "\n".join(parts)


def _skipped_sets(results: dict[str, Any]) -> list[tuple[str, str]]:
    return [(name, info["skipped"]) for name, info in (results.get("sets") or {}).items() if info.get("skipped")]


def _latency_html(config: dict[str, Any]) -> str:
    lat = config["summary"].get("latency_s", {})
    rows = ["<table><tr><th>Étape</th><th>p50 (s)</th><th>p95 (s)</th><th>max (s)</th></tr>"]
    for stage, values in lat.items():
        rows.append(
            f"<tr><td>{_e(stage)}</td>"
            + "".join(f'<td class="num">{_e(fmt(values.get(k)))}</td>' for k in ("p50", "p95", "max"))
            + "</tr>"
        )
    rows.append("</table>")
    return "\n".join(rows)


def _key(q: dict[str, Any]) -> tuple[str, str]:
    return q.get("set", ""), q["id"]


def changed_questions(base: dict[str, Any], other: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """Questions that fail in ``other`` but passed in ``base`` (regressions), and the ids that went the other way.

    Questions are matched on (set, id): two sets may use the same ids.
    """
    passed = {_key(q) for q in base["questions"] if not q["failures"]}
    failed = {_key(q) for q in base["questions"] if q["failures"]}
    regressed = [q for q in other["questions"] if q["failures"] and _key(q) in passed]
    improved = [q["id"] for q in other["questions"] if not q["failures"] and _key(q) in failed]
    return regressed, improved


def _by_type_compare_html(configs: Sequence[dict[str, Any]]) -> str:
    """Fact recall and doc hit@5 per question type, one column per configuration."""
    head = "".join(f"<th>{_e(c['name'])}</th>" for c in configs)
    rows = [f"<table><tr><th>Type</th>{head}</tr>"]
    for t in QUESTION_TYPES:
        if not any(t in c.get("by_type", {}) for c in configs):
            continue
        cells = []
        for c in configs:
            row = c.get("by_type", {}).get(t, {})
            if t == "out-of-corpus":
                cells.append(f"<td class='num'>refus {_e(fmt(row.get('abstention_rate')))}</td>")
            else:
                cells.append(
                    f"<td class='num'>faits {_e(fmt(row.get('fact_recall')))} · hit@5 {_e(fmt(row.get('doc_hit@5')))}"
                    "</td>"
                )
        rows.append(f"<tr><td>{_e(TYPE_LABELS.get(t, t))}</td>{''.join(cells)}</tr>")
    rows.append("</table>")
    return "\n".join(rows)


def _changes_html(configs: Sequence[dict[str, Any]]) -> str:
    items = []
    for other in configs[1:]:
        regressed, improved = changed_questions(configs[0], other)
        worse = ", ".join(f"{q['id']} ({q['failures'][0]})" for q in regressed) or "aucune"
        items.append(
            f"<li><b>{_e(other['name'])}</b> — moins bien que la base : {_e(worse)} ; "
            f"mieux : {_e(', '.join(improved) or 'aucune')}</li>"
        )
    return "<ul>" + "".join(items) + "</ul>"


def _citations_html(record: dict[str, Any]) -> str:
    if not record.get("citations"):
        return "<span class='small'>aucune</span>"
    items = []
    for c in record["citations"]:
        valid = "<span class='ok'>littérale</span>" if c["valid"] else "<span class='ko'>non littérale</span>"
        support = {True: "<span class='ok'>porte un fait</span>", False: "<span class='ko'>sans fait clé</span>",
                   None: ""}[c.get("supports_fact")]
        items.append(
            f"<div>[{_e(c['n'])}] <b>{_e(c['doc_id'])}</b>, p. {_e(c.get('page_label') or c['page'])} — "
            f"{valid} {support}<blockquote>{_e(c['quote'])}</blockquote></div>"
        )
    return "".join(items)


def _failures_html(config: dict[str, Any]) -> str:
    failed = [q for q in config["questions"] if q["failures"]]
    if not failed:
        return "<p>Aucun échec.</p>"
    rows = [
        "<table><tr><th>Id</th><th>Type</th><th>Question</th><th>Attendu</th><th>Pourquoi</th>"
        "<th>Réponse donnée</th><th>Citations</th></tr>"
    ]
    for q in failed:
        history = "".join(
            f"<div class='small'>{_e(turn['role'])} : {_e(turn['content'])}</div>" for turn in q.get("history", [])
        )
        expected_pages = ", ".join(f"{p['doc']} p. {p['page']}" for p in q.get("expected_pages", []))
        expected = (
            "<i>refus attendu</i>"
            if q["type"] == "out-of-corpus"
            else f"{_e(' ; '.join(q['facts']))}<div class='small'>{_e(expected_pages)}</div>"
        )
        top = ", ".join(f"{p['doc_id']} p. {p['page']}" for p in q.get("passages", [])[:5])
        answer = (
            f"<details><summary>{'refus' if q['abstained'] else 'réponse'} "
            f"({len(q.get('answer', ''))} car.)</summary><div>{_e(q.get('answer', ''))}</div></details>"
            f"<div class='small'>Passages : {_e(top or 'aucun')}</div>"
        )
        if q.get("standalone_question") and q["standalone_question"] != q["question"]:
            answer += f"<div class='small'>Question autonome : {_e(q['standalone_question'])}</div>"
        rows.append(
            f"<tr><td>{_e(q['id'])}</td><td>{_e(group_label(q.get('category') or q['type']))}</td>"
            f"<td>{history}{_e(q['question'])}</td><td>{expected}</td>"
            f"<td>{_e(' / '.join(q['failures']))}</td><td>{answer}</td><td>{_citations_html(q)}</td></tr>"
        )
    rows.append("</table>")
    return "\n".join(rows)


def _img(b64: str | None, alt: str) -> str:
    return f'<p><img alt="{_e(alt)}" src="data:image/png;base64,{b64}"></p>' if b64 else ""


def _piaf_rows(piaf: dict[str, Any]) -> tuple[list[str], list[tuple[str, list[Any]]]]:
    """PIAF results as (metric names, [(method, values)]) when they have the usual shape."""
    results = piaf.get("results")
    if not isinstance(results, dict) or not all(isinstance(v, dict) for v in results.values()) or not results:
        return [], []
    names = list(next(iter(results.values())).keys())
    return names, [(method, [values.get(n) for n in names]) for method, values in results.items()]


def _piaf_caption(piaf: dict[str, Any]) -> str:
    return (
        f"{piaf.get('questions', '?')} questions sur {piaf.get('paragraphs', '?')} paragraphes · "
        f"embedder {piaf.get('embedder', '?')}"
    )


def _piaf_html(piaf: dict[str, Any] | None) -> str:
    if piaf is None:
        return ""
    if "skipped" in piaf:
        return f"<h2>Benchmark PIAF</h2><p>{_e(piaf['skipped'])}</p>"
    names, rows = _piaf_rows(piaf)
    if rows:
        head = "".join(f"<th>{_e(n)}</th>" for n in names)
        body = "".join(
            f"<tr><td>{_e(method)}</td>" + "".join(f"<td class='num'>{_e(fmt(v))}</td>" for v in values) + "</tr>"
            for method, values in rows
        )
        return (
            f"<h2>Benchmark PIAF</h2><p class='meta'>{_e(_piaf_caption(piaf))}</p>"
            f"<table><tr><th>Recherche</th>{head}</tr>{body}</table>"
        )
    cells = "".join(f"<tr><td>{_e(k)}</td><td class='num'>{_e(fmt(v))}</td></tr>" for k, v in _flat_items(piaf))
    return f"<h2>Benchmark PIAF</h2><table><tr><th>Mesure</th><th>Valeur</th></tr>{cells}</table>"


def _flat_items(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for k, v in data.items():
        if isinstance(v, dict):
            items.extend(_flat_items(v, f"{prefix}{k}."))
        elif not isinstance(v, list):
            items.append((f"{prefix}{k}", v))
    return items


def _passages(config: dict[str, Any]) -> Any:
    report = config.get("index", {}).get("ingest_report")
    return report.get("passages") if isinstance(report, dict) else None


def _overrides_text(config: dict[str, Any]) -> str:
    text = ", ".join(f"{k}={v}" for k, v in config["overrides"].items()) or "réglages de base"
    settings = config.get("settings", {})
    if settings.get("answer_mode") == "llm":
        model = settings.get("llm_model") or Path(str(settings.get("llm_model_path") or "")).name or "?"
        text += f" (LLM : {settings.get('llm_backend')}, {model})"
    return text


def render_html(results: dict[str, Any]) -> str:
    meta = results["meta"]
    configs = [c for c in results["configs"] if c.get("summary")]
    base = configs[0]["settings"] if configs else {}
    parts = [
        "<!DOCTYPE html><html lang='fr'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>Rapport d'évaluation — {_e(meta['created'])}</title><style>{_CSS}</style></head><body>",
        "<h1>Rapport d'évaluation de l'assistant</h1>",
        f"<p class='meta'>Le {_e(meta['created'])} · commit {_e(meta.get('git_commit') or 'n/d')} · "
        f"jeux : {_e(', '.join(meta['sets']))} · {_e(meta['questions'])} questions · "
        f"durée {_e(fmt(meta.get('duration_s')))} s · index {'temporaire' if meta.get('fresh') else 'existant'}</p>",
    ]
    if base:
        parts.append(
            f"<p class='meta'>Embedder <b>{_e(base.get('embedder'))}</b> · recherche <b>{_e(base.get('search_mode'))}"
            f"</b> · réponse <b>{_e(base.get('answer_mode'))}</b> · passages de {_e(base.get('chunk_words'))} mots · "
            f"k = {_e(base.get('k'))}</p>"
        )
    for name, reason in _skipped_sets(results):
        parts.append(f"<p class='meta'><b>Jeu « {_e(name)} » ignoré</b> : {_e(reason)}</p>")
    if configs:
        parts.append("<h2>Résultats principaux</h2>")
        described = [c for c in configs[1:] if _overrides_text(c).replace(" ", "") != c["name"].replace(" ", "")]
        if described:
            parts.append(
                "<ul>" + "".join(f"<li><b>{_e(c['name'])}</b> : {_e(_overrides_text(c))}</li>" for c in described)
                + "</ul>"
            )
        set_names = list(_set_views(configs[0]))
        for set_name in set_names:
            if len(set_names) > 1:
                parts.append(f"<h3>{_e(_set_title(set_name))}</h3>")
            parts.append(_headline_html(configs, set_name))
        parts.append(_img(plot_compare(configs), "Comparaison des configurations"))
        if len(configs) > 1:
            parts.append("<h3>Par type de question et par configuration</h3>" + _by_type_compare_html(configs))
            parts.append("<h3>Questions qui changent de statut par rapport à la base</h3>" + _changes_html(configs))
        parts.append(_img(plot_latency(configs), "Histogramme des latences"))
    for c in configs:
        s = c["summary"]
        parts.append(f"<h2>Configuration « {_e(c['name'])} »</h2>")
        parts.append(
            f"<p class='meta'>{_e(_overrides_text(c))} · {_e(s['questions'])} questions, {_e(s['failed'])} échecs, "
            f"{_e(s['errors'])} erreurs · chargement de l'assistant {_e(fmt(c.get('assistant_load_s')))} s"
            + (f" · indexation {_e(fmt(c['index'].get('ingest_s')))} s" if c["index"].get("ingest_s") else "")
            + (f" · {_e(_passages(c))} passages indexés" if _passages(c) else "")
            + "</p>"
        )
        parts.append(_sets_html(c))
        parts.append("<h3>Latences par étape</h3>" + _latency_html(c))
        parts.append(f"<h3>Échecs ({sum(1 for q in c['questions'] if q['failures'])})</h3>" + _failures_html(c))
    parts.append(_piaf_html(results.get("piaf")))
    parts.append(
        "<h2>Comment lire ce rapport</h2><ul>"
        + "".join(f"<li><b>{_e(k)}</b> : {_e(v)}</li>" for k, v in READING_GUIDE)
        + "</ul></body></html>"
    )
    return "\n".join(p for p in parts if p)


# --------------------------------------------------------------------------- Markdown


def _md(value: Any, limit: int | None = None) -> str:
    text = " ".join(str(value).split())
    if limit and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _by_type_markdown(by_type: dict[str, Any], heading: str = "Type") -> list[str]:
    lines = [
        f"| {heading} | " + " | ".join(label for _, label in BY_TYPE_COLUMNS) + " |",
        "|---|" + "---:|" * len(BY_TYPE_COLUMNS),
    ]
    for t, row in by_type.items():
        lines.append(f"| {_md(group_label(t))} | " + " | ".join(fmt(row.get(k)) for k, _ in BY_TYPE_COLUMNS) + " |")
    return [*lines, ""]


def _set_markdown(set_name: str, view: dict[str, Any]) -> list[str]:
    """A set within a configuration: whole set, halves and hard layout, then per type (and per category)."""
    headers, rows = set_table(view.get("summary") or {})
    lines = [f"### {_md(_set_title(set_name))}", "", _md(_set_meta(view)) + ".", ""]
    lines += ["| Métrique | " + " | ".join(_md(h) for h in headers) + " |", "|---|" + "---:|" * len(headers)]
    lines += [f"| {label} | " + " | ".join(_md(c) for c in cells) + " |" for label, cells in rows]
    lines += ["", "#### Par type de question", "", *_by_type_markdown(view.get("by_type") or {})]
    if view.get("by_category"):
        lines += ["#### Par catégorie du jeu", "", *_by_type_markdown(view["by_category"], "Catégorie")]
    return lines


def render_markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    configs = [c for c in results["configs"] if c.get("summary")]
    lines = [
        "# Rapport d'évaluation de l'assistant",
        "",
        f"Le {meta['created']} · commit {meta.get('git_commit') or 'n/d'} · jeux : {', '.join(meta['sets'])} · "
        f"{meta['questions']} questions · durée {fmt(meta.get('duration_s'))} s · "
        f"index {'temporaire' if meta.get('fresh') else 'existant'}.",
        "",
    ]
    for name, reason in _skipped_sets(results):
        lines += [f"**Jeu « {_md(name)} » ignoré** : {_md(reason)}", ""]
    if configs:
        base = configs[0]["settings"]
        lines += [
            f"Embedder `{base.get('embedder')}` · recherche `{base.get('search_mode')}` · réponse "
            f"`{base.get('answer_mode')}` · passages de {base.get('chunk_words')} mots · k = {base.get('k')}.",
            "",
            "## Résultats principaux",
            "",
        ]
        described = [c for c in configs[1:] if _overrides_text(c).replace(" ", "") != c["name"].replace(" ", "")]
        lines += [f"- **{_md(c['name'])}** : {_md(_overrides_text(c))}" for c in described]
        if described:
            lines.append("")
        set_names = list(_set_views(configs[0]))
        for set_name in set_names:
            if len(set_names) > 1:
                lines += [f"### {_md(_set_title(set_name))}", ""]
            summaries = [(_set_views(c).get(set_name) or {}).get("summary") or {} for c in configs]
            lines.append("| Métrique | " + " | ".join(_md(c["name"]) for c in configs) + " |")
            lines.append("|---|" + "---:|" * len(configs))
            for key, label, _ in HEADLINE:
                values = [get_path(summary, key) for summary in summaries]
                if all(v is None for v in values):
                    continue
                lines.append(f"| {label} | " + " | ".join(fmt(v) for v in values) + " |")
            lines.append("")
        if len(configs) > 1:
            lines += ["### Questions qui changent de statut par rapport à la base", ""]
            for other in configs[1:]:
                regressed, improved = changed_questions(configs[0], other)
                worse = ", ".join(q["id"] for q in regressed) or "aucune"
                better = ", ".join(improved) or "aucune"
                lines.append(f"- **{_md(other['name'])}** — moins bien : {worse} ; mieux : {better}")
            lines.append("")
    for c in configs:
        s = c["summary"]
        lines += [
            f"## Configuration « {_md(c['name'])} »",
            "",
            f"{_md(_overrides_text(c))} · {s['questions']} questions, {s['failed']} échecs, {s['errors']} erreurs.",
            "",
        ]
        for set_name, view in _set_views(c).items():
            lines += _set_markdown(set_name, view)
        lines += ["#### Latences par étape", "", "| Étape | p50 (s) | p95 (s) | max (s) |", "|---|---:|---:|---:|"]
        for stage, values in s.get("latency_s", {}).items():
            lines.append(f"| {stage} | {fmt(values['p50'])} | {fmt(values['p95'])} | {fmt(values['max'])} |")
        failed = [q for q in c["questions"] if q["failures"]]
        lines += ["", f"### Échecs ({len(failed)})", ""]
        if failed:
            lines += ["| Id | Type | Question | Faits attendus | Pourquoi | Réponse (début) | Citations |",
                      "|---|---|---|---|---|---|---|"]
            for q in failed:
                question = q["question"]
                if q.get("history"):
                    question = " / ".join(t["content"] for t in q["history"] if t["role"] == "user") + " → " + question
                cites = "; ".join(f"[{x['n']}] {x['doc_id']} p. {x['page']}" for x in q.get("citations", []))
                facts = "refus attendu" if q["type"] == "out-of-corpus" else " ; ".join(q["facts"])
                answer = ("(refus) " if q["abstained"] else "") + q.get("answer", "")
                kind = group_label(q.get("category") or q["type"])
                lines.append(
                    f"| {_md(q['id'])} | {kind} | {_md(question)} | {_md(facts)} | "
                    f"{_md(' / '.join(q['failures']))} | {_md(answer, 220)} | {_md(cites) or '—'} |"
                )
        else:
            lines.append("Aucun échec.")
        lines.append("")
    piaf = results.get("piaf")
    if piaf is not None:
        lines += ["## Benchmark PIAF", ""]
        names, rows = _piaf_rows(piaf) if "skipped" not in piaf else ([], [])
        if "skipped" in piaf:
            lines.append(piaf["skipped"])
        elif rows:
            lines += [_piaf_caption(piaf) + ".", "", "| Recherche | " + " | ".join(names) + " |",
                      "|---|" + "---:|" * len(names)]
            lines += [f"| {_md(m)} | " + " | ".join(fmt(v) for v in values) + " |" for m, values in rows]
        else:
            lines += ["| Mesure | Valeur |", "|---|---:|"]
            lines += [f"| {_md(k)} | {fmt(v)} |" for k, v in _flat_items(piaf)]
        lines.append("")
    lines += ["## Comment lire ce rapport", ""]
    lines += [f"- **{k}** : {v}" for k, v in READING_GUIDE]
    lines.append("")
    return "\n".join(lines)


def write_reports(results: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write report.md and report.html next to results.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md_path, html_path = out_dir / "report.md", out_dir / "report.html"
    md_path.write_text(render_markdown(results), encoding="utf-8")
    html_path.write_text(render_html(results), encoding="utf-8")
    return md_path, html_path
