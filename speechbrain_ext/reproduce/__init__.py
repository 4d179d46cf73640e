"""Reproduce any cell of the four papers' tables with one command
(``python -m speechbrain_ext.reproduce PAPER TABLE ROW [COLUMN]``).

``registry/`` holds every numbered table as data (``registry.py`` reads it),
``chain.py`` turns a cell into recipe commands and runs them with reuse,
``metrics.py`` reads our value, ``report.py`` keeps the results file and the
Markdown report, ``checks.py`` checks checkpoints and the chains' YAMLs.
"""
