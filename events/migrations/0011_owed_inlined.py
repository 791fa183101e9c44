from django.db import migrations

# events_owed was declared STABLE while it reads clock_timestamp() (volatile). PostgreSQL inlines a SQL function
# into the statement that calls it only when the body is no more volatile than the declaration, so every call ran
# through the SQL-function executor, which parses and plans the body again for each statement that calls it: in
# events_finish's UPDATE (the message path's one round trip) about 50 us of PostgreSQL's CPU per delivery: the
# finish's round trip measured 170-180 us of PostgreSQL CPU STABLE, 120-130 VOLATILE (in-process, interleaved).
# VOLATILE is its true volatility; inlined, the same expression is evaluated in place, with the same result.
CREATE = "ALTER FUNCTION events_owed(text, timestamptz) VOLATILE;"
DROP = "ALTER FUNCTION events_owed(text, timestamptz) STABLE;"


class Migration(migrations.Migration):
    dependencies = [("events", "0010_finish_in_one_update")]

    operations = [migrations.RunSQL(CREATE, DROP)]
