"""The REST API (/api/v1/): tokens, tickets, servers, collections, the knowledge base, alerts."""
