"""`sizeup dashboard`: a live view of the store in a browser (app.py serves it; static/ holds its pages)."""

from sizeup.dashboard.app import create_app, serve

__all__ = ["create_app", "serve"]
