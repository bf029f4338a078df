"""axe-core (axe-playwright-python) in the browser tests: no serious or critical violation."""

from axe_playwright_python.sync_playwright import Axe

AXE = Axe()


def assert_accessible(page, name: str) -> None:
    """Run axe-core on the page as it is now; fail with every serious or critical finding."""
    results = AXE.run(page)
    serious = [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(str(node["target"]) for node in v["nodes"][:5])
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert serious == [], f"{name}: " + "; ".join(serious)
