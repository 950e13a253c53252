"""Storage: the SQLAlchemy system of record, the columnar snapshot, kept results, settings and secrets."""
