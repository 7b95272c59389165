"""Aftercare: the service around the support dialogs (channels, adapter, stores, providers)."""
