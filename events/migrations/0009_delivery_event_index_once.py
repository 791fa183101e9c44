import django.db.models.deletion
from django.db import migrations, models

# events_delivery(event_id) had two indexes: the FK's own and the unique (event_id, consumer) one, which serves
# every lookup by event. The FK's own cost each publish and each finish (a non-HOT update: status is indexed) one
# more random B-tree insert. Dropped alone: Django's AlterField would also drop and re-add the foreign key, which
# validates the whole table under lock.
INDEX = "events_delivery_event_id_c08f510e"


class Migration(migrations.Migration):
    dependencies = [("events", "0008_finish_locks_by_the_message")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="delivery", name="event",
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                            related_name="deliveries", to="events.outboxevent")),
            ],
            database_operations=[
                migrations.RunSQL(f"DROP INDEX IF EXISTS {INDEX}",
                                  f"CREATE INDEX IF NOT EXISTS {INDEX} ON events_delivery (event_id)"),
            ],
        ),
    ]
