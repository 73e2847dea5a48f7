"""`discovery report`: the matter report. What the library did for the matter (productions
with their Bates ranges, legal holds, locate searches with their authority hashes,
attestations of the custodians involved, protective orders and redactions, the people
estimate with its range, the policy version and the audit head) and what it holds (faces by
jurisdiction and signal, vector dates by month, sources by website), as tables and plots in one
HTML file and, on request, a PDF laid out as a document (reportlab, DejaVu fonts embedded).

The report is a list of :data:`SECTIONS`; each says its title, its table and, optionally, its
plot and an introduction. Adding a section is adding one :class:`Section` to the list (and, if
it needs data the others do not, an entry in ``ReportData.extra`` filled by the caller).

Every copy names the audit log's head it was made at (HTML footer, PDF footer on every page),
so each copy of a report witnesses that head (see faceledger.audit.anchor).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: files only
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from sqlalchemy import Connection  # noqa: E402

from faceledger.audit.anchor import AuditHead  # noqa: E402
from faceledger.catalog import discovery as catalog_discovery  # noqa: E402

__all__ = [
    "ReportData",
    "Section",
    "SECTIONS",
    "gather",
    "audit_head_line",
    "render_html",
    "render_pdf",
    "write_sha256",
]


@dataclass
class ReportData:
    """Everything a report shows; gathered read-only from the catalog and the audit log."""

    matter: str
    generated_at: str
    by_jurisdiction: list[dict[str, Any]] = field(default_factory=list)
    vector_months: list[tuple[str, int, int]] = field(default_factory=list)
    by_website: list[dict[str, Any]] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    #: The audit log's head when the counts were read (shown in the footer).
    audit_head: AuditHead | None = None
    policy_version: int | None = None
    productions: list[dict[str, Any]] = field(default_factory=list)
    holds: list[dict[str, Any]] = field(default_factory=list)
    locates: list[dict[str, Any]] = field(default_factory=list)
    attestations: list[dict[str, Any]] = field(default_factory=list)
    #: faces, estimate, low, high of the faces in the matter's productions (None: none).
    people: dict[str, Any] | None = None
    orders: list[dict[str, Any]] = field(default_factory=list)
    #: Websites with a sensitivity: redacted under an order, else flagged.
    sensitive_sites: list[dict[str, Any]] = field(default_factory=list)
    #: Data of sections added later, by section key.
    extra: dict[str, Any] = field(default_factory=dict)


def gather(
    conn: Connection,
    matter: str,
    generated_at: str,
    top_sites: int = 25,
    audit_head: AuditHead | None = None,
) -> ReportData:
    """The library-wide counts: per (region, signal), per month of vector collection and per
    website (the caller adds what is the matter's own)."""
    data = ReportData(matter, generated_at, audit_head=audit_head)
    data.totals = catalog_discovery.report_totals(conn)
    data.by_jurisdiction = catalog_discovery.report_by_jurisdiction(conn)
    data.vector_months = catalog_discovery.report_vector_months(conn)
    data.by_website = catalog_discovery.report_by_website(conn, top_sites)
    return data


# -- plots ------------------------------------------------------------------------------------
def _outside_legend(ax: plt.Axes) -> None:
    # Right of the plot area, never over the bars.
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, frameon=False)


def _jurisdiction_chart(data: ReportData) -> plt.Figure:
    rows = data.by_jurisdiction
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.35 * len(rows) + 1)))
    labels = [f"{r['region']} · {r['signal']}" for r in rows]
    searchable = [r["faces"] - r["blocked_faces"] for r in rows]
    ax.barh(labels, searchable, label="searchable", color="#4C72B0")
    ax.barh(labels, [r["blocked_faces"] for r in rows], left=searchable, label="blocked",
            color="#C44E52")  # fmt: skip
    ax.set_xlabel("faces")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.invert_yaxis()
    _outside_legend(ax)
    return fig


def _months_chart(data: ReportData) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(8, 3.5))
    months = [m for m, _, _ in data.vector_months]
    ax.bar(months, [n - b for _, n, b in data.vector_months], color="#4C72B0",
           label="searchable")  # fmt: skip
    ax.bar(months, [b for _, _, b in data.vector_months],
           bottom=[n - b for _, n, b in data.vector_months], color="#C44E52", label="blocked")
    ax.set_ylabel("face vectors collected")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.tick_params(axis="x", rotation=45)
    _outside_legend(ax)
    return fig


def _websites_chart(data: ReportData) -> plt.Figure:
    rows = data.by_website
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.3 * len(rows) + 1)))
    ax.barh([s["website"] for s in rows], [s["photos"] for s in rows], color="#55A868")
    ax.invert_yaxis()
    ax.set_xlabel("photos")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


# -- sections ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Section:
    """One part of the report: a title, a table, and optionally a plot and an introduction."""

    key: str
    title: str
    headers: tuple[str, ...]
    rows: Callable[[ReportData], list[tuple[Any, ...]]]
    chart: Callable[[ReportData], plt.Figure] | None = None
    intro: Callable[[ReportData], str] | None = None


def _summary(d: ReportData) -> list[tuple[Any, ...]]:
    people = (f"{d.people['estimate']} (range {d.people['low']}-{d.people['high']}) among "
              f"{d.people['faces']} faces" if d.people else "no faces produced yet")  # fmt: skip
    return [
        ("matter", d.matter),
        ("generated (UTC)", d.generated_at),
        ("policy version in force", d.policy_version if d.policy_version is not None else
         "the default policy (none applied)"),
        ("audit head", d.audit_head.describe() if d.audit_head else "the log is empty"),
        ("productions", len(d.productions)),
        ("documents produced", sum(p["documents"] or 0 for p in d.productions)),
        ("people in the productions", people),
        ("legal holds", len(d.holds)),
        ("locate searches", len(d.locates)),
        ("protective orders", len(d.orders)),
        *[(k.replace("_", " ") + " (library)", v) for k, v in d.totals.items()],
    ]  # fmt: skip


def _people_intro(d: ReportData) -> str:
    if not d.people:
        return "No photos have been produced in this matter, so no estimate is made."
    return (f"Distinct people among the faces of the photos produced in this matter: about "
            f"{d.people['estimate']}, between {d.people['low']} and {d.people['high']} "
            f"({d.people['method']}).")  # fmt: skip


def _redaction_intro(d: ReportData) -> str:
    if d.orders:
        return ("Sites whose sensitivity a protective order of this matter lists are named "
                "by a redaction marker in every production, report, export and source listing "
                "of the matter.")  # fmt: skip
    if d.sensitive_sites:
        return ("No protective order is recorded for this matter; the sites below have a "
                "sensitivity in the registry and are flagged, not redacted.")  # fmt: skip
    return "No protective order is recorded, and no site of the registry has a sensitivity."


def _nexus_intro(d: ReportData) -> str:
    nexus = d.extra.get("nexus")
    if not nexus or not nexus["located"]:
        return "No locate search has found photos for this matter yet, so no ties are shown."
    return ("What ties each photo located for this matter to each region the policy blocks "
            "(GPS, uploader, publisher, subject, operator): " + "; ".join(nexus["summaries"])
            + ".")  # fmt: skip


def _usage_intro(d: ReportData) -> str:
    return ("Searches by customer class (government, private, operator staff) per month, from "
            "the audit log, with each user's customer type as it was at the time of the search; "
            "`discovery usage --json` lists the audit entries behind each figure.")


def _compliance_intro(d: ReportData) -> str:
    return ("Each rule checked over the whole history against the change log and the audit "
            "log (both hash chains verified first); `discovery compliance --rule ... --json` "
            "lists the violations and the entries that support them.")


#: The report, in order. Another section is one more entry here.
SECTIONS: list[Section] = [
    Section("summary", "The matter", ("item", "value"), _summary),
    Section("productions", "Productions", ("id", "volume", "Bates range", "documents",
            "profile", "produced by", "produced at", "audit head", "redactions"),
            lambda d: [(p["production_id"], p["volume"], f"{p['first_bates']}-{p['last_bates']}",
                        p["documents"], p["profile"], p["produced_by"], p["produced_at"],
                        p["audit_head_id"], p["redactions"]) for p in d.productions]),
    Section("holds", "Legal holds", ("id", "scope", "created by", "created at", "released"),
            lambda d: [(h["id"], h["scope"], h["created_by"], h["created_at"],
                        h["released_at"] or "in force") for h in d.holds]),
    Section("locates", "Locate searches", ("time", "actor", "authority SHA-256", "vault",
            "photos found"),
            lambda d: [(x["at"], x["actor"], x["authority_sha256"] or "none recorded",
                        "yes" if x["include_vault"] else "no", x["photos"]) for x in d.locates]),
    Section("attestations", "Attestations of the custodians involved",
            ("user", "role", "signed", "expires", "statement SHA-256"),
            lambda d: [(a["user"], a["role"], a["signed_at"], a["expires_at"] or "no expiry",
                        a["sha256"]) for a in d.attestations]),
    Section("people", "People estimate", ("estimate", "low", "high", "faces"),
            lambda d: [(d.people["estimate"], d.people["low"], d.people["high"],
                        d.people["faces"])] if d.people else [], intro=_people_intro),
    Section("redactions", "Protective orders and redactions",
            ("order / site", "categories", "file SHA-256 / status", "recorded"),
            lambda d: [(f"order {o['id']}", ", ".join(o["categories"]), o["file_sha256"],
                        o["recorded_at"]) for o in d.orders]
            + [(s["website"], s["sensitivity"], s["status"], "") for s in d.sensitive_sites],
            intro=_redaction_intro),
    Section("nexus", "Nexus: what ties the located photos to each jurisdiction",
            ("region", "photo", "signals", "GPS", "uploader", "publisher", "subject",
             "ingest runs", "operator"),
            lambda d: list((d.extra.get("nexus") or {}).get("rows", [])), intro=_nexus_intro),
    Section("usage", "Searches by customer class",
            ("month", "class", "user", "customer type", "region", "searches", "probes",
             "matches"),
            lambda d: [(r["period"], r["class"], r["user"], r["customer_type"] or "",
                        r["region"] or "", r["searches"], r["probes"], r["matches"])
                       for r in d.extra.get("usage", [])], intro=_usage_intro),
    Section("compliance", "Compliance with the rules",
            ("rule", "held", "violations", "first violation"),
            lambda d: [tuple(r) for r in d.extra.get("compliance", [])],
            intro=_compliance_intro),
    Section("jurisdictions", "Faces by jurisdiction and signal",
            ("region", "signal", "faces", "photos", "blocked faces"),
            lambda d: [(r["region"], r["signal"], r["faces"], r["photos"], r["blocked_faces"])
                       for r in d.by_jurisdiction], chart=_jurisdiction_chart),
    Section("vector_dates", "Face vector collection dates",
            ("month", "face vectors", "of them blocked"), lambda d: list(d.vector_months),
            chart=_months_chart),
    Section("websites", "Sources by website",
            ("website", "publisher", "publisher region", "photos", "provenance rows",
             "sensitivity"),
            lambda d: [(s["website"], s["publisher"], s["publisher_region"], s["photos"],
                        s["source_rows"], s.get("sensitivity")) for s in d.by_website],
            chart=_websites_chart),
]  # fmt: skip


def audit_head_line(head: AuditHead | None) -> str:
    """The footer's sentence naming the audit head (or saying there was none)."""
    if head is None:
        return "Made when the audit log was empty."
    return (
        f"Made at audit log entry {head.id} (SHA-256 {head.hash}, {head.at}); "
        "`faceledger audit verify --anchor` checks the log still holds it."
    )


def _png(fig: plt.Figure, dpi: int = 110) -> bytes:
    buffer = io.BytesIO()
    # bbox_inches="tight" keeps the legend, which sits outside the axes, in the picture.
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def _table(rows: list[tuple[Any, ...]], headers: tuple[str, ...]) -> str:
    cells = ["<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>"
             for row in rows]  # fmt: skip
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(cells)}</tbody></table>"


def render_html(data: ReportData, sections: list[Section] | None = None) -> str:
    """One self-contained HTML page (plots embedded as PNG)."""
    body = []
    for section in SECTIONS if sections is None else sections:
        part = f"<section id='{section.key}'><h2>{html.escape(section.title)}</h2>"
        if section.intro is not None:
            part += f"<p>{html.escape(section.intro(data))}</p>"
        if section.chart is not None:
            image = base64.b64encode(_png(section.chart(data))).decode("ascii")
            part += (f"<img alt='{html.escape(section.title)}' "
                     f"src='data:image/png;base64,{image}'>")  # fmt: skip
        rows = section.rows(data)
        part += _table(rows, section.headers) if rows else "<p>None.</p>"
        body.append(part + "</section>")
    title = html.escape(f"faceledger matter report — {data.matter}")
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;"
        "padding:0 1rem}table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid "
        "#ccc;padding:.25rem .5rem;text-align:left;overflow-wrap:anywhere}img{max-width:100%}"
        "</style></head><body>"
        f"<h1>{title}</h1><p>Generated {html.escape(data.generated_at)} (UTC).</p>"
        + "".join(body)
        + f"<footer><p>{html.escape(audit_head_line(data.audit_head))}</p></footer>"
        + "</body></html>"
    )


# -- PDF --------------------------------------------------------------------------------------
_FONT, _BOLD = "DejaVuSans", "DejaVuSans-Bold"


def _register_fonts() -> None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    if _FONT in pdfmetrics.getRegisteredFontNames():
        return
    # TrueType fonts that ship with matplotlib: embedded, and they cover þ, ¶, ® and more.
    fonts = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    pdfmetrics.registerFont(TTFont(_FONT, str(fonts / "DejaVuSans.ttf")))
    pdfmetrics.registerFont(TTFont(_BOLD, str(fonts / "DejaVuSans-Bold.ttf")))


def render_pdf(data: ReportData, path: Path, sections: list[Section] | None = None) -> None:
    """The report as a PDF document: a title page, then each section (plot and a table that
    splits across pages with its header repeated); page numbers and the audit head in the
    footer of every page."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import cm
    from reportlab.pdfgen import canvas as pdf_canvas
    from reportlab.platypus import (
        Image,
        PageBreak,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    _register_fonts()
    body = ParagraphStyle("body", fontName=_FONT, fontSize=9.5, leading=12.5)
    small = ParagraphStyle("small", parent=body, fontSize=7.5, leading=9.5)
    tiny = ParagraphStyle("tiny", parent=body, fontSize=6.5, leading=8)
    heading = ParagraphStyle("heading", parent=body, fontName=_BOLD, fontSize=14, leading=18,
                             spaceBefore=10, spaceAfter=6)  # fmt: skip
    title = ParagraphStyle("title", parent=heading, fontSize=22, leading=28, spaceAfter=18)
    width = A4[0] - 4 * cm
    footer = audit_head_line(data.audit_head)

    class NumberedCanvas(pdf_canvas.Canvas):
        """Writes "page N of M" once the page count is known (pages are kept until save)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict] = []

        def showPage(self) -> None:  # noqa: N802 - reportlab's name
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            for state in self._pages:
                self.__dict__.update(state)
                self._footer(len(self._pages))
                super().showPage()
            super().save()

        def _footer(self, count: int) -> None:
            self.setFont(_FONT, 7)
            self.setFillColor(colors.grey)
            # The head line is long (a 64-digit hash): two lines at the foot of the page.
            cut = footer.find("; ")
            lines = [footer[: cut + 1], footer[cut + 2 :]] if cut > 0 else [footer]
            for n, line in enumerate(lines):
                self.drawString(2 * cm, 1.3 * cm - n * 9, line)
            self.drawRightString(A4[0] - 2 * cm, 1.9 * cm,
                                 f"page {self._pageNumber} of {count}")  # fmt: skip

    story: list[Any] = [
        Spacer(1, 5 * cm),
        Paragraph("faceledger matter report", title),
        Paragraph(html.escape(data.matter), heading),
        Paragraph(f"Generated {html.escape(data.generated_at)} (UTC)", body),
        Paragraph(f"Policy version in force: {data.policy_version or 'default'}", body),
        Spacer(1, 1 * cm),
        Paragraph(html.escape(footer), small),
        PageBreak(),
    ]
    for section in SECTIONS if sections is None else sections:
        story.append(Paragraph(html.escape(section.title), heading))
        if section.intro is not None:
            story.append(Paragraph(html.escape(section.intro(data)), body))
            story.append(Spacer(1, 4))
        if section.chart is not None:
            png = _png(section.chart(data), dpi=150)
            image = Image(io.BytesIO(png))
            scale = min(1.0, width / image.imageWidth, (12 * cm) / image.imageHeight)
            image.drawWidth, image.drawHeight = image.imageWidth * scale, image.imageHeight * scale
            story += [image, Spacer(1, 6)]
        rows = section.rows(data)
        if not rows:
            story.append(Paragraph("None.", body))
            continue
        style = small if len(section.headers) <= 6 else tiny
        cells = [[Paragraph(html.escape(h), style) for h in section.headers]]
        # Paragraph cells wrap long values (hashes, URLs) instead of running off the page.
        cells += [[Paragraph(html.escape(_cell(v)), style) for v in row] for row in rows]
        table = Table(cells, repeatRows=1, colWidths=_column_widths(section.headers, rows, width),
                      hAlign="LEFT")  # fmt: skip
        table.setStyle(TableStyle([
            ("GRID", (0, 0), (-1, -1), 0.25, colors.lightgrey),
            ("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LEFTPADDING", (0, 0), (-1, -1), 3),
            ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ]))  # fmt: skip
        story.append(table)
    document = SimpleDocTemplate(
        str(path), pagesize=A4, leftMargin=2 * cm, rightMargin=2 * cm, topMargin=2 * cm,
        bottomMargin=2.6 * cm, title=f"faceledger matter report — {data.matter}",
        author="faceledger", invariant=1,
    )  # fmt: skip
    document.build(story, canvasmaker=NumberedCanvas)


def _column_widths(headers: tuple[str, ...], rows: list[tuple[Any, ...]],
                   width: float) -> list[float]:  # fmt: skip
    """Widths in proportion to each column's longest word or value (capped), so a column of
    Bates numbers is wide enough for them and a column of small counts stays narrow."""
    def need(column: int) -> int:
        values = [_cell(row[column]) for row in rows[:200]]
        words = [len(w) for w in headers[column].split()] or [0]
        return min(max(max(words) + 1, *(len(v) for v in values), 5), 30)

    needs = [need(i) for i in range(len(headers))]
    return [width * n / sum(needs) for n in needs]


def write_sha256(path: Path) -> Path:
    """Write ``<path>.sha256`` beside ``path`` (``sha256sum -c`` format); returns its path."""
    import hashlib

    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    target = Path(f"{path}.sha256")
    target.write_text(f"{digest}  {Path(path).name}\n", encoding="ascii")
    return target
