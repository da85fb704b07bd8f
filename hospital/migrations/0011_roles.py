"""The two roles, as Django groups: staff grant them through the API (/api/users/<id>/) or the admin."""

from django.db import migrations

ROLES = ["front_desk", "clinician"]


def create_roles(apps, schema_editor):
    group = apps.get_model("auth", "Group")
    for name in ROLES:
        group.objects.get_or_create(name=name)


class Migration(migrations.Migration):
    dependencies = [("hospital", "0010_care_team"), ("auth", "0012_alter_user_first_name_max_length")]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
