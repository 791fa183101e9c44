from importlib import import_module

from django.db import migrations

# synchronous_commit (events.delivery): a delivery's transaction commits with synchronous_commit = off only when it
# announces nothing outside the database after its commit. Then a PostgreSQL crash that forgets it loses nothing
# anyone saw: the delivery is back to pending and the sweep sends it again. A transaction that woke parked
# deliveries (their messages go out after commit) or registered on_commit callbacks (the relay of the events the
# consumer published, authz change-feed entries, anything a consumer announces) commits synchronously.
CREATE = import_module("events.migrations.0006_parking_with_a_key").CREATE.split(
    "CREATE OR REPLACE FUNCTION events_finish")[0] + r"""
DROP FUNCTION IF EXISTS events_finish(bigint, text, jsonb, integer);

CREATE OR REPLACE FUNCTION events_finish(p_delivery bigint, p_consumer text, p_event jsonb, p_wake integer,
                                         p_announces boolean)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  d events_delivery%ROWTYPE;
  e events_outboxevent%ROWTYPE;
  woken jsonb;
BEGIN
  SELECT e2.* INTO e FROM events_delivery d2 JOIN events_outboxevent e2 ON e2.id = d2.event_id
   WHERE d2.id = p_delivery;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'delivery % does not exist', p_delivery USING ERRCODE = 'EVD01';
  END IF;
  PERFORM events_lock_correlation(e.correlation_id, false);  -- before the delivery row: the one lock order
  SELECT * INTO d FROM events_delivery WHERE id = p_delivery FOR UPDATE;
  IF p_event IS NOT NULL THEN  -- NULL: the run read its event from the log
    IF d.consumer IS DISTINCT FROM p_consumer
       OR e.id::text IS DISTINCT FROM p_event->>'id'
       OR e.name IS DISTINCT FROM p_event->>'name'
       OR e.version::text IS DISTINCT FROM p_event->>'version'
       OR e.occurred_at IS DISTINCT FROM (p_event->>'time')::timestamptz
       OR e.instance_id::text IS DISTINCT FROM p_event->'instance'->>'id'
       OR e.instance_slug IS DISTINCT FROM p_event->'instance'->>'slug'
       OR e.correlation_id IS DISTINCT FROM p_event->>'correlation_id'
       OR e.causation_id IS DISTINCT FROM p_event->>'causation_id'
       OR e.payload IS DISTINCT FROM p_event->'payload' THEN
      RAISE EXCEPTION 'the message for delivery % does not match the event log', p_delivery USING ERRCODE = 'EVD02';
    END IF;
  ELSIF d.consumer IS DISTINCT FROM p_consumer THEN
    RAISE EXCEPTION 'delivery % is not for %', p_delivery, p_consumer USING ERRCODE = 'EVD02';
  END IF;
  IF NOT events_owed(d.status, d.next_attempt_at) THEN
    RAISE EXCEPTION 'delivery % is %', p_delivery, d.status USING ERRCODE = 'EVD03';
  END IF;
  UPDATE events_delivery SET status = 'done', done_at = clock_timestamp(), updated_at = clock_timestamp(),
         last_error = '', running_since = NULL, parked_at = NULL WHERE id = p_delivery;
  WITH parked AS (SELECT id FROM events_delivery WHERE status = 'parked' AND park_correlation = e.correlation_id
                    AND park_event IN ('*', e.name)
                  ORDER BY updated_at, id LIMIT p_wake FOR UPDATE SKIP LOCKED),
       w AS (UPDATE events_delivery x SET status = 'pending', sent_at = clock_timestamp(),
                    updated_at = clock_timestamp() FROM parked
             WHERE x.id = parked.id RETURNING x.id, x.queue)
  SELECT coalesce(jsonb_agg(jsonb_build_array(w.id, w.queue)), '[]'::jsonb) INTO woken FROM w;
  IF NOT p_announces AND woken = '[]'::jsonb THEN  -- nothing announced outside after the commit
    PERFORM set_config('synchronous_commit', 'off', true);
  END IF;
  RETURN woken::text;
END $$;
"""

DROP = "DROP FUNCTION IF EXISTS events_finish(bigint, text, jsonb, integer, boolean);\n" + import_module(
    "events.migrations.0006_parking_with_a_key").CREATE


class Migration(migrations.Migration):
    dependencies = [("events", "0006_parking_with_a_key")]

    operations = [migrations.RunSQL(CREATE, DROP)]
