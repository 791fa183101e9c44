from django.db import migrations

# The cold check as one server-side function: PL/pgSQL caches the plans of its statements per session,
# so a check costs one round trip and no planning (planning the equivalent ad-hoc SQL took longer than
# running it). Every lookup inside is an equality prefix of a unique index.
CREATE = """
CREATE OR REPLACE FUNCTION authz_check(p_instance bigint, p_user bigint, p_type varchar, p_action varchar,
                                       p_object varchar, p_folder_pk bigint)
RETURNS TABLE(profile_role varchar, granted boolean)
LANGUAGE plpgsql STABLE AS $$
DECLARE
  ids varchar[] := ARRAY[p_object, '*']::varchar[];
BEGIN
  profile_role := (SELECT pr.role FROM accounts_profile pr WHERE pr.user_id = p_user AND pr.instance_id = p_instance);
  IF profile_role IS NULL THEN
    granted := false;
    RETURN NEXT;
    RETURN;
  END IF;
  IF p_folder_pk IS NOT NULL THEN
    ids := ids || COALESCE((SELECT string_to_array(trim(both '/' from r.path), '/')::varchar[]
                            FROM authz_resource r WHERE r.id = p_folder_pk AND r.instance_id = p_instance),
                           '{}'::varchar[]);
  END IF;
  granted := EXISTS (SELECT 1 FROM authz_policy p
                      WHERE p.instance_id = p_instance AND p.user_id = p_user AND p.resource_type = p_type
                        AND p.action = p_action AND p.resource_id = ANY(ids))
          OR EXISTS (SELECT 1 FROM authz_groupmembership m JOIN authz_policy p ON p.group_id = m.group_id
                      WHERE m.user_id = p_user AND p.instance_id = p_instance AND p.resource_type = p_type
                        AND p.action = p_action AND p.resource_id = ANY(ids));
  RETURN NEXT;
END
$$;
"""

DROP = "DROP FUNCTION IF EXISTS authz_check(bigint, bigint, varchar, varchar, varchar, bigint);"


class Migration(migrations.Migration):
    dependencies = [("authz", "0002_policy_version_sequence"), ("accounts", "0001_initial")]

    operations = [migrations.RunSQL(CREATE, DROP)]
