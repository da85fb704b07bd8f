"""Settings are read from the environment and refuse malformed or unsafe values at start-up."""

import os
import runpy
import secrets
import tempfile
from pathlib import Path
from unittest import mock

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import SimpleTestCase

from healthcare.env import env_bool, env_host, env_int, env_list, env_origins, env_rate

SETTINGS_FILE = Path(settings.BASE_DIR) / "healthcare" / "settings.py"
STRONG_KEY = secrets.token_urlsafe(64)
DATABASE_URL = "postgres://postgres@127.0.0.1:5432/unused"  # parsed only, never connected to


def load_settings(**env: str) -> dict:
    """Execute settings.py as at start-up, with `env` on top of an environment free of overrides."""
    names = ["SECRET_KEY", "DEBUG", "DATABASE_URL", "HTTPS", "PAGE_SIZE", "MAX_PAGE_SIZE", "DATA_DIR"]
    names += ["HOST", "PORT", "WEB_CONCURRENCY", "LOGIN_CONCURRENCY"]
    names += ["REDIS_URL", "DATABASE_REPLICA_URL", "REPLICA_PIN_SECONDS", "DRAIN_SECONDS", "METRICS_TOKEN"]
    names += ["MIGRATION_LOCK_TIMEOUT"]
    with tempfile.TemporaryDirectory() as empty_data_dir:
        base = {name: "" for name in names} | {"DATA_DIR": empty_data_dir}
        with mock.patch.dict(os.environ, base | env):
            return runpy.run_path(str(SETTINGS_FILE))


class EnvironmentReaderTests(SimpleTestCase):
    """The healthcare.env readers refuse malformed values instead of guessing."""

    def test_env_bool_reads_the_usual_spellings(self):
        cases = {"true": True, "YES": True, "1": True, " on ": True, "false": False, "No": False, "0": False}
        for raw, expected in cases.items():
            with self.subTest(raw=raw), mock.patch.dict(os.environ, {"X": raw}):
                self.assertIs(env_bool("X", not expected), expected)
        with mock.patch.dict(os.environ, {"X": ""}):
            self.assertIs(env_bool("X", True), True)

    def test_env_bool_refuses_a_typo(self):
        for raw in ("ture", "flase", "2", "y"):
            with (
                self.subTest(raw=raw),
                mock.patch.dict(os.environ, {"X": raw}),
                self.assertRaisesMessage(ImproperlyConfigured, "X"),
            ):
                env_bool("X", False)

    def test_env_int_reads_a_value_in_range(self):
        with mock.patch.dict(os.environ, {"X": "50"}):
            self.assertEqual(env_int("X", 10, min_value=1, max_value=100), 50)
        with mock.patch.dict(os.environ, {"X": ""}):
            self.assertEqual(env_int("X", 10, min_value=1, max_value=100), 10)

    def test_env_int_refuses_words_and_values_out_of_range(self):
        for raw in ("fifty", "1.5", "0", "101", "-3", "1e3"):
            with (
                self.subTest(raw=raw),
                mock.patch.dict(os.environ, {"X": raw}),
                self.assertRaisesMessage(ImproperlyConfigured, "X"),
            ):
                env_int("X", 10, min_value=1, max_value=100)

    def test_env_list_splits_on_commas_and_drops_blanks(self):
        with mock.patch.dict(os.environ, {"X": " a.example, b.example ,,"}):
            self.assertEqual(env_list("X", ["default"]), ["a.example", "b.example"])
        with mock.patch.dict(os.environ, {"X": ""}):
            self.assertEqual(env_list("X", ["default"]), ["default"])

    def test_env_rate_reads_a_throttle_rate(self):
        for raw in ("20/min", "1/s", "100/hour", "5/day"):
            with self.subTest(raw=raw), mock.patch.dict(os.environ, {"X": raw}):
                self.assertEqual(env_rate("X", "20/min"), raw)
        with mock.patch.dict(os.environ, {"X": ""}):
            self.assertEqual(env_rate("X", "20/min"), "20/min")

    def test_env_rate_refuses_a_malformed_rate(self):
        for raw in ("abc", "20", "0/min", "-1/min", "20/", "20/fortnight", "min/20"):
            with (
                self.subTest(raw=raw),
                mock.patch.dict(os.environ, {"X": raw}),
                self.assertRaisesMessage(ImproperlyConfigured, "X"),
            ):
                env_rate("X", "20/min")

    def test_env_origins_reads_web_origins_and_refuses_anything_else(self):
        with mock.patch.dict(os.environ, {"X": "https://app.example.org, http://localhost:5173"}):
            self.assertEqual(env_origins("X"), ["https://app.example.org", "http://localhost:5173"])
        for raw in (
            "app.example.org",
            "https://app.example.org/",
            "https://a.org/path",
            "ftp://a.org",
            "https://A.org",
        ):
            with (
                self.subTest(raw=raw),
                mock.patch.dict(os.environ, {"X": raw}),
                self.assertRaisesMessage(ImproperlyConfigured, "X"),
            ):
                env_origins("X")

    def test_env_host_reads_an_address_or_a_host_name(self):
        cases = {"127.0.0.1": "127.0.0.1", "::1": "::1", "localhost": "localhost", "::": "::"}
        cases |= {"api.clinic.example": "api.clinic.example", "": "127.0.0.1"}
        for raw, expected in cases.items():
            with self.subTest(raw=raw), mock.patch.dict(os.environ, {"X": raw}):
                self.assertEqual(env_host("X", "127.0.0.1"), expected)

    def test_env_host_refuses_what_is_neither(self):
        # The value is written into nginx's configuration: nothing but an address or a name gets there.
        for raw in ("127.0.0.1:80", "a b", "host;", "-host", "host_name", "[::1]", "x" * 64 + ".example"):
            with (
                self.subTest(raw=raw),
                mock.patch.dict(os.environ, {"X": raw}),
                self.assertRaisesMessage(ImproperlyConfigured, "X must be an IP address or a host name"),
            ):
                env_host("X", "127.0.0.1")


class SettingsTests(SimpleTestCase):
    def test_defaults_are_production_safe(self):
        loaded = load_settings(SECRET_KEY=STRONG_KEY, DATABASE_URL=DATABASE_URL)

        self.assertFalse(loaded["DEBUG"])
        self.assertEqual(loaded["ALLOWED_HOSTS"], ["localhost", "127.0.0.1"])
        self.assertEqual(loaded["REST_FRAMEWORK"]["NUM_PROXIES"], 0)
        self.assertTrue(loaded["DATABASES"]["default"]["CONN_HEALTH_CHECKS"])
        self.assertEqual(loaded["X_FRAME_OPTIONS"], "DENY")

    def test_a_weak_secret_key_is_refused_with_debug_off(self):
        weak_keys = ["short", "change-me", "a" * 60, "django-insecure-" + secrets.token_urlsafe(50)]
        for key in weak_keys:
            with self.subTest(key=key), self.assertRaisesMessage(ImproperlyConfigured, "SECRET_KEY"):
                load_settings(SECRET_KEY=key, DEBUG="false", DATABASE_URL=DATABASE_URL)

    def test_a_short_key_is_tolerated_in_debug(self):
        loaded = load_settings(SECRET_KEY="short", DEBUG="true", DATABASE_URL=DATABASE_URL)

        self.assertEqual(loaded["SECRET_KEY"], "short")

    def test_without_secret_key_the_generated_one_in_the_data_directory_is_used(self):
        with tempfile.TemporaryDirectory() as data_dir:
            Path(data_dir, "secret_key").write_text(STRONG_KEY + "\n")
            loaded = load_settings(DATA_DIR=data_dir, DATABASE_URL=DATABASE_URL)

        self.assertEqual(loaded["SECRET_KEY"], STRONG_KEY)

    def test_without_any_secret_key_start_up_stops(self):
        with self.assertRaisesMessage(ImproperlyConfigured, "SECRET_KEY is not set"):
            load_settings(DATABASE_URL=DATABASE_URL)

    def test_without_database_url_the_embedded_database_url_is_used(self):
        with tempfile.TemporaryDirectory() as data_dir:
            Path(data_dir, "database_url").write_text("postgres://postgres@%2Fsocket%2Fdir/healthcare\n")
            loaded = load_settings(DATA_DIR=data_dir, SECRET_KEY=STRONG_KEY)

        self.assertEqual(loaded["DATABASES"]["default"]["HOST"], "/socket/dir")
        self.assertEqual(loaded["DATABASES"]["default"]["NAME"], "healthcare")

    def test_without_any_database_start_up_stops(self):
        with self.assertRaisesMessage(ImproperlyConfigured, "DATABASE_URL is not set"):
            load_settings(SECRET_KEY=STRONG_KEY)

    def test_a_malformed_or_foreign_database_url_is_refused(self):
        for url in ("nonsense://x", "sqlite:///db.sqlite3"):
            with self.subTest(url=url), self.assertRaisesMessage(ImproperlyConfigured, "DATABASE_URL"):
                load_settings(SECRET_KEY=STRONG_KEY, DATABASE_URL=url)

    def test_a_malformed_value_stops_the_start_up(self):
        with self.assertRaisesMessage(ImproperlyConfigured, "DEBUG"):
            load_settings(SECRET_KEY=STRONG_KEY, DATABASE_URL=DATABASE_URL, DEBUG="ture")

    def test_the_server_settings_have_defaults_and_refuse_malformed_values(self):
        loaded = load_settings(SECRET_KEY=STRONG_KEY, DATABASE_URL=DATABASE_URL)
        self.assertEqual((loaded["HOST"], loaded["PORT"]), ("127.0.0.1", 8000))
        self.assertEqual(loaded["WEB_CONCURRENCY"], os.cpu_count())
        self.assertEqual(loaded["LOGIN_CONCURRENCY"], 1)
        self.assertEqual(
            load_settings(SECRET_KEY=STRONG_KEY, DATABASE_URL=DATABASE_URL, LOGIN_CONCURRENCY="0")["LOGIN_CONCURRENCY"],
            0,
        )
        malformed = [("PORT", "abc"), ("PORT", "0"), ("PORT", "65536"), ("WEB_CONCURRENCY", "0"), ("HOST", "a b")]
        for name, raw in [*malformed, ("LOGIN_CONCURRENCY", "-1"), ("LOGIN_CONCURRENCY", "x")]:
            with self.subTest(name=name, raw=raw), self.assertRaisesMessage(ImproperlyConfigured, name):
                load_settings(SECRET_KEY=STRONG_KEY, DATABASE_URL=DATABASE_URL, **{name: raw})

    def test_without_redis_or_a_replica_everything_stays_on_this_host(self):
        loaded = load_settings(SECRET_KEY=STRONG_KEY, DATABASE_URL=DATABASE_URL)

        self.assertIn("FileBasedCache", loaded["CACHES"]["default"]["BACKEND"])
        self.assertIn("FileBasedCache", loaded["CACHES"]["security"]["BACKEND"])
        self.assertIsNone(loaded["READ_REPLICA"])
        self.assertEqual(loaded["DATABASES"]["replica"]["NAME"], "unused")  # the primary, unused by the router
        self.assertEqual(loaded["DATABASES"]["replica"]["TEST"], {"MIRROR": "default"})
        self.assertEqual((loaded["REPLICA_PIN_SECONDS"], loaded["DRAIN_SECONDS"]), (5, 0))
        self.assertEqual((loaded["METRICS_TOKEN"], loaded["MIGRATION_LOCK_TIMEOUT"]), ("", "5s"))

    def test_redis_url_puts_the_count_cache_and_the_security_store_in_redis_under_their_own_prefixes(self):
        loaded = load_settings(SECRET_KEY=STRONG_KEY, DATABASE_URL=DATABASE_URL, REDIS_URL="redis://10.0.0.5:6379/0")

        caches = loaded["CACHES"]
        self.assertEqual(caches["default"]["LOCATION"], caches["security"]["LOCATION"])
        self.assertNotEqual(caches["default"]["KEY_PREFIX"], caches["security"]["KEY_PREFIX"])
        self.assertIn("LocMemCache", caches["users"]["BACKEND"])
        with self.assertRaisesMessage(ImproperlyConfigured, "REDIS_URL"):
            load_settings(SECRET_KEY=STRONG_KEY, DATABASE_URL=DATABASE_URL, REDIS_URL="http://secret@host")

    def test_a_replica_gets_the_primarys_connection_options(self):
        replica_url = "postgres://reader@10.0.0.6:5432/healthcare"
        loaded = load_settings(
            SECRET_KEY=STRONG_KEY, DATABASE_URL=DATABASE_URL, DATABASE_REPLICA_URL=replica_url, CLINIC_TIME_ZONE="UTC"
        )

        replica, primary = loaded["DATABASES"]["replica"], loaded["DATABASES"]["default"]
        self.assertEqual(loaded["READ_REPLICA"], "replica")
        self.assertEqual((replica["HOST"], replica["USER"]), ("10.0.0.6", "reader"))
        self.assertEqual(replica["OPTIONS"], primary["OPTIONS"])
        with self.assertRaisesMessage(ImproperlyConfigured, "DATABASE_REPLICA_URL"):
            load_settings(SECRET_KEY=STRONG_KEY, DATABASE_URL=DATABASE_URL, DATABASE_REPLICA_URL="sqlite:///x")

    def test_the_new_server_settings_refuse_malformed_values(self):
        for name, raw in (
            ("REPLICA_PIN_SECONDS", "-1"),
            ("DRAIN_SECONDS", "soon"),
            ("MIGRATION_LOCK_TIMEOUT", "5 seconds"),
        ):
            with self.subTest(name=name), self.assertRaisesMessage(ImproperlyConfigured, name):
                load_settings(SECRET_KEY=STRONG_KEY, DATABASE_URL=DATABASE_URL, **{name: raw})

    def test_a_default_page_size_above_the_maximum_is_refused(self):
        with self.assertRaisesMessage(ImproperlyConfigured, "PAGE_SIZE"):
            load_settings(SECRET_KEY=STRONG_KEY, DATABASE_URL=DATABASE_URL, PAGE_SIZE="600", MAX_PAGE_SIZE="500")

    def test_https_turns_on_redirects_hsts_and_secure_cookies(self):
        loaded = load_settings(SECRET_KEY=STRONG_KEY, DATABASE_URL=DATABASE_URL, HTTPS="true")

        self.assertTrue(loaded["SECURE_SSL_REDIRECT"])
        self.assertGreaterEqual(loaded["SECURE_HSTS_SECONDS"], 31_536_000)
        self.assertTrue(loaded["SESSION_COOKIE_SECURE"])
        self.assertTrue(loaded["CSRF_COOKIE_SECURE"])
        self.assertEqual(loaded["SECURE_PROXY_SSL_HEADER"], ("HTTP_X_FORWARDED_PROTO", "https"))
