from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_invitations")]

    operations = [
        migrations.AddField(
            model_name="profile",
            name="external_id",
            field=models.CharField(blank=True, default=None, max_length=255, null=True),
        ),
        migrations.AddConstraint(
            model_name="profile",
            constraint=models.UniqueConstraint(condition=models.Q(("external_id__isnull", False)),
                                               fields=("instance", "external_id"),
                                               name="accounts_profile_instance_external_id_unique"),
        ),
    ]
