"""Django's migrate, with a lock_timeout (MIGRATION_LOCK_TIMEOUT, default 5s), so that it can run while serving.

A migration that waits for a lock (ALTER TABLE behind a long transaction) makes every query on that table queue
behind it: the API would stall for as long as the wait lasts. With a lock_timeout the migration gives up instead,
its transaction is rolled back, and the command fails with "canceling statement due to lock timeout"; running it
again is safe. "0" waits for ever, as Django's own command does.
"""

from django.conf import settings
from django.core.management.commands import migrate
from django.db import connections


class Command(migrate.Command):
    help = migrate.Command.help + " Each statement waits at most MIGRATION_LOCK_TIMEOUT for a lock."

    def handle(self, *args, **options):
        connection = connections[options["database"]]
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('lock_timeout', %s, false)", [settings.MIGRATION_LOCK_TIMEOUT])
        try:
            return super().handle(*args, **options)
        finally:
            if connection.connection is not None:  # the test runner's connection goes on being used
                with connection.cursor() as cursor:
                    cursor.execute("RESET lock_timeout")
