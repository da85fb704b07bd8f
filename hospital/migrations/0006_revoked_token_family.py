"""Ended login sessions (token families): their refresh tokens are refused until they expire."""

import django.db.models.deletion
import django.db.models.functions.datetime
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('hospital', '0005_user_username_key'),
    ]

    operations = [
        migrations.CreateModel(
            name='RevokedTokenFamily',
            fields=[
                ('family', models.UUIDField(primary_key=True, serialize=False)),
                ('reason', models.CharField(choices=[('logout', 'Logout'), ('reuse', 'Rotated refresh token reused')], max_length=16)),
                ('revoked_at', models.DateTimeField(db_default=django.db.models.functions.datetime.Now())),
                ('expires_at', models.DateTimeField()),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name_plural': 'revoked token families',
            },
        ),
    ]
