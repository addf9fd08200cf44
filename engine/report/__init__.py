"""Self-contained interactive HTML reports: :func:`engine.report.html.write_report` (the
tearsheet of a backtest) and :func:`engine.report.validation.write_validation_report`.

Modules: :mod:`.page` (the page), :mod:`.sections`, :mod:`.regime_sections`,
:mod:`.trade_sections` (the tearsheet's sections), :mod:`.significance` (the bootstrap in
plain words), :mod:`.tables` (HTML tables), :mod:`.plot` (Plotly specs, plotly.js embedded
once), :mod:`.common` (shared helpers), :mod:`.saved_run` (a run folder read back).
"""
