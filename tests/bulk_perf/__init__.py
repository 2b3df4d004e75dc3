"""Bulk transfer performance: streamed P-DATA-TF, large PDUs, discard paths."""
