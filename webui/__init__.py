"""The web app's pieces that do not need Gradio: HTML rendering, the catalog view, the document route.

``app.py`` wires them into Gradio; everything here is plain Python (and FastAPI for the route),
so it is tested without a browser.
"""
