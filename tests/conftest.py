"""Run-wide hooks.  (The browser tests' fixtures are in e2e/conftest.py.)"""

from __future__ import annotations


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """List what the browser tests measured (their ``measured`` fixture) at the end of every run.

    Here, not in e2e/conftest.py: with pytest-xdist (``make test``) the summary is written by the
    controlling process, which loads this file but not the e2e package's; the measurements reach
    it with each test's report (``user_properties``)."""
    lines = [f"{rep.nodeid.split('::')[-1]}: {text}"
             for reports in terminalreporter.stats.values() for rep in reports
             if getattr(rep, "when", None) == "call"
             for key, text in getattr(rep, "user_properties", ()) if key == "measured"]
    if lines:
        terminalreporter.section("measured in the browser (not asserted)")
        for line in lines:
            terminalreporter.write_line(line)
