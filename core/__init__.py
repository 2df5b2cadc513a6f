"""Quantdesk core."""
