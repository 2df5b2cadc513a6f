"""The Chat page: a door onto core.runtime's ChatSession and ModelManager."""
