-- Which intake token submitted a complaint (`token:<name>`): an intake token
-- follows up only its own complaints. NULL: submitted otherwise (SQL, an
-- admin, imported from LAPOR!).
ALTER TABLE complaints ADD COLUMN submitted_by text;
