"""Quantdesk app."""
