//! backup (to be written).
