"""The performance harness: Throughline's measures timed at S, M and L, checked against DuckDB and pandas.

``python -m bench --sizes S,M,L`` generates the demo organisation per size (cached as a Parquet
snapshot), times every measure in a fresh process, computes the headline figures with DuckDB SQL and
with pandas over the same snapshot, asserts they agree and writes ``bench/results/*.json`` and ``*.md``.
"""
