from django.db import migrations


class Migration(migrations.Migration):
    """A sequence numbering committed policy changes (the ``version`` of event-policy-updated)."""

    dependencies = [("authz", "0001_initial")]

    operations = [
        migrations.RunSQL("CREATE SEQUENCE IF NOT EXISTS authz_policy_version_seq",
                          "DROP SEQUENCE IF EXISTS authz_policy_version_seq"),
    ]
