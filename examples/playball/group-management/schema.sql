-- Group management's own database: its view of the users (fed by the auth service's events),
-- its groups, and the inbox that makes applying an event idempotent.
--
-- receive_event() is called once per Kafka record, inside the consumer's transaction: it inserts
-- the inbox row keyed by the event id and applies the event in the same transaction, so an event
-- is applied exactly when its inbox row is committed. A second delivery of the same event finds
-- the row, counts itself in inbox.duplicates and changes nothing else.

CREATE TABLE users (
  id uuid PRIMARY KEY,
  username text NOT NULL,           -- not UNIQUE: events of different users are not ordered
  email text NOT NULL,              -- between themselves, so a rename swap may pass through a
  display_name text NOT NULL,       -- state where two users briefly share a name
  version_commit_lsn pg_lsn NOT NULL,  -- the auth commit of the last event applied, and the
  version_lsn pg_lsn NOT NULL,         -- event's place in it: the user's version
  committed_at timestamptz NOT NULL,   -- when the auth service committed that change
  applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Users the auth service deleted. Ids are never reused (gen_random_uuid), so a deletion is final:
-- a registration or update that arrives after it (a replay after the inbox was pruned or restored,
-- say) does not bring the user back.
CREATE TABLE deleted_users (
  id uuid PRIMARY KEY,
  version_commit_lsn pg_lsn NOT NULL,
  deleted_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE groups (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL,
  owner_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,  -- a deleted user's groups go
  created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE inbox (
  event_id text PRIMARY KEY,   -- outboxd.v1.Event.id (the outbox row's id)
  type text NOT NULL,
  aggregate_id text NOT NULL,
  topic text NOT NULL,
  kafka_partition int NOT NULL,
  kafka_offset bigint NOT NULL,
  commit_lsn pg_lsn,
  outcome text NOT NULL,       -- applied | created from update | stale | ignored: user deleted |
                               -- already deleted | delete of unknown user | rejected: <why>
  duplicates int NOT NULL DEFAULT 0,  -- later deliveries of the same event, recognised and skipped
  received_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE FUNCTION receive_event(p_event_id text, p_type text, p_aggregate_id text, p_payload text,
                              p_commit_lsn pg_lsn, p_lsn pg_lsn, p_committed_at timestamptz,
                              p_topic text, p_partition int, p_offset bigint) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_outcome text;
  doc jsonb;
  uid uuid;
  existed boolean;
BEGIN
  INSERT INTO inbox (event_id, type, aggregate_id, topic, kafka_partition, kafka_offset, commit_lsn, outcome)
  VALUES (p_event_id, p_type, p_aggregate_id, p_topic, p_partition, p_offset, p_commit_lsn, 'receiving')
  ON CONFLICT (event_id) DO NOTHING;
  IF NOT FOUND THEN
    UPDATE inbox SET duplicates = duplicates + 1 WHERE event_id = p_event_id;
    RETURN 'duplicate';
  END IF;

  BEGIN
    doc := p_payload::jsonb;
    uid := (doc ->> 'id')::uuid;
  EXCEPTION WHEN others THEN
    v_outcome := 'rejected: payload is not a user (' || SQLERRM || ')';
  END;
  IF v_outcome IS NULL AND (uid IS NULL OR uid::text <> p_aggregate_id) THEN
    v_outcome := 'rejected: payload id does not match the aggregate id';
  END IF;
  IF v_outcome IS NULL AND p_type IN ('UserRegistered', 'UserUpdated')
     AND (doc ->> 'username' IS NULL OR doc ->> 'email' IS NULL OR doc ->> 'display_name' IS NULL) THEN
    v_outcome := 'rejected: payload lacks username, email or display_name';
  END IF;

  IF v_outcome IS NOT NULL THEN
    NULL;
  ELSIF p_type IN ('UserRegistered', 'UserUpdated') THEN
    IF EXISTS (SELECT 1 FROM deleted_users WHERE id = uid) THEN
      v_outcome := 'ignored: user deleted';
    ELSE
      existed := EXISTS (SELECT 1 FROM users WHERE id = uid);
      INSERT INTO users AS u (id, username, email, display_name, version_commit_lsn, version_lsn, committed_at)
      VALUES (uid, doc ->> 'username', doc ->> 'email', doc ->> 'display_name', p_commit_lsn, p_lsn, p_committed_at)
      ON CONFLICT (id) DO UPDATE
        SET username = EXCLUDED.username, email = EXCLUDED.email, display_name = EXCLUDED.display_name,
            version_commit_lsn = EXCLUDED.version_commit_lsn, version_lsn = EXCLUDED.version_lsn,
            committed_at = EXCLUDED.committed_at, applied_at = clock_timestamp()
        WHERE (u.version_commit_lsn, u.version_lsn) < (EXCLUDED.version_commit_lsn, EXCLUDED.version_lsn);
      IF NOT FOUND THEN
        v_outcome := 'stale';
      ELSIF NOT existed AND p_type = 'UserUpdated' THEN
        v_outcome := 'created from update';
      ELSE
        v_outcome := 'applied';
      END IF;
    END IF;
  ELSIF p_type = 'UserDeleted' THEN
    DELETE FROM users WHERE id = uid;
    IF FOUND THEN
      v_outcome := 'applied';
    ELSIF EXISTS (SELECT 1 FROM deleted_users WHERE id = uid) THEN
      v_outcome := 'already deleted';
    ELSE
      v_outcome := 'delete of unknown user';
    END IF;
    INSERT INTO deleted_users (id, version_commit_lsn) VALUES (uid, p_commit_lsn) ON CONFLICT (id) DO NOTHING;
  ELSE
    v_outcome := 'rejected: unknown event type ' || p_type;
  END IF;

  UPDATE inbox SET outcome = v_outcome WHERE event_id = p_event_id;
  RETURN v_outcome;
END
$$;

-- The group management API's one call here: create a group owned by a user it knows.
CREATE FUNCTION create_group(p_owner uuid, p_name text) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
  gid uuid;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM users WHERE id = p_owner) THEN
    RAISE EXCEPTION 'unknown user %', p_owner USING ERRCODE = 'foreign_key_violation',
      HINT = 'group management has not received this user''s UserRegistered event (is the integration running?)';
  END IF;
  INSERT INTO groups (name, owner_id) VALUES (p_name, p_owner) RETURNING id INTO gid;
  RETURN gid;
END
$$;
