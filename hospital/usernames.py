"""Usernames: the rules a name must meet, and the one form in which two names are compared.

Django stores a username in Unicode NFKC (`AbstractBaseUser.normalize_username`), so the rules apply to
that form: a name that grows past 150 characters or gains spaces once normalised ("\ufdfa" becomes an
18-character Arabic phrase with spaces) is refused, rather than failing in the database or being stored
with the spaces. Two names are the same account when their `username_key` is equal; the database holds
that key in a unique column (`User.username_key`), and login looks accounts up by it. Changing
`username_key` needs a migration that recomputes the column (as 0005 filled it).
"""

import unicodedata

from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible

MAX_USERNAME_LENGTH = 150
USERNAME_TAKEN = "A user with that username already exists."


def normalize_username(username: str) -> str:
    """The form Django stores (NFKC): compatibility characters such as fullwidth letters become plain ones."""
    return unicodedata.normalize("NFKC", username)


def username_key(username: str) -> str:
    """The canonical form of a username: two names with the same key look alike and are one account.

    NFKC first (fullwidth letters become plain ones, the Kelvin sign K and the long s s; ligatures split).
    Then upper() and lower(), which map the dotless i (U+0131) to i, as case folding alone keeps it apart,
    and casefold(), which maps the sharp s to ss and the final sigma to the medial one. NFKC again, as case
    mappings may leave characters that normalisation combines. Never raises: any text has a key.
    """
    folded = normalize_username(username).upper().lower().casefold()
    return unicodedata.normalize("NFKC", folded)


@deconstructible
class NormalizedUsernameValidator:
    """Django's username rules (letters, digits and @.+-_, at most 150 characters), on the stored NFKC form.

    The characters rule refuses whitespace, zero-width and other format characters (Unicode Cf),
    control characters and combining marks that normalisation leaves on their own.
    """

    characters = UnicodeUsernameValidator()

    def __call__(self, value: str) -> None:
        normalized = normalize_username(value)
        if len(normalized) > MAX_USERNAME_LENGTH:
            raise ValidationError(
                "Ensure this value has at most %(limit_value)d characters once normalized (it has %(show_value)d).",
                code="max_length",
                params={"limit_value": MAX_USERNAME_LENGTH, "show_value": len(normalized)},
            )
        self.characters(normalized)

    def __eq__(self, other):
        return isinstance(other, NormalizedUsernameValidator)


validate_username = NormalizedUsernameValidator()
