"""Outcome measures: metric progress, hypotheses and their history, verdicts and the prediction ledger."""
