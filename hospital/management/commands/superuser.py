"""`make superuser`: Django's createsuperuser, made to fail rather than do nothing or something unusable.

    manage.py superuser                      prompts for the username, email and password (needs a terminal)
    manage.py superuser --username alice --email alice@example.org     with DJANGO_SUPERUSER_PASSWORD set:
                                             no prompt (DJANGO_SUPERUSER_USERNAME and _EMAIL work too)

Django's own command, without a terminal, prints that it skipped and exits 0: a script believes it made an
admin account that does not exist. With --noinput but no DJANGO_SUPERUSER_PASSWORD, it makes an account that
nobody can log in to. Here both are errors, and a password from the environment must pass the same
AUTH_PASSWORD_VALIDATORS as a typed one.
"""

import os

from django.contrib.auth.management.commands import createsuperuser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

PASSWORD_VARIABLE = "DJANGO_SUPERUSER_PASSWORD"  # noqa: S105 (a variable's name)


class Command(createsuperuser.Command):
    help = (
        "Create a superuser: interactively, or with --username and --email (or DJANGO_SUPERUSER_USERNAME and "
        f"DJANGO_SUPERUSER_EMAIL) and the password in {PASSWORD_VARIABLE}. Fails when it can do neither."
    )

    def handle(self, *args, **options):
        username_field = self.UserModel.USERNAME_FIELD
        username = options[username_field] or os.environ.get(f"DJANGO_SUPERUSER_{username_field.upper()}")
        password = os.environ.get(PASSWORD_VARIABLE)
        can_prompt = options["interactive"] and hasattr(self.stdin, "isatty") and self.stdin.isatty()
        if username and password:
            options["interactive"] = False
            email = options["email"] or os.environ.get("DJANGO_SUPERUSER_EMAIL", "")
            try:
                validate_password(password, self.UserModel(**{username_field: username, "email": email}))
            except ValidationError as error:
                raise CommandError(f"{PASSWORD_VARIABLE}: {' '.join(error.messages)}") from None
        elif not can_prompt:
            missing = " or ".join(
                name for name, value in (("username", username), (PASSWORD_VARIABLE, password)) if not value
            )
            raise CommandError(
                f"no terminal to prompt on, and no {missing} given. Without a terminal: "
                f"make superuser USERNAME=... EMAIL=..., with the password in {PASSWORD_VARIABLE}."
            )
        return super().handle(*args, **options)
