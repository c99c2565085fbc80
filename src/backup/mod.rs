//! Backups of the {shift} subtree (to be written).
