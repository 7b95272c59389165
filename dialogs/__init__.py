"""Aftercare's conversation logic, kept free of Bot Framework types."""
