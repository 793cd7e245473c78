"""Where a sweep's runs execute: local worker processes (core.sweep) or tasks on a Ray cluster."""
