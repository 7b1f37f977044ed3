// « Gérer les documents »: sends the managers' changes and shows the queue's progress (polls /gerer/etat).
// Every text from the server is put in the page with textContent: nothing it sends is read as HTML.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  let documents = [];

  function say(text, failed) {
    const box = $("message");
    box.textContent = text;
    box.className = failed ? "echec" : "";
  }

  async function send(url, options) {
    options.headers = Object.assign({"X-Requested-With": "gerer"}, options.headers || {});
    try {
      const response = await fetch(url, Object.assign({method: "POST", credentials: "same-origin"}, options));
      const data = await response.json().catch(() => ({}));
      if (!response.ok) { say(data.detail || "La demande a échoué.", true); return false; }
      say(data.message || "Demande enregistrée.", false);
      refresh();
      return true;
    } catch (e) {
      say("Le serveur ne répond pas : réessayez dans un instant.", true);
      return false;
    }
  }

  function chosen() { return $("doc-choisi").value; }

  function fillDescription() {
    const doc = documents.find((d) => d.doc_id === chosen());
    $("desc-titre").value = doc ? doc.title : "";
    $("desc-editeur").value = doc ? doc.publisher : "";
    $("desc-lien").value = doc ? doc.url : "";
    $("desc-date").value = doc ? doc.edition : "";
  }

  function cell(row, text) { const td = document.createElement("td"); td.textContent = text; row.appendChild(td); }

  function showDocuments(list) {
    const before = chosen();
    documents = list;
    const select = $("doc-choisi");
    select.replaceChildren();
    for (const doc of list) {
      const option = document.createElement("option");
      option.value = doc.doc_id;
      option.textContent = doc.title + " (" + doc.file + ")";
      select.appendChild(option);
    }
    if (list.some((d) => d.doc_id === before)) select.value = before;
    if (select.value !== before) fillDescription();
    const body = $("documents");
    body.replaceChildren();
    for (const doc of list) {
      const row = document.createElement("tr");
      [doc.title, doc.publisher, doc.edition, doc.file, String(doc.pages), String(doc.passages),
       (doc.indexed_at || "").replace("T", " ").slice(0, 16)].forEach((t) => cell(row, t));
      body.appendChild(row);
    }
  }

  function showJobs(jobs) {
    const list = $("travaux");
    list.replaceChildren();
    for (const job of jobs) {
      const item = document.createElement("li");
      item.className = job.state === "échec" ? "echec" : job.state === "terminé" ? "termine" : "";
      const head = document.createElement("strong");
      head.textContent = job.label + " — " + job.state + " (" + job.user + ")";
      item.appendChild(head);
      if (job.state === "en cours") {
        const bar = document.createElement("progress");
        bar.max = 100; bar.value = job.percent || 0;
        bar.setAttribute("aria-label", "Progression de l'indexation");
        item.appendChild(document.createElement("br"));
        item.appendChild(bar);
      }
      const detail = document.createElement("div");
      detail.className = "detail";
      detail.textContent = job.summary || job.progress || "";
      item.appendChild(detail);
      list.appendChild(item);
    }
  }

  function showAudit(entries) {
    const list = $("journal");
    list.replaceChildren();
    for (const e of entries) {
      const item = document.createElement("li");
      item.textContent = e.at.replace("T", " ") + " — " + e.user + " : " + e.action + " « " +
        (e.doc_id || e.file || "nouveau document") + " » (" + e.outcome + ")";
      list.appendChild(item);
    }
  }

  let timer = null;
  async function refresh() {
    try {
      const response = await fetch("/gerer/etat", {credentials: "same-origin"});
      if (!response.ok) return;
      const data = await response.json();
      showDocuments(data.documents);
      showJobs(data.jobs);
      showAudit(data.audit);
      const busy = data.jobs.some((j) => j.state === "en cours" || j.state === "en attente");
      clearTimeout(timer);
      timer = setTimeout(refresh, busy ? 700 : 5000);
    } catch (e) {
      clearTimeout(timer);
      timer = setTimeout(refresh, 5000);
    }
  }

  function query(pairs) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(pairs)) if (value) params.set(key, value);
    return params.toString();
  }

  $("form-ajout").addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = $("ajout-fichier").files[0];
    if (!file) { say("Choisissez d'abord un fichier.", true); return; }
    say("Envoi du fichier…", false);
    const ok = await send("/gerer/documents?" + query({nom: file.name, titre: $("ajout-titre").value,
      editeur: $("ajout-editeur").value, lien: $("ajout-lien").value, date: $("ajout-date").value}),
      {body: file, headers: {"Content-Type": "application/octet-stream"}});
    if (ok) $("form-ajout").reset();
  });

  $("doc-choisi").addEventListener("change", fillDescription);

  $("form-description").addEventListener("submit", (event) => {
    event.preventDefault();
    if (!chosen()) return;
    send("/gerer/documents/" + encodeURIComponent(chosen()) + "/description", {
      body: JSON.stringify({titre: $("desc-titre").value, editeur: $("desc-editeur").value,
        lien: $("desc-lien").value, date: $("desc-date").value}),
      headers: {"Content-Type": "application/json"}});
  });

  $("form-edition").addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = $("edition-fichier").files[0];
    if (!file || !chosen()) { say("Choisissez un document et le fichier de sa nouvelle édition.", true); return; }
    say("Envoi du fichier…", false);
    const ok = await send("/gerer/documents/" + encodeURIComponent(chosen()) + "/edition?" +
      query({nom: file.name, date: $("edition-date").value}),
      {body: file, headers: {"Content-Type": "application/octet-stream"}});
    if (ok) $("form-edition").reset();
  });

  $("form-retrait").addEventListener("submit", (event) => {
    event.preventDefault();
    const doc = documents.find((d) => d.doc_id === chosen());
    if (!doc) return;
    if (!window.confirm("Retirer « " + doc.title + " » de l'index ?")) return;
    send("/gerer/documents/" + encodeURIComponent(doc.doc_id) + "/retrait", {});
  });

  for (const shown of document.querySelectorAll(".nom-fichier")) {
    const input = $(shown.dataset.pour);
    const update = () => { shown.textContent = input.files[0] ? input.files[0].name : "aucun fichier choisi"; };
    input.addEventListener("change", update);
    input.form.addEventListener("reset", () => setTimeout(update, 0));
  }

  refresh();
})();
