"""Self-contained HTML report (:func:`engine.report.html.write_report`)."""
