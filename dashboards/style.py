"""The look shared by the static report and the live dashboard: one style sheet, state colours."""

from __future__ import annotations

STATE_COLORS = {
    "COMPLETE": "#2a9d8f",
    "PRUNED": "#f4a261",
    "FAILED": "#e63946",
    "RUNNING": "#457b9d",
    "INTERRUPTED": "#6c5b7b",
}
"""One colour per trial state, in figures and tables alike."""

CSS = """
*, *::before, *::after { box-sizing: border-box; }
html, body { margin: 0; overflow-x: hidden; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2933;
       background: #f4f6f8; font-size: 14px; line-height: 1.45; }
.page { max-width: 1880px; margin: 0 auto; padding: 16px 24px 48px; }
.topbar { display: flex; align-items: baseline; gap: 16px; flex-wrap: wrap; margin-bottom: 12px; }
.topbar h1 { font-size: 22px; margin: 0; font-weight: 650; }
.topbar .muted { color: #616e7c; font-size: 13px; overflow-wrap: anywhere; }
.card { background: #fff; border: 1px solid #e4e7eb; border-radius: 8px; padding: 14px 16px;
        margin: 0 0 14px; min-width: 0; }
.card h2 { font-size: 16px; margin: 0 0 10px; font-weight: 600; }
.summary { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr));
           gap: 10px 18px; margin: 0; }
.summary div { min-width: 0; }
.summary dt { font-size: 11px; text-transform: uppercase; letter-spacing: .04em; color: #7b8794; }
.summary dd { margin: 2px 0 0; font-size: 15px; font-weight: 550; overflow-wrap: anywhere; }
.summary dd.best { color: #0b7a6f; font-size: 18px; }
.best-arch { display: flex; gap: 16px; flex-wrap: wrap; align-items: flex-start; }
.best-arch .drawing { flex: 3 1 520px; min-width: 0; }
.best-arch .notation { flex: 1 1 260px; min-width: 0; }
pre.notation-text { background: #f6f8fa; border: 1px solid #e4e7eb; border-radius: 6px;
       padding: 10px; margin: 0; white-space: pre-wrap; overflow-wrap: anywhere;
       font-size: 12.5px; max-height: 420px; overflow-y: auto; }
.panel-grid { display: grid; grid-template-columns: minmax(0, 1fr); gap: 0; }
.note { color: #616e7c; font-style: italic; margin: 4px 0 0; }
.notes { color: #616e7c; font-size: 13px; margin: 0; padding-left: 18px; }
.ag-center-cols-viewport { min-height: 0 !important; }
.state { padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; color: #fff; }
.state-INTERRUPTED { background: repeating-linear-gradient(45deg, #6c5b7b, #6c5b7b 4px,
       #84739a 4px, #84739a 8px); }
"""
