"""Drive Neo4j Browser in headless Chromium: connect, run a query, screenshot the result.

Used by the Browser smoke test and by ``benchmarks/neo4j_export.py --screenshot``. Needs
Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package (dev extra).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from hippo.errors import Neo4jError
from hippo.neo4j.server import ServerInfo

CHROMIUM = ("chromium", "chromium-browser")
CHROMEDRIVER = "chromedriver"


def browser_available() -> str | None:
    """None when headless Chromium can be driven here, else what is missing."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the selenium package is not installed (pip install -e '.[dev]')"
    if not any(shutil.which(c) for c in CHROMIUM) or not shutil.which(CHROMEDRIVER):
        return "chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"
    return None


def _driver(width: int, height: int) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    missing = browser_available()
    if missing:
        raise Neo4jError(f"cannot run headless Chromium: {missing}")
    opts = Options()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--window-size={width},{height}"):
        opts.add_argument(arg)
    opts.binary_location = next(str(shutil.which(c)) for c in CHROMIUM if shutil.which(c))
    return webdriver.Chrome(service=Service(str(shutil.which(CHROMEDRIVER))), options=opts)


def _wait(d: Any, css: str, timeout: float, what: str) -> Any:
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [e for e in d.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()]
        if found:
            return found
        time.sleep(0.3)
    raise Neo4jError(f"Neo4j Browser did not show {what} within {timeout:.0f} s")


def screenshot(server: ServerInfo, query: str, out: Path, *, width: int = 1400, height: int = 1000, settle: float = 6.0, timeout: float = 60.0) -> dict[str, Any]:
    """Open Browser on ``server``, log in, run ``query`` and save a PNG of the page to ``out``.

    Returns what the page showed: the number of drawn nodes and relationships and the fill
    colours of the nodes (to check the style was applied).
    """
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    d = _driver(width, height)
    try:
        d.get(server.browser_url)
        if server.auth:
            user = _wait(d, "input[data-testid=username]", timeout, "its login form")[0]
            user.clear()
            user.send_keys(server.user)
            d.find_element(By.CSS_SELECTOR, "input[data-testid=password]").send_keys(server.password)
            d.find_element(By.CSS_SELECTOR, "button[data-testid=connect]").click()
        _wait(d, "[data-testid=activeEditor]", timeout, "its editor")
        time.sleep(settle)  # the post-connect commands (style, guide) run now
        # Close the frames opened on connect so the result frame is on top.
        for btn in d.find_elements(By.CSS_SELECTOR, "article[data-testid=frame] button[title='Close']"):
            try:
                btn.click()
            except Exception:  # a frame closed by an earlier click
                pass
        editor = d.find_element(By.CSS_SELECTOR, "[data-testid=activeEditor] textarea, [data-testid=activeEditor] input")
        editor.send_keys(query.replace("\n", " "))
        editor.send_keys(Keys.CONTROL, Keys.ENTER)
        _wait(d, "article[data-testid=frame] svg g.node", timeout, "a graph result")
        time.sleep(settle)  # let the force layout settle
        nodes = d.find_elements(By.CSS_SELECTOR, "article[data-testid=frame] svg g.node")
        rels = d.find_elements(By.CSS_SELECTOR, "article[data-testid=frame] svg g.relationship")
        fills = sorted({(c.get_attribute("fill") or "").upper() for c in d.find_elements(By.CSS_SELECTOR, "svg g.node circle.b-outline")})
        out.parent.mkdir(parents=True, exist_ok=True)
        d.save_screenshot(str(out))
        return {"nodes": len(nodes), "relationships": len(rels), "node_fills": fills, "path": str(out)}
    finally:
        d.quit()
