"""`discovery report`: counts by jurisdiction and signal, vector dates over time, sources by
website — each as a plot and a table, in one HTML file (and a PDF, through matplotlib). The
footer names the audit log's head the report was made at, so each copy of a report witnesses
that head (see faceledger.audit.anchor)."""

from __future__ import annotations

import base64
import html
import io
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: files only
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.backends.backend_pdf import PdfPages  # noqa: E402
from sqlalchemy import Connection  # noqa: E402

from faceledger.audit.anchor import AuditHead  # noqa: E402
from faceledger.catalog import discovery as catalog_discovery  # noqa: E402

__all__ = ["ReportData", "gather", "audit_head_line", "render_html", "render_pdf"]


@dataclass
class ReportData:
    """Everything a report shows; gathered read-only from the catalog."""

    matter: str
    generated_at: str
    by_jurisdiction: list[dict[str, Any]] = field(default_factory=list)
    vector_months: list[tuple[str, int, int]] = field(default_factory=list)
    by_website: list[dict[str, Any]] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    #: The audit log's head when the counts were read (shown in the footer).
    audit_head: AuditHead | None = None


def gather(
    conn: Connection,
    matter: str,
    generated_at: str,
    top_sites: int = 25,
    audit_head: AuditHead | None = None,
) -> ReportData:
    """Counts per (region, signal), per month of vector collection and per website."""
    data = ReportData(matter, generated_at, audit_head=audit_head)
    data.totals = catalog_discovery.report_totals(conn)
    data.by_jurisdiction = catalog_discovery.report_by_jurisdiction(conn)
    data.vector_months = catalog_discovery.report_vector_months(conn)
    data.by_website = catalog_discovery.report_by_website(conn, top_sites)
    return data


def _figures(data: ReportData) -> list[tuple[str, plt.Figure]]:
    figures = []
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.35 * len(data.by_jurisdiction) + 1)))
    labels = [f"{r['region']} · {r['signal']}" for r in data.by_jurisdiction]
    ax.barh(labels, [r["faces"] - r["blocked_faces"] for r in data.by_jurisdiction],
            label="searchable", color="#4C72B0")
    ax.barh(labels, [r["blocked_faces"] for r in data.by_jurisdiction],
            left=[r["faces"] - r["blocked_faces"] for r in data.by_jurisdiction],
            label="blocked", color="#C44E52")  # fmt: skip
    ax.set_xlabel("faces")
    ax.set_title("Faces by jurisdiction and signal")
    ax.invert_yaxis()
    ax.legend()
    fig.tight_layout()
    figures.append(("Faces by jurisdiction and signal", fig))

    fig, ax = plt.subplots(figsize=(8, 3.5))
    months = [m for m, _, _ in data.vector_months]
    ax.bar(months, [n for _, n, _ in data.vector_months], color="#4C72B0", label="all faces")
    ax.bar(months, [b for _, _, b in data.vector_months], color="#C44E52", label="blocked")
    ax.set_ylabel("face vectors collected")
    ax.set_title("Face vector collection dates, by month")
    ax.tick_params(axis="x", rotation=45)
    ax.legend()
    fig.tight_layout()
    figures.append(("Face vector collection dates", fig))

    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.3 * len(data.by_website) + 1)))
    ax.barh([s["website"] for s in data.by_website], [s["photos"] for s in data.by_website],
            color="#55A868")  # fmt: skip
    ax.invert_yaxis()
    ax.set_xlabel("photos")
    ax.set_title("Sources by website")
    fig.tight_layout()
    figures.append(("Sources by website", fig))
    return figures


def _png(fig: plt.Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _table(rows: list[dict[str, Any]] | list[tuple], headers: list[str]) -> str:
    cells = []
    for row in rows:
        values = row.values() if isinstance(row, dict) else row
        cells.append("<tr>" + "".join(f"<td>{html.escape(str('' if v is None else v))}</td>"
                                      for v in values) + "</tr>")  # fmt: skip
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(cells)}</tbody></table>"


def audit_head_line(head: AuditHead | None) -> str:
    """The footer's sentence naming the audit head (or saying there was none)."""
    if head is None:
        return "Made when the audit log was empty."
    return (
        f"Made at audit log entry {head.id} (SHA-256 {head.hash}, {head.at}); "
        "`faceledger audit verify --anchor` checks the log still holds it."
    )


def render_html(data: ReportData) -> str:
    """One self-contained HTML page (plots embedded as PNG)."""
    figures = dict(_figures(data))
    sections = [
        ("Faces by jurisdiction and signal",
         _table(data.by_jurisdiction, ["region", "signal", "faces", "photos", "blocked faces"])),
        ("Face vector collection dates",
         _table(data.vector_months, ["month", "face vectors", "of them blocked"])),
        ("Sources by website",
         _table(data.by_website, ["website", "publisher", "publisher region", "photos",
                                  "provenance rows"])),
    ]  # fmt: skip
    body = []
    for title, table in sections:
        image = _png(figures[title])
        body.append(f"<h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' "
                    f"src='data:image/png;base64,{image}'>{table}")  # fmt: skip
    totals = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in data.totals.items())
    title = html.escape(f"faceledger discovery report — {data.matter}")
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;"
        "padding:0 1rem}table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid "
        "#ccc;padding:.25rem .5rem;text-align:left}img{max-width:100%}</style></head><body>"
        f"<h1>{title}</h1><p>Generated {html.escape(data.generated_at)}. {totals}.</p>"
        + "".join(body)
        + f"<footer><p>{html.escape(audit_head_line(data.audit_head))}</p></footer>"
        + "</body></html>"
    )


def render_pdf(data: ReportData, path: Path) -> None:
    """The plots and a summary page as a PDF (matplotlib's PDF backend)."""
    with PdfPages(path) as pdf:
        fig = plt.figure(figsize=(8.27, 11.69))
        lines = [f"faceledger discovery report — {data.matter}", f"Generated {data.generated_at}",
                 ""] + [f"{k.replace('_', ' ')}: {v}" for k, v in data.totals.items()]
        lines += ["", "Faces by jurisdiction and signal:"] + [
            f"  {r['region']:<8} {r['signal']:<10} faces {r['faces']:>8}  blocked "
            f"{r['blocked_faces']:>8}" for r in data.by_jurisdiction]  # fmt: skip
        # Wrapped: the hash alone is most of an A4 line in 9 pt monospace.
        lines += ["", *textwrap.wrap(audit_head_line(data.audit_head), 80)]
        fig.text(0.05, 0.95, "\n".join(lines), va="top", family="monospace", fontsize=9)
        pdf.savefig(fig)
        plt.close(fig)
        for _, figure in _figures(data):
            pdf.savefig(figure)
            plt.close(figure)
