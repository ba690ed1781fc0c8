"""Plotly figures, the static HTML report and the live Dash dashboard of a study.

Kept light on purpose: importing ``dashboards`` imports neither plotly nor dash.

- :mod:`dashboards.db`: a read-only view of a store (lock-free reads on SQLite).
- :mod:`dashboards.data`: the data step, functions that return plain pandas tables.
- :mod:`dashboards.thin`: what a big study's scatter and timeline draw (thinning, time bins).
- :mod:`dashboards.table`: the live trial table's pages, sorted and filtered in SQL.
- :mod:`dashboards.cells`: a genotype as a graph of nodes and labelled edges (per space).
- :mod:`dashboards.figures`: the drawing step, tables in, plotly Figures out.
- :mod:`dashboards.panels`: which panels a study page shows, explains or leaves out.
- :mod:`dashboards.summary` and :mod:`dashboards.fmt`: the summary header, values at their
  precision.
- :mod:`dashboards.style` and :mod:`dashboards.limits`: the shared look and drawing limits.
- :mod:`dashboards.report`: one self-contained HTML file for one or every study.
- :mod:`dashboards.page`, :mod:`dashboards.sources`, :mod:`dashboards.app`: the live dashboard
  (Dash, AG Grid): its page, its panels shared per store version, its callbacks.
- :mod:`dashboards.browser`: a tiny headless-Chromium driver (tests and benchmarks).
"""
