"""The command line: Typer commands by group, each one call into ``faceledger.app``.

``main`` holds the root command and the library commands (init, ingest, search, show, stats,
reindex, serve); ``policy`` the sites, policy and opt-out groups; ``discovery`` the discovery
group; ``governance`` users,
attestations, holds, retention, erasure, consent, audit and keys; ``common`` the shared options
and the one place library errors become exit codes.
"""

from faceledger.cli.main import app

__all__ = ["app"]
