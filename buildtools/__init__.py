"""Build-time helpers for setup.py (not part of the installed package)."""
