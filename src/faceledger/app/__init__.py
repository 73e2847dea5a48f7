"""The use-case layer: each operation a user can ask for (authorize → one transaction → audit).

Both front ends (the CLI and the web service) call these; no rule lives in a front end.
"""
