//! history (to be written).
