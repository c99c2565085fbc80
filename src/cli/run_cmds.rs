//! migrate, down, list, validate (waiting for the runner).
