"""Shared ground of every stage: errors, file checks, CPU budgets, scan configuration and result records."""
