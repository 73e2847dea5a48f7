"""The web console in a real Chromium (Playwright): each role's main task, end to end.

Against a live `faceledger serve` on 127.0.0.1 over a library built from shared photos
(tests/console_support.py). Skipped with a reason where Chromium or Playwright is missing, and
a failure under CI=true (.ci/run installs Debian's chromium).
"""

from __future__ import annotations

import io
import os
import shutil
import zipfile
from pathlib import Path

import pytest
from conftest import shared_path
from console_support import DATASET, PASSWORD, start

#: Elements wider than the viewport (for the message of a failed phone-width check).
_WIDE = """() => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
  .slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + e.getBoundingClientRect().right)"""


def _fits_phone(page) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, page.evaluate(_WIDE)

pytestmark = pytest.mark.slow


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    reason = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        reason = "playwright is not installed (pip install -e '.[dev]')"
    if path is None:
        reason = reason or "no chromium on PATH (apt-get install -y chromium)"
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}: the browser tests must run under CI")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    chromium = _chromium()
    data = shared_path(*DATASET)
    server = start(tmp_path_factory.mktemp("console"), data, optout_min_seconds="0.3")
    server.chromium = chromium
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser(live):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=live.chromium, args=["--no-sandbox"])
        yield b
        b.close()


def _signed_in(browser, live, name: str, width: int = 1280):
    context = browser.new_context(base_url=live.base_url, accept_downloads=True,
                                  viewport={"width": width, "height": 900})  # fmt: skip
    # Server-side work (a production, a report) on a loaded 2-core runner can take longer than
    # Playwright's 30 s default; a page that never answers still fails, after 2 minutes.
    context.set_default_timeout(120_000)
    page = context.new_page()
    page.goto("/console/sign-in")
    page.fill("input[name=name]", name)
    page.fill("input[name=secret]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert "/console/sign-in" not in page.url, page.content()
    return context, page




def test_searcher_sees_matches_with_crops_and_no_blocked_face_or_server_path(browser, live):
    context, page = _signed_in(browser, live, "sam")
    try:
        assert page.url.endswith("/console/search")
        page.set_input_files("input[name=photo]", str(live.data / "img2.jpg"))
        page.click("form.card button[type=submit]")
        page.wait_for_selector("section.face")
        text = page.inner_text("main")
        # img1 is the same person and searchable; img4 (Illinois) is blocked and never shown.
        assert "cdn.example.org/img1.jpg" in text
        assert "img4.jpg" not in page.content()
        assert "probably the same person" in text or "very likely the same person" in text
        # The probe shows a numbered box per face found.
        assert page.locator("svg.probe-image rect").count() >= 1
        # Each crop is a real JPEG served by the console, and no server path is on the page.
        crops = page.locator("img.crop")
        assert crops.count() >= 1
        for _ in range(100):  # wait_for_function would need eval, which the CSP forbids
            if crops.evaluate_all("imgs => imgs.every(i => i.complete)"):
                break
            page.wait_for_timeout(100)
        widths = crops.evaluate_all("imgs => imgs.map(i => i.naturalWidth)")
        assert all(w > 20 for w in widths), widths
        html = page.content()
        assert str(live.library) not in html and "/photos/" not in html and "locator" not in html
        # Phone width: the page does not scroll sideways.
        _fits_phone(page)
    finally:
        context.close()
    crops_audited = live.audit("--action", "image.face", "--actor", "sam")
    assert crops_audited, "every crop served must be an audit entry"
    blocked = _blocked_face(live)
    assert all(blocked not in e["object_ids"]["faces"] for e in crops_audited)


def _blocked_face(live) -> int:
    import json

    rows = json.loads(live.cli("discovery", "vector-dates", "--blocked", "--json", user="cara"))
    assert len(rows) == 1
    return rows[0]["face_id"]


def test_searcher_cannot_fetch_a_blocked_face_crop(browser, live):
    context, page = _signed_in(browser, live, "sam")
    try:
        response = page.goto(f"/console/faces/{_blocked_face(live)}/crop.jpg")
        assert response.status == 404
    finally:
        context.close()


def test_custodian_discovery_locate_produce_and_report(browser, live, tmp_path):
    context, page = _signed_in(browser, live, "cara")
    try:
        assert page.url.endswith("/console/discovery")
        page.select_option("select[name=blocked]", "blocked")
        page.fill("input[name=jurisdiction]", "US-IL")
        page.select_option("select[name=show]", "sources")
        page.click("form.filters button[type=submit]")
        page.wait_for_load_state()
        text = page.inner_text("main")
        assert "cdn.example.org/img4.jpg" in text  # the blocked photo, for an attested custodian
        first_row = page.locator("table").first.locator("tbody tr").first.inner_text()
        assert "all" in first_row and "1" in first_row

        page.goto("/console/locate")
        page.set_input_files("input[name=photo]", str(live.data / "img2.jpg"))
        page.fill("form.card >> nth=0 >> input[name=matter]", "Doe v. Acme")
        authority = tmp_path / "order.txt"
        authority.write_text("Order of the court: locate the plaintiff's photos.\n")
        page.set_input_files("input[name=authority]", str(authority))
        page.check("input[name=include_vault]")
        page.click("form.card >> nth=0 >> button[type=submit]")
        page.wait_for_selector("article.match")
        located = page.inner_text("main")
        assert "blocked" in located and "Authority SHA-256" in located
        assert page.locator("article.match").count() >= 2  # img1 and the blocked img4

        page.fill("input[name=prefix] >> nth=0", "ACME")
        with page.expect_download(timeout=180_000) as info:
            page.click("text=Produce and download (zip) >> nth=0")
        archive = zipfile.ZipFile(io.BytesIO(Path(info.value.path()).read_bytes()))
        names = archive.namelist()
        assert any(n.endswith(".dat") or n.endswith(".DAT") for n in names), names
        assert any("MANIFEST" in n for n in names), names

        page.goto("/console/discovery")
        page.click("text=Estimate how many people")
        page.wait_for_load_state()
        assert "people (range" in page.inner_text("main")

        page.goto("/console/discovery")
        page.fill("form[action='/console/report'] input[name=matter]", "Doe v. Acme")
        page.click("form[action='/console/report'] button")
        page.wait_for_load_state()
        assert "Doe v. Acme" in page.content()

        page.goto("/console/holds")
        page.fill("input[name=matter]", "1:21-cv-00135")
        page.fill("input[name=scope]", "jurisdiction=US-IL")
        page.click("form.card button[type=submit]")
        page.goto("/console/holds")
        assert "1:21-cv-00135" in page.inner_text("table")
    finally:
        context.close()


def test_auditor_verifies_and_filters_the_log(browser, live):
    context, page = _signed_in(browser, live, "audrey", width=390)
    try:
        assert page.url.endswith("/console/discovery") or "/console/" in page.url
        page.goto("/console/audit")
        assert "Audit log intact" in page.inner_text("main")
        page.fill("input[name=action]", "session.sign_in")
        page.fill("input[name=actor]", "audrey")
        page.click("form.filters button[type=submit]")
        page.wait_for_load_state()
        rows = page.locator("table.audit tbody tr")
        assert rows.count() >= 1
        for i in range(rows.count()):
            assert "session.sign_in" in rows.nth(i).inner_text()
        _fits_phone(page)
        page.click("text=Witness the head now")
        page.wait_for_load_state()
        assert "hash" in page.inner_text("main")
    finally:
        context.close()


def test_admin_adds_a_user_issues_a_key_and_sees_runs(browser, live, tmp_path):
    context, page = _signed_in(browser, live, "owner")
    try:
        page.goto("/console/admin/users")
        page.fill("form.card input[name=name]", "newbie")
        page.select_option("form.card select[name=role]", "searcher")
        page.click("form.card button[type=submit]")
        page.goto("/console/admin/users")
        assert "newbie" in page.inner_text("table")
        page.locator("tr", has_text="newbie").locator("text=New key").click()
        page.wait_for_load_state()
        assert "flk_" in page.inner_text("main")  # the key, shown once
        page.goto("/console/admin/runs")
        page.click("table a >> nth=0")
        page.wait_for_load_state()
        assert "problem" in page.inner_text("main")
        page.goto("/console/admin/sites")
        sites = tmp_path / "sites.csv"
        sites.write_text("domain,publisher,publisher_region\nexample.org,Example Media,US-NY\n")
        page.set_input_files("input[name=file]", str(sites))
        page.click("form.card button[type=submit]")
        page.wait_for_load_state()
        assert "Sites imported" in page.inner_text("h1")
        page.goto("/console/admin/sites")
        assert "Example Media" in page.inner_text("table")
        page.goto("/console/admin/policy")
        assert "in force" in page.inner_text("main")
        page.click("text=Apply policy.yaml")
        page.wait_for_load_state()
        assert "Policy applied" in page.inner_text("h1")
        page.goto("/console/admin/policy")
        page.fill("input[name=organisation]", "Console Org")
        page.click("text=Publish at /policy")
        page.wait_for_load_state()
        page.goto("/policy")
        assert "Console Org" in page.content()
    finally:
        context.close()
    assert live.audit("--action", "sites.import", "--actor", "owner")


def test_public_opt_out_answers_with_a_receipt_only(browser, live):
    context = browser.new_context(base_url=live.base_url, viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        page.goto("/opt-out")
        _fits_phone(page)
        page.set_input_files("input[name=selfie]", str(live.data / "img21.jpg"))
        page.select_option("select[name=region]", "US-IL")
        page.fill("input[name=name]", "A. Person")
        page.fill("input[name=contact]", "a.person@example.org")
        page.click("button[type=submit]")
        page.wait_for_selector(".receipt")
        receipt = page.inner_text(".receipt")
        assert receipt.startswith("OPT-")
        text = page.inner_text("main")
        assert "match" not in text.lower() and "face " not in text.lower()
        page.click("text=biometric data retention and destruction policy")
        page.wait_for_load_state()
        assert "Biometric data retention and destruction policy" in page.content()
    finally:
        context.close()
    entries = live.audit("--actor", "public", "--action", "optout.submit")
    assert [e["details"]["receipt"] for e in entries] == [receipt]


@pytest.mark.parametrize("name", ["sam", "cara", "audrey", "owner"])
def test_every_page_of_each_role_works_at_phone_width(browser, live, name):
    context, page = _signed_in(browser, live, name, width=390)
    try:
        links = page.locator("header nav a").evaluate_all("links => links.map(a => a.pathname)")
        assert links and "/console/attest" in links
        for link in links:
            response = page.goto(link)
            assert response.status == 200, (link, page.inner_text("main"))
            _fits_phone(page)
        # Each signs their own attestation in the console session.
        page.goto("/console/attest")
        page.click("form.card button[type=submit]")
        page.wait_for_load_state()
        assert "Attestation signed" in page.inner_text("h1")
    finally:
        context.close()
    signed = [e for e in live.audit("--action", "attest", "--actor", name)]
    assert signed and signed[-1]["details"]["user"] == name
