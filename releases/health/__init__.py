"""Release health: SDK envelopes in, session rollups stored, health numbers read out."""
