"""Migrations run while serving: `migrate` waits at most MIGRATION_LOCK_TIMEOUT for a lock (the migration linter
runs in `make test`, Makefile `checks`)."""

import threading

import psycopg
from django.core.management import call_command
from django.db import OperationalError, connection
from django.test import TransactionTestCase, override_settings

from hospital.tests.test_server import test_database_url

RELEASE_AFTER_SECONDS = 20


class MigrateLockTimeoutTests(TransactionTestCase):
    def test_migrate_gives_up_on_a_lock_held_by_traffic_instead_of_queueing_behind_it(self):
        # A long transaction, as traffic may hold one: it locks the table migrate reads first.
        holder = psycopg.connect(test_database_url())
        self.addCleanup(holder.close)
        holder.execute("LOCK TABLE django_migrations IN ACCESS EXCLUSIVE MODE")
        # Were there no lock_timeout, migrate would wait until this releases the lock and then succeed.
        release = threading.Timer(RELEASE_AFTER_SECONDS, holder.rollback)
        release.start()
        self.addCleanup(release.cancel)

        with (
            override_settings(MIGRATION_LOCK_TIMEOUT="200ms"),
            self.assertRaisesMessage(OperationalError, "lock timeout"),
        ):
            call_command("migrate", verbosity=0)

        with connection.cursor() as cursor:  # the test runner's connection is left as it was
            cursor.execute("SHOW lock_timeout")
            self.assertEqual(cursor.fetchone(), ("0",))

    def test_with_no_lock_held_migrate_runs_as_usual(self):
        call_command("migrate", verbosity=0)  # everything is applied: nothing to do, no error
