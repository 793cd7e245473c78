"""Test-gap metrics: what the bound is compared against (docs/test-metrics.md)."""
