"""The paper/live loop, split by concern behind ports the engine owns (see ``ports.py``).

``node.py`` is the loop; ``sessions.py`` market time and bar sourcing; ``trader.py`` the
streaming driver; ``planning.py``, ``book.py``, ``execution.py``, ``reconcile.py`` a
decision's orders against the broker's book; ``journal.py`` the checkpoint and the decision
journal in one atomic write; ``telemetry.py`` the operator's lines and bus events;
``config.py`` the ``[paper]`` section; ``cli.py`` the venue-free command; ``testing.py`` an
in-memory venue for unit tests; ``paper_report.py`` (``regime-engine paper-report``) and
``tracking.py`` how paper tracked the backtest (replay, shortfall, the gap's split). No
venue is imported here: ``brokers/cli.py`` picks one.
"""
