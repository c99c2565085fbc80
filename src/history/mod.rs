//! Migration history at {shift}/{tableName} (to be written).
