-- A write or destructive call a person rejected is evidence of type `declined` (domain/evidence.ts):
-- the person's decision, not a routing miss of the agent, and never curated. Rows recorded before as
-- `routing` that no curation has taken yet become what they are; curated ones keep their batch.
update failure_evidence set failure_type = 'declined', severity = least(severity, 0.3)
where source = 'approval_rejected' and failure_type = 'routing' and curated_at is null;
