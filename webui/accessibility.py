"""``/accessibilite``: the « Déclaration d'accessibilité » (RGAA 4.1), a template a commune fills in.

French public websites, communes' included, must publish one (loi n° 2005-102, art. 47; décret
n° 2019-768). The audit part states what the project's own tests check (axe-core in Chromium on the
four views, the keyboard-only flow): automated checks cover part of the RGAA's criteria only, so the
conformity stated is partial until a full audit of the commune's deployment says otherwise.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

ROUTE = "/accessibilite"
_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
_STYLE = """
body{font-family:Arial,system-ui,sans-serif;color:#161616;background:#fff;max-width:46rem;margin:0 auto;padding:1.5rem;
line-height:1.6}h1{color:#000091;font-size:1.7rem}h2{font-size:1.25rem;margin-top:1.6rem}a{color:#000091}
a:focus-visible{outline:2px solid #0a76f6;outline-offset:2px}.a-remplir{background:#fff6bf;padding:0 .2em}
"""

DECLARATION = f"""<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Déclaration d'accessibilité — Assistant des alliances territoriales</title><style>{_STYLE}</style></head>
<body><header><p><a href="/">Retour à l'assistant</a></p><h1>Déclaration d'accessibilité</h1></header><main>
<p><span class="a-remplir">[Nom de la collectivité]</span> s'engage à rendre ses services numériques accessibles,
conformément à l'article 47 de la loi n° 2005-102 du 11 février 2005. Cette déclaration d'accessibilité s'applique à
l'« Assistant des alliances territoriales » publié à l'adresse <span class="a-remplir">[adresse du service]</span>.
Les passages entre crochets sont à compléter par la collectivité qui publie le service.</p>

<h2>État de conformité</h2>
<p>L'assistant est <strong>partiellement conforme</strong> avec le référentiel général d'amélioration de
l'accessibilité (RGAA), version 4.1 : aucun audit complet des critères du RGAA n'a encore été réalisé.</p>

<h2>Résultats des tests</h2>
<p>Les vérifications suivantes sont faites automatiquement à chaque version du logiciel, dans le navigateur
Chromium :</p>
<ul>
<li>analyse par axe-core de quatre vues (la conversation, une réponse avec ses sources, l'onglet « Sources », la
vue d'un document) : aucune non-conformité de gravité « sérieuse » ou « critique » ;</li>
<li>parcours complet au clavier seul (poser une question, lire la réponse, ouvrir une source, donner un avis,
commencer une nouvelle conversation) ;</li>
<li>affichage sur un écran de téléphone de 390 pixels de large : titre et zone de question visibles à
l'ouverture, début de la réponse visible à son arrivée ;</li>
<li>textes de l'interface en français, quelle que soit la langue du navigateur.</li>
</ul>
<p>Un audit complet reste à conduire : <span class="a-remplir">[date, auditeur, taux de conformité]</span>.</p>

<h2>Contenus non accessibles</h2>
<ul>
<li>Les documents PDF du corpus sont ceux des éditeurs : ils ne sont pas tous balisés pour les lecteurs d'écran.
La vue texte d'un document et le passage cité, reproduits dans chaque réponse, en donnent le contenu textuel.</li>
<li>L'aperçu d'une page PDF est une image : son texte alternatif indique la page ; le passage surligné est
reproduit en texte dans la carte de la source.</li>
<li>Certains composants de la bibliothèque Gradio (listes déroulantes, zone de conversation) n'ont pas été audités
critère par critère.</li>
</ul>

<h2>Établissement de cette déclaration</h2>
<p>Cette déclaration a été établie le <span class="a-remplir">[date]</span>. Technologies utilisées : HTML, CSS,
JavaScript (Gradio). Environnement de test : Chromium (Debian), axe-core.</p>

<h2>Retour d'information et contact</h2>
<p>Si vous n'arrivez pas à accéder à un contenu ou à un service, vous pouvez contacter
<span class="a-remplir">[service ou personne responsable, adresse électronique, téléphone]</span> pour être orienté
vers une alternative accessible ou obtenir le contenu sous une autre forme.</p>

<h2>Voies de recours</h2>
<p>Si vous constatez un défaut d'accessibilité vous empêchant d'accéder à un contenu ou à une fonctionnalité,
que vous nous le signalez et que vous ne parvenez pas à obtenir de réponse de notre part, vous êtes en droit de
faire parvenir vos doléances ou une demande de saisine au Défenseur des droits :</p>
<ul>
<li>par le formulaire de contact en ligne du Défenseur des droits ;</li>
<li>auprès du délégué du Défenseur des droits dans votre région ;</li>
<li>par courrier (gratuit, sans affranchissement) : Défenseur des droits, Libre réponse 71120,
75342 Paris CEDEX 07.</li>
</ul>
</main></body></html>"""


def accessibility_router() -> APIRouter:
    router = APIRouter()

    @router.get(ROUTE, include_in_schema=False)
    def declaration() -> HTMLResponse:
        return HTMLResponse(DECLARATION, headers={"Content-Security-Policy": _CSP, "X-Content-Type-Options": "nosniff",
                                                  "Cache-Control": "private, max-age=3600"})

    return router
