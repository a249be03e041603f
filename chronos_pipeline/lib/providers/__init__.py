"""Providers: transcribers, embedders and chat models behind one abstract base each."""
