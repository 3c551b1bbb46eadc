"""The sponsor's study dashboard (issue #8 item 7): enrolment, screening, data management and
the seed trials' primary endpoints.

``selectors.py`` reads the database (scoped to the viewer, blinding decided once) into frozen
dataclasses; ``km.py`` estimates Kaplan-Meier curves (scipy) and ``svg.py`` draws the pictures;
neither imports Django, so this package's ``__init__`` imports nothing either.
"""
