"""Providers: one protocol per kind of outside capability (embeddings, chat model,
sentiment, safety, speech), with the cloud and embedded implementations side by side."""
