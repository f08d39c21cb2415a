-- The built-in `admin` scope of API.md §8: the admin API and the console. It takes
-- no seat and `all` does not imply it; users hold it only when given it by name.
INSERT INTO scopes (name, description, licensed) VALUES
    ('admin', 'Administration: the admin API and the web console; takes no licence seat', 0)
ON CONFLICT (name) DO NOTHING;
