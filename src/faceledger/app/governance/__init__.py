"""Governance: users and keys, attestations, legal holds, retention and destruction, consent,
encryption at rest. Each operation authorizes its actor and writes its audit entry in the same
transaction as the change it records.
"""
