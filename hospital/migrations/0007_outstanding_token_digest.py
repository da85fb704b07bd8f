"""The token blacklist's outstanding-token table holds SHA-256 digests of refresh tokens, never the tokens.

simplejwt records every refresh token it issues or blacklists with its full text, which anyone able to
read the table (a backup, a replica, the admin) could use until it expires. The app now writes a digest
(hospital.tokens.token_digest); this trigger applies the same digest to any other text written there, by
simplejwt's own code paths included, and the UPDATE below replaces the tokens already stored. Rotation,
blacklisting and logout only use the jti, user and expiry columns.
"""

from django.db import migrations

DIGEST_PATTERN = "^sha256:[0-9a-f]{64}$"
DIGEST = "'sha256:' || encode(sha256(convert_to({column}, 'UTF8')), 'hex')"

CREATE_TRIGGER = f"""
CREATE FUNCTION hospital_outstanding_token_digest() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.token !~ '{DIGEST_PATTERN}' THEN
        NEW.token := {DIGEST.format(column="NEW.token")};
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER outstanding_token_digest
    BEFORE INSERT OR UPDATE OF token ON token_blacklist_outstandingtoken
    FOR EACH ROW EXECUTE FUNCTION hospital_outstanding_token_digest();
UPDATE token_blacklist_outstandingtoken SET token = {DIGEST.format(column="token")}
    WHERE token !~ '{DIGEST_PATTERN}';
"""

DROP_TRIGGER = """
DROP TRIGGER outstanding_token_digest ON token_blacklist_outstandingtoken;
DROP FUNCTION hospital_outstanding_token_digest();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("hospital", "0006_revoked_token_family"),
        ("token_blacklist", "0013_alter_blacklistedtoken_options_and_more"),
    ]

    operations = [migrations.RunSQL(CREATE_TRIGGER, DROP_TRIGGER)]
