"""Shared by the bench scripts: the QUICK switch, where results go, and the report writer (``report.py``)."""
