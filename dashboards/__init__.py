"""Plotly figures, the static HTML report and the live Dash dashboard of a study.

Kept light on purpose: importing ``dashboards`` imports neither plotly nor dash.

- :mod:`dashboards.db`: a read-only view of a store (lock-free reads on SQLite).
- :mod:`dashboards.data`: the data step, functions that return plain pandas tables.
- :mod:`dashboards.cells`: a genotype as a graph of nodes and labelled edges (per space).
- :mod:`dashboards.figures`: the drawing step, tables in, plotly Figures out.
- :mod:`dashboards.report`: one self-contained HTML file per study.
- :mod:`dashboards.app`: the live dashboard (Dash).
- :mod:`dashboards.browser`: a tiny headless-Chromium driver (tests and benchmarks).
"""
