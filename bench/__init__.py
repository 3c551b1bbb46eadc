"""The benchmark of issue #9: floor pages (``views.py``) and the harness (``run.py``)."""
