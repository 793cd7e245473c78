"""Test-gap metrics: what the bound is compared against."""
