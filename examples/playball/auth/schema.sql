-- The auth service's database: its users, and the outbox (Debezium's column names) that outboxd
-- tails. register_user, update_user and delete_user each write the change and its event in the
-- same transaction (a function called on its own is one transaction): either both are committed
-- or neither is, so no change goes unannounced and no event announces a change that did not happen.
-- The payload is the user's whole state after the change (id, username, email, display_name),
-- so group management needs no earlier event to apply a later one.

CREATE TABLE users (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  username text NOT NULL UNIQUE,
  email text NOT NULL,
  display_name text NOT NULL
);

CREATE TABLE outbox (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  aggregatetype varchar(255) NOT NULL,
  aggregateid varchar(255) NOT NULL,
  type varchar(255) NOT NULL,
  payload jsonb NOT NULL
);

CREATE FUNCTION user_event(event_type text, u users) RETURNS void LANGUAGE sql AS $$
  INSERT INTO outbox (aggregatetype, aggregateid, type, payload)
  VALUES ('user', u.id::text, event_type,
          jsonb_build_object('id', u.id, 'username', u.username, 'email', u.email,
                             'display_name', u.display_name));
$$;

CREATE FUNCTION register_user(p_username text, p_email text, p_display_name text) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
  u users;
BEGIN
  INSERT INTO users (username, email, display_name) VALUES (p_username, p_email, p_display_name)
  RETURNING * INTO u;
  PERFORM user_event('UserRegistered', u);
  RETURN u.id;
END
$$;

-- NULL arguments keep the current value.
CREATE FUNCTION update_user(p_id uuid, p_username text, p_email text, p_display_name text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  u users;
BEGIN
  UPDATE users SET username = coalesce(p_username, username), email = coalesce(p_email, email),
                   display_name = coalesce(p_display_name, display_name)
  WHERE id = p_id RETURNING * INTO u;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'unknown user %', p_id USING ERRCODE = 'no_data_found';
  END IF;
  PERFORM user_event('UserUpdated', u);
END
$$;

CREATE FUNCTION delete_user(p_id uuid) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  u users;
BEGIN
  DELETE FROM users WHERE id = p_id RETURNING * INTO u;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'unknown user %', p_id USING ERRCODE = 'no_data_found';
  END IF;
  PERFORM user_event('UserDeleted', u);
END
$$;
