"""Evaluation on graded judgments (ERESS / Amazebay-Relevance): metrics, statistics, runs."""
