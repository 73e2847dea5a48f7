"""`make screenshots`: PNGs of each console page, at desktop and phone width, for the README.

Builds the browser tests' library from ../shared/data (tests/console_support.py), serves it on
127.0.0.1, signs in as each role in Debian's chromium (Playwright) and photographs each page.
Writes OUT_DIR/<page>-desktop.png and OUT_DIR/<page>-phone.png. CI never runs this.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from console_support import DATASET, PASSWORD, start  # noqa: E402

SIZES = {"desktop": (1280, 860), "phone": (390, 844)}


def _shoot(page, out: Path, name: str) -> None:
    for _ in range(100):  # every crop loaded (wait_for_function would need eval: the CSP forbids)
        if page.evaluate("() => [...document.images].every(i => i.complete)"):
            break
        page.wait_for_timeout(100)
    for label, (width, height) in SIZES.items():
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(out / f"{name}-{label}.png"), full_page=True)
        print(f"wrote {out / f'{name}-{label}.png'}")


def _sign_in(browser, base_url: str, name: str):
    context = browser.new_context(base_url=base_url)
    page = context.new_page()
    page.goto("/console/sign-in")
    page.fill("input[name=name]", name)
    page.fill("input[name=secret]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    return context, page


def main(out: Path) -> None:
    """Photograph every console page into ``out``."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("no chromium on PATH: apt-get install -y chromium")
    data = ROOT.parent / "shared" / "data" / Path(*DATASET)
    if not data.is_dir():
        sys.exit(f"shared test data not found at {data}")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="faceledger-shots-") as folder:
        live = start(Path(folder), data, optout_min_seconds="0")
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
                context = browser.new_context(base_url=live.base_url)
                page = context.new_page()
                page.goto("/console/sign-in")
                _shoot(page, out, "sign-in")
                page.goto("/opt-out")
                _shoot(page, out, "opt-out")
                page.set_input_files("input[name=selfie]", str(data / "img21.jpg"))
                page.select_option("select[name=region]", "US-IL")
                page.fill("input[name=name]", "A. Person")
                page.click("button[type=submit]")
                page.wait_for_selector(".receipt")
                _shoot(page, out, "opt-out-receipt")
                context.close()

                context, page = _sign_in(browser, live.base_url, "sam")
                page.set_input_files("input[name=photo]", str(data / "img2.jpg"))
                page.click("form.card button[type=submit]")
                page.wait_for_selector("section.face")
                _shoot(page, out, "searcher-search")
                context.close()

                context, page = _sign_in(browser, live.base_url, "cara")
                page.goto("/console/discovery?blocked=blocked&jurisdiction=US-IL&show=sources")
                _shoot(page, out, "custodian-discovery")
                page.goto("/console/locate")
                page.set_input_files("input[name=photo]", str(data / "img2.jpg"))
                page.fill("form.card >> nth=0 >> input[name=matter]", "Doe v. Acme")
                page.check("input[name=include_vault]")
                page.click("form.card >> nth=0 >> button[type=submit]")
                page.wait_for_selector("article.match")
                _shoot(page, out, "custodian-locate")
                for path, name in (("/console/holds", "custodian-holds"),
                                   ("/console/attest", "custodian-attest")):  # fmt: skip
                    page.goto(path)
                    _shoot(page, out, name)
                context.close()

                context, page = _sign_in(browser, live.base_url, "audrey")
                page.goto("/console/audit")
                _shoot(page, out, "auditor-audit")
                context.close()

                context, page = _sign_in(browser, live.base_url, "owner")
                for path, name in (("/console/admin/users", "admin-users"),
                                   ("/console/admin/sites", "admin-sites"),
                                   ("/console/admin/policy", "admin-policy"),
                                   ("/console/admin/runs?run=1", "admin-runs")):  # fmt: skip
                    page.goto(path)
                    _shoot(page, out, name)
                context.close()
                browser.close()
        finally:
            live.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))
