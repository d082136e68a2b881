"""Adding a webhook endpoint in Chromium, on a desktop (1400 px) and a phone (390 px): the secret is shown once,
nothing runs off the side, the endpoint's page never shows the secret again, and Redeliver queues a delivery."""
import pytest
import sqlalchemy as sa

from phoneapp.extensions import db
from phoneapp.models import WebhookEndpoint
from tests.support.browser import CHROMIUM_ARGS, WAIT_MS, log_in, serving
from tests.support.webhook_endpoint_rows import failed_delivery

DESKTOP, PHONE = (1400, 900), (390, 844)
OVERFLOW_JS = "() => document.documentElement.scrollWidth - window.innerWidth"
# Reserved by RFC 6761, so it never resolves: accepted when saved, as a receiver not yet in DNS is.
RECEIVER = "https://hooks.example.invalid/phoneapp/calls"


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["1400", "390"])
def test_an_admin_adds_an_endpoint_and_copies_its_secret(chromium, tmp_path, migrated_postgres, artifacts_dir, size):
    from playwright.sync_api import sync_playwright

    width = size[0]
    with serving(tmp_path) as (base, seeded), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": size[0], "height": size[1]})
            page.set_default_timeout(WAIT_MS)
            log_in(page, base)
            page.click(".mainnav a:has-text('Webhooks')")
            page.wait_for_url(base + "/webhooks")
            assert "No webhook endpoints" in page.inner_text("main")
            assert page.evaluate(OVERFLOW_JS) <= 0

            page.fill("#endpoint-url", "https://127.0.0.1/hook")
            page.click("button:has-text('Add endpoint')")
            assert "a loopback address" in page.inner_text("#url-error")
            page.screenshot(path=str(artifacts_dir / f"webhooks-{width}-refused.png"), full_page=True)
            assert page.evaluate(OVERFLOW_JS) <= 0

            page.fill("#endpoint-url", RECEIVER)
            page.uncheck("input[value='number.status_changed']")
            page.select_option("#endpoint-client", label="Acme Plumbing")
            page.fill("#endpoint-description", "The CRM's call feed")
            page.click("button:has-text('Add endpoint')")
            secret = page.inner_text("#secret-value").strip()
            assert secret.startswith("whsec_")
            assert "it will not be shown again" in page.inner_text("[role=alert]")
            page.screenshot(path=str(artifacts_dir / f"webhooks-{width}-secret.png"), full_page=True)
            assert page.evaluate(OVERFLOW_JS) <= 0

            page.click("a:has-text('Done')")
            page.wait_for_selector("#deliveries")
            assert secret not in page.content()
            assert secret[-4:] in page.inner_text("main")
            assert "No deliveries yet" in page.inner_text("#deliveries-live")

            with seeded["app"].app_context():
                endpoint_id = db.session.scalars(sa.select(WebhookEndpoint.id)).one()
                delivery_id = failed_delivery(endpoint_id, client_id=seeded["client_id"]).id
                db.session.remove()
            page.reload()
            row = f"#delivery-{delivery_id}"
            assert "failed" in page.inner_text(row) and "HTTP 500" in page.inner_text(row)
            page.click(f"{row} button:has-text('Redeliver')")
            page.wait_for_selector(f"#flashes:has-text('Delivery {delivery_id} is queued again')")
            assert "pending" in page.inner_text(row)
            assert page.get_attribute("#deliveries-live", "hx-trigger") == "every 3s"
            assert page.evaluate(OVERFLOW_JS) <= 0
            page.screenshot(path=str(artifacts_dir / f"webhooks-{width}-endpoint.png"), full_page=True)

            page.click(".breadcrumb a:has-text('Webhooks')")
            row = page.inner_text("table tbody tr")
            assert RECEIVER in row and "Acme Plumbing" in row and "number.status_changed" not in row
            assert secret not in page.content()
            page.screenshot(path=str(artifacts_dir / f"webhooks-{width}-list.png"), full_page=True)
            assert page.evaluate(OVERFLOW_JS) <= 0
        finally:
            browser.close()
