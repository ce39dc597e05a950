-- Administrators are the members of one built-in group. A deployment that
-- already made a group of that name keeps it (and its members) as it is.
INSERT INTO groups (id, name, created_at)
SELECT 'latch-admins', 'latch-admins', 0
WHERE NOT EXISTS (SELECT 1 FROM groups WHERE name = 'latch-admins');
