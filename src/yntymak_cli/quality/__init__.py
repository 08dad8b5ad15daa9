"""HQ's data-quality work: paradata timing, checks per submission, progress against
targets (`yntymak hq checks`, `hq targets`, `hq status --form`; docs/quality.md)."""
