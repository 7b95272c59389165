"""Evaluation of the dialog engines: the conversation suites in YAML (`suites/`), the
runner that plays them against an engine, and the `aftercare eval` commands. The tests
run the same suites through the same runner."""
