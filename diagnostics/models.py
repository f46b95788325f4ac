"""SSH collection, evidence, the knowledge base and matches (filled by the next issues)."""
