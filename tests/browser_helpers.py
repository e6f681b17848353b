"""Open a generated site in headless Debian chromium through playwright, offline.

Every request that is not ``file://`` is aborted and recorded, console errors and uncaught page
errors are recorded, and dialogs (an ``alert`` from a name that ran as script) are recorded and
dismissed: a test asserts all three lists are empty.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass
class Watch:
    """What a page did that an offline, script-safe site must never do."""

    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        return [*self.requests, *self.console_errors, *self.page_errors, *self.dialogs]


def browser_available() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return CHROMIUM.is_file()


@contextmanager
def offline_page(width: int = 1100, height: int = 800) -> Iterator[tuple[object, Watch]]:
    """A fresh page in headless chromium (new empty profile) and the :class:`Watch` over it."""
    from playwright.sync_api import sync_playwright

    watch = Watch()
    with tempfile.TemporaryDirectory(prefix="onnxdream-chromium-") as profile, sync_playwright() as driver:
        context = driver.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            headless=True,
            args=ARGS,
            viewport={"width": width, "height": height},
        )
        try:

            def route(request_route) -> None:
                url = request_route.request.url
                if url.startswith("file://"):
                    request_route.continue_()
                else:
                    watch.requests.append(f"request left file://: {url}")
                    request_route.abort()

            context.route("**/*", route)
            page = context.new_page()
            page.on(
                "console", lambda m: m.type == "error" and watch.console_errors.append(f"console: {m.text}")
            )
            page.on("pageerror", lambda e: watch.page_errors.append(f"page error: {e}"))

            def dialog(d) -> None:
                watch.dialogs.append(f"dialog: {d.message}")
                d.dismiss()

            page.on("dialog", dialog)
            yield page, watch
        finally:
            context.close()
