"""API views, by area. Each is linear: access helper -> serializer -> service or selector -> response."""
