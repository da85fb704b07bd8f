"""A real browser (Debian's headless Chromium, driven by Playwright) through Swagger UI and the admin.

The server is Django's live test server with the whole middleware stack; static files are the collected
ones (`make test` runs collectstatic first). `make test` installs Chromium when /usr/bin/chromium is missing;
this test never skips.
"""

import os
import tempfile

from django.test import LiveServerTestCase, override_settings
from playwright.sync_api import expect, sync_playwright
from rest_framework_simplejwt.tokens import RefreshToken

from hospital.models import AuditEvent, User
from hospital.tests import factories
from hospital.tests.base import LOCAL_CACHE

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "Browser-Test-Passphrase-61"
STEP_TIMEOUT_MS = 20_000


@override_settings(CACHES=LOCAL_CACHE)
class BrowserTests(LiveServerTestCase):
    host = "127.0.0.1"
    # 0: any free port. BROWSER_TEST_PORT pins one (e.g. where only a range of ports may be used).
    port = int(os.environ.get("BROWSER_TEST_PORT", "0"))

    def setUp(self):
        self.staff = User.objects.create_superuser("charge.nurse", "charge.nurse@example.com", PASSWORD)
        owner = factories.make_user()
        self.patient = factories.make_patient(owner, firstname="Wilhelmina", lastname="Featherstonehaugh")
        self.access = str(RefreshToken.for_user(self.staff).access_token)

    def test_swagger_ui_lists_patients_with_a_token_and_the_admin_opens_one(self):
        # No database access while Playwright runs: its event loop would make Django refuse the ORM here.
        with tempfile.TemporaryDirectory() as profile, sync_playwright() as playwright:
            browser = playwright.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            try:
                page = browser.new_page()
                page.set_default_timeout(STEP_TIMEOUT_MS)
                self.list_patients_in_swagger_ui(page)
                self.open_the_patient_in_the_admin(page)
            finally:
                browser.close()

        events = AuditEvent.objects.order_by("id")
        staff, patient = self.staff.pk, self.patient.pk
        self.assertEqual(
            [(e.actor, e.action, e.resource_type, e.resource_ids, e.outcome) for e in events],
            [
                (staff, "list", "patient", [patient], 200),  # Swagger UI's GET /api/patients/
                (staff, "login", "user", [staff], 200),
                (staff, "list", "patient", [patient], 200),  # the admin's patient list
                (staff, "read", "patient", [patient], 200),  # the patient's change page
            ],
        )

    def list_patients_in_swagger_ui(self, page):
        page.goto(f"{self.live_server_url}/api/docs/")
        page.locator("button.authorize").first.click()
        page.locator(".auth-container input").fill(self.access)
        page.locator(".auth-btn-wrapper button.authorize").click()
        page.locator(".auth-btn-wrapper button.btn-done").click()

        operation = page.locator("#operations-patients-patients_list")
        operation.locator(".opblock-summary").click()
        operation.locator("button.try-out__btn").click()
        operation.locator("button.execute").click()

        response = operation.locator(".live-responses-table .response .response-col_status").first
        expect(response).to_have_text("200")
        expect(operation.locator(".live-responses-table .microlight").first).to_contain_text("Featherstonehaugh")

    def open_the_patient_in_the_admin(self, page):
        page.goto(f"{self.live_server_url}/admin/")
        page.locator("#id_username").fill("charge.nurse")
        page.locator("#id_password").fill(PASSWORD)
        page.locator("input[type=submit]").click()
        expect(page.locator("#site-name")).to_have_text("healthcare-backend administration")

        page.locator("a[href='/admin/hospital/patient/']").first.click()
        page.locator("#result_list a", has_text="Featherstonehaugh").click()
        expect(page.locator("#id_lastname")).to_have_value("Featherstonehaugh")
        expect(page.locator(".field-record_status .readonly")).to_have_text("Live")
