"""Collection: ties the pure engine to the store (autosave, paradata, drafts, edits)."""
