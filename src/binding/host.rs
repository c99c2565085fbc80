//! JS script host (to do)
