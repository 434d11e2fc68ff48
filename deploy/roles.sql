-- The API's role. Behind a transaction pooler the API does not SET anything on its
-- connections (DB_SESSION_SETUP=false): what it used to SET per connection is the role's.
-- psql -h <direct host> -U postgres -d todo -f deploy/roles.sql  (then set its password)
CREATE ROLE todo_api LOGIN;
ALTER ROLE todo_api SET statement_timeout = '10s';
ALTER ROLE todo_api SET timezone = 'UTC';
GRANT ALL ON DATABASE todo TO todo_api;
GRANT ALL ON SCHEMA public TO todo_api;
