"""Store every email in its normal form (NFKC, case folded, NFKC), the form login and registration now use.

An email whose normal form another account already holds is left as it is and named in a warning: the
two accounts need a person to decide which keeps the address (it cannot log in until then).
"""

import logging
import unicodedata

from django.db import migrations

logger = logging.getLogger(__name__)


def _normal(email: str) -> str:  # frozen copy of accounts.emails.normalize_email at this migration
    folded = unicodedata.normalize("NFKC", (email or "").strip()).casefold()
    return unicodedata.normalize("NFKC", folded).strip()


def normalize_emails(apps, schema_editor):
    user_model = apps.get_model("accounts", "User")
    rows = list(user_model.objects.order_by("pk").values_list("pk", "email"))
    taken = {email for _, email in rows if _normal(email) == email}
    for pk, email in rows:
        normal = _normal(email)
        if normal == email:
            continue
        if normal in taken:
            logger.warning("accounts.0005: user %s keeps email %r: %r belongs to another account", pk, email, normal)
            continue
        user_model.objects.filter(pk=pk).update(email=normal)
        taken.add(normal)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_profile_external_id")]

    operations = [migrations.RunPython(normalize_emails, migrations.RunPython.noop, elidable=True)]
