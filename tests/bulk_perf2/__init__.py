"""Bulk transfer performance, second series: the sender's system calls per PDU."""
