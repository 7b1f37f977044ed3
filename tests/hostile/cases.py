"""The reliability suite of issue 12, case by case: which tests hold each case up.

Tests written for this suite live in ``tests/hostile/``; older ones stay beside the code they test and are
listed here by node id (a file, or ``file::test``). ``tests/conftest.py`` marks every listed test ``hostile``, so
``pytest -m hostile`` runs the whole suite (fast: fakes and loopback servers only, apart from the browser test,
which keeps its own ``browser`` marker), and ``test_cases.py`` fails when a listed test no longer exists.
"""

from __future__ import annotations

CASES: dict[str, tuple[str, ...]] = {
    "coût borné par requête (question, historique, texte donné au modèle d'embeddings)": (
        "tests/test_limits.py",
        "tests/test_answer.py::test_empty_and_too_long_questions_get_french_messages",
    ),
    "limite par client sur /ask, blocage après échecs de connexion, toutes les routes derrière la connexion": (
        "tests/test_web_limits.py",
        "tests/test_app.py::test_login_is_enforced_everywhere",
        "tests/test_app.py::test_login_page_and_its_assets_stay_open",
        "tests/test_app.py::test_login_locks_out_after_failed_attempts",
    ),
    "file pleine et rafale : refus en français avec le délai": (
        "tests/test_app.py::test_a_full_queue_is_refused_in_french",
    ),
    "coût borné par fichier (temps, mémoire, découpage linéaire et dans le budget)": (
        "tests/test_hostile_files.py",
        "tests/hostile/test_split_budget.py",
        "tests/test_sandbox.py",
    ),
    "les 8 sortes de fichiers défectueux, PDF chiffrés, bombe de décompression": (
        "tests/test_ingest.py::test_every_bad_input_fails_alone_with_a_french_reason",
        "tests/test_ingest.py::test_encrypted_pdf_with_empty_password_is_read",
        "tests/test_ingest.py::test_encrypted_pdf_with_a_password_is_reported_as_such",
    ),
    "identifiants de documents sans collision": ("tests/test_doc_ids.py",),
    "pannes : lecture seule, disque plein, génération absente ou endommagée, Chroma injoignable": (
        "tests/test_faults.py",
        "tests/hostile/test_start_faults.py",
        "tests/hostile/test_stale_copies.py",
    ),
    "messages : lignes --questions malformées, questions sans lettres": (
        "tests/test_cli.py::test_batch_questions_report_each_malformed_row_and_answer_the_others",
        "tests/test_answer.py::test_a_question_without_letters_is_refused_in_french",
    ),
    "traversée de chemins, SSRF, documents hostiles inertes": (
        "tests/test_app.py::test_traversal_and_ssrf_are_refused",
        "tests/test_app.py::test_hostile_documents_and_questions_stay_inert",
        "tests/test_app_render.py::test_hostile_text_everywhere_is_inert",
        "tests/test_app_browser.py::test_chat_in_a_real_browser",
    ),
    "kill -9 pendant l'indexation et pendant l'écriture des retours": (
        "tests/test_ingest.py::test_kill_9_mid_run_keeps_previous_index_served_and_next_run_completes",
        "tests/test_ocr.py::test_a_job_stopped_during_ocr_leaves_no_ocr_child_and_the_served_index",
        "tests/hostile/test_kill_mid_feedback.py",
        "tests/hostile/test_unfinished_generation.py",
    ),
    "réindexation sous charge : l'ancienne génération ou la nouvelle, jamais un mélange": (
        "tests/test_retrieve.py::test_search_during_reingestion_sees_old_or_new_never_a_mix",
    ),
    "croissance bornée : sessions gardées en mémoire, rétention du journal avec export avant purge": (
        "tests/hostile/test_sessions.py",
        "tests/hostile/test_retention.py",
        "tests/test_server_audit_retention.py::test_a_failed_export_deletes_nothing_in_postgresql",
        "tests/test_server_audit_retention.py::"
        "test_a_failed_delete_leaves_no_export_and_the_retry_exports_each_answer_once_in_postgresql",
        "tests/test_server_audit_retention.py::test_a_commit_of_unknown_outcome_keeps_the_export",
        "tests/test_server_audit_retention.py::test_replicas_purging_at_once_export_and_delete_once",
    ),
    "API Albert saturée, lente ou injoignable : nouvelles tentatives espacées, puis message en français (index servi "
    "inchangé) ou repli sur les extraits et l'ordre local ; aucun appel réseau sans configuration": (
        "tests/test_albert.py::test_a_busy_albert_is_retried_then_the_extracts_come_with_a_french_notice",
        "tests/test_albert.py::test_a_slow_albert_times_out_into_the_extracts",
        "tests/test_albert.py::test_nothing_reaches_the_network_unless_configured",
        "tests/test_albert_embed.py::test_a_persistent_failure_is_one_french_error_after_the_retries",
        "tests/test_albert_embed.py::test_a_slow_service_times_out_into_the_french_error",
        "tests/test_albert_embed.py::test_a_failing_service_stops_the_ingestion_and_leaves_the_served_index",
        "tests/test_albert_embed.py::test_a_failing_reranker_keeps_the_local_order_with_a_notice",
    ),
}


def listed(nodeid: str) -> bool:
    """True when a collected test (its pytest node id) belongs to one of the cases."""
    return any(nodeid == ref or nodeid.startswith((ref + "::", ref + "["))  # a file's tests, a test's parameters
               for refs in CASES.values() for ref in refs)
