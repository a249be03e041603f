"""Software-defined assets, one partition per video: video → transcript → chunks → embeddings."""
