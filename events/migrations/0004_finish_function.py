from django.db import migrations

# The end of a delivery whose message carried its event (events.delivery, "run from the message"): one call that
# locks the delivery, checks the message against the event log (the log is the truth: a message that differs is
# never committed), checks the delivery is still owed, marks it done and wakes parked deliveries. It raises
# instead of answering "no", so that the COMMIT sent behind it in the same round trip cannot commit the consumer's
# writes for a delivery that was not owed. PL/pgSQL caches the plans of its statements per session.
#   EVD01 no such delivery   EVD02 the message does not match the log   EVD03 the delivery is not owed
CREATE = """
CREATE OR REPLACE FUNCTION events_finish(p_delivery bigint, p_consumer text, p_event jsonb, p_wake integer)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  d events_delivery%ROWTYPE;
  e events_outboxevent%ROWTYPE;
  woken jsonb;
BEGIN
  SELECT * INTO d FROM events_delivery WHERE id = p_delivery FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'delivery % does not exist', p_delivery USING ERRCODE = 'EVD01';
  END IF;
  SELECT * INTO e FROM events_outboxevent WHERE id = d.event_id;
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
  IF NOT (d.status = 'pending' OR (d.status = 'retrying'
          AND (d.next_attempt_at IS NULL OR d.next_attempt_at <= clock_timestamp()))) THEN
    RAISE EXCEPTION 'delivery % is %', p_delivery, d.status USING ERRCODE = 'EVD03';
  END IF;
  UPDATE events_delivery SET status = 'done', done_at = clock_timestamp(), updated_at = clock_timestamp(),
         last_error = '' WHERE id = p_delivery;
  WITH parked AS (SELECT id FROM events_delivery WHERE status = 'parked' ORDER BY updated_at, id LIMIT p_wake
                  FOR UPDATE SKIP LOCKED),
       w AS (UPDATE events_delivery x SET status = 'pending', sent_at = now(), updated_at = now() FROM parked
             WHERE x.id = parked.id RETURNING x.id, x.queue)
  SELECT coalesce(jsonb_agg(jsonb_build_array(w.id, w.queue)), '[]'::jsonb) INTO woken FROM w;
  PERFORM set_config('synchronous_commit', 'off', true);
  RETURN woken::text;
END $$;
"""

DROP = "DROP FUNCTION IF EXISTS events_finish(bigint, text, jsonb, integer);"


class Migration(migrations.Migration):
    dependencies = [("events", "0003_delivery_index_and_done_at")]

    operations = [migrations.RunSQL(CREATE, DROP)]
