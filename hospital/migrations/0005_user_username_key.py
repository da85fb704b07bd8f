"""Usernames are compared in one canonical form (hospital.usernames.username_key), unique in the database.

Replaces the unique index on lower(username), which PostgreSQL's lower() and Django's iexact (upper())
disagreed with: "vıctim" (dotless ı) passed it, and login then found two accounts. Add the column
nullable, fill it, then make it NOT NULL and unique.

Accounts registered before this as look-alikes of an older one cannot both hold the same key: the oldest
keeps it (login by that name finds it), each later one gets a key no login can produce by accident, so it
keeps its row, records and password but must be renamed by staff before it can log in by name again. The
migration prints how many (ids only: usernames stay out of logs).
"""

from django.db import migrations, models

import hospital.usernames


def fill_username_keys(apps, schema_editor):
    User = apps.get_model("hospital", "User")
    owner_of_key = {}
    renamed = []
    users = list(User.objects.order_by("date_joined", "pk").only("pk", "username"))
    for user in users:
        key = hospital.usernames.username_key(user.username)
        if key in owner_of_key:
            renamed.append(user.pk)
            key = f"{key} (look-alike of account {owner_of_key[key]}, id {user.pk})"
        else:
            owner_of_key[key] = user.pk
        user.username_key = key
    User.objects.bulk_update(users, ["username_key"], batch_size=1000)
    if renamed:
        print(f"\n  {len(renamed)} look-alike username(s) must be renamed by staff; account ids: {renamed}")


class Migration(migrations.Migration):
    dependencies = [
        ("hospital", "0004_audit_client_request_id"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="username_key",
            field=models.TextField(db_collation="C", editable=False, null=True),
        ),
        migrations.RunPython(fill_username_keys, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="user",
            name="username_key",
            field=models.TextField(db_collation="C", editable=False),
        ),
        migrations.RemoveConstraint(
            model_name="user",
            name="user_username_case_insensitive_unique",
        ),
        migrations.AddConstraint(
            model_name="user",
            constraint=models.UniqueConstraint(fields=("username_key",), name="user_username_key_unique"),
        ),
        migrations.AlterField(
            model_name="user",
            name="username",
            field=models.CharField(
                error_messages={"unique": "A user with that username already exists."},
                help_text="Required. 150 characters or fewer. Letters, digits and @/./+/-/_ only.",
                max_length=150,
                unique=True,
                validators=[hospital.usernames.NormalizedUsernameValidator()],
                verbose_name="username",
            ),
        ),
    ]
